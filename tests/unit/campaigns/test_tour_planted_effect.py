"""The tour's planted conversion effect is significant, and its null arm is not, whatever arms the campaign's
random id draws and at every audience size the tour runs with (the e2e suite's small import included)."""

from __future__ import annotations

import pytest
from ecrm.campaigns.assignment import arms_of, assign
from ecrm.campaigns.models import ArmReport, CampaignIn
from ecrm.campaigns.report import lifts
from ecrm.core.ids import new_id
from ecrm_ops.tour.campaigns import ARMS, EMAIL_A, HOLDOUT_SHARE, PLANTED, lift_line, planted_converters


@pytest.mark.parametrize("audience_size", [100, 145, 200])
def test_the_planted_effect_is_significant_and_the_null_arm_is_not(audience_size: int) -> None:
    # Given the tour's campaign on an audience of that size, under many campaign ids
    campaign = CampaignIn.model_validate(
        {
            "name": "Winter sale A/B",
            "audience": {"customer_ids": ["c1"]},
            "variants": [{"key": key, "share": share, "content": EMAIL_A} for key, share in ARMS.items()],
            "holdout_share": HOLDOUT_SHARE,
        }
    )
    arms = arms_of(campaign)
    audience = [f"cus_{i:05d}" for i in range(audience_size)]
    for _ in range(200):
        campaign_id = new_id("cmp")
        members: dict[str, list[str]] = {arm: [] for arm in PLANTED}
        for customer in audience:
            members[assign(campaign_id, customer, arms)].append(customer)

        # When each arm converts exactly its planted share
        reports = [
            ArmReport(
                arm=arm,
                targeted=len(members[arm]),
                requested=len(members[arm]),
                converted=len(planted_converters(members[arm], PLANTED[arm])),
            )
            for arm in PLANTED
        ]

        # Then a's lift over the holdout is significant and b's is not
        found = {lift.arm: lift for lift in lifts(reports)}
        assert found["a"].significant, (campaign_id, reports)
        assert not found["b"].significant, (campaign_id, reports)


def test_the_lift_line_says_rates_interval_p_and_verdict() -> None:
    lift = {
        "arm": "a",
        "treated_rate": 0.405,
        "control_rate": 0.053,
        "difference": 0.351,
        "low": 0.195,
        "high": 0.508,
        "confidence": 0.95,
        "p_value": 0.00001,
        "significant": True,
    }
    assert lift_line(lift) == (
        "a converts 40.5% against the holdout's 5.3%: lift +35.1 points (95% CI +19.5 to +50.8), p<0.0001, significant"
    )
    assert "p=0.8792, not significant" in lift_line({**lift, "p_value": 0.8792, "significant": False})
