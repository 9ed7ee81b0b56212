"""The tour's planted conversion effect is significant, and its null arm is not, whatever arms the campaign's
random id draws and at every audience size the tour runs with (the e2e suite's small import included)."""

from __future__ import annotations

import pytest
from ecrm.campaigns.assignment import arms_of, assign
from ecrm.campaigns.models import ArmReport, CampaignIn
from ecrm.campaigns.report import lifts
from ecrm.core.ids import new_id
from ecrm_ops.tour.campaigns import ARMS, EMAIL_A, HOLDOUT_SHARE, PLANTED, planted_converters


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
