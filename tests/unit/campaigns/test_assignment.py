"""Variant and holdout assignment: deterministic, independent per campaign, within a point of the shares."""

from __future__ import annotations

import pytest
from ecrm.campaigns.assignment import arms_of, assign, count_arms, in_test_phase
from ecrm.campaigns.models import HOLDOUT
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.unit.campaigns.factories import EMAIL, campaign_in

RECIPIENTS = [f"cust-{i:05d}" for i in range(10_000)]


# The draw is a hash, so for a given campaign the counts are fixed; over campaigns an arm's count has a
# standard deviation of at most 0.5 points at 10,000 recipients (a 50% arm), so one point is two or more
# of them. The examples are derandomized: the same ones run every time, and pass every time.
@settings(max_examples=12, deadline=None, derandomize=True)
@given(
    campaign_id=st.from_regex(r"cmp_[0-9A-Za-z]{4,20}", fullmatch=True),
    shares=st.lists(st.integers(min_value=5, max_value=40), min_size=1, max_size=4),
)
def test_ten_thousand_recipients_fall_within_one_point_of_the_configured_shares(
    campaign_id: str, shares: list[int]
) -> None:
    # Given variants with these shares and the holdout taking what is left
    holdout = 100 - sum(shares)
    if holdout < 0:
        return
    variants = [{"key": f"v{i}", "share": s, "content": EMAIL} for i, s in enumerate(shares)]
    arms = arms_of(campaign_in(variants=variants, holdout_share=holdout))

    # When 10,000 recipients are assigned, twice
    first = count_arms(campaign_id, RECIPIENTS, arms)
    again = {c: assign(campaign_id, c, arms) for c in RECIPIENTS}

    # Then each arm holds its share within one point, and the second run puts everyone where the first did
    for arm in arms:
        assert abs(first[arm.key] / len(RECIPIENTS) * 100 - arm.share) <= 1.0, (arm, first)
    assert count_arms(campaign_id, RECIPIENTS, arms) == first
    assert {c: assign(campaign_id, c, arms) for c in RECIPIENTS} == again


def test_the_holdout_keeps_its_members_when_the_variants_are_reshared() -> None:
    before = arms_of(campaign_in())
    after = arms_of(
        campaign_in(variants=[{"key": "a", "share": 80, "content": EMAIL}, {"key": "b", "share": 10, "content": EMAIL}])
    )
    held_before = {c for c in RECIPIENTS if assign("cmp_x", c, before) == HOLDOUT}
    held_after = {c for c in RECIPIENTS if assign("cmp_x", c, after) == HOLDOUT}
    assert held_before == held_after


def test_two_campaigns_draw_independently() -> None:
    arms = arms_of(campaign_in())
    same = sum(assign("cmp_one", c, arms) == assign("cmp_two", c, arms) for c in RECIPIENTS)
    # independent draws agree with probability .45^2 + .45^2 + .1^2 = 0.415
    assert 0.38 < same / len(RECIPIENTS) < 0.45


def test_the_test_phase_takes_its_share() -> None:
    inside = sum(in_test_phase("cmp_auto", c, 20) for c in RECIPIENTS)
    assert 1900 <= inside <= 2100


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"holdout_share": 20}, "add up to 110"),
        ({"variants": [{"key": "holdout", "share": 90, "content": EMAIL}]}, "unique"),
        ({"audience": {}}, "segment_ids or customer_ids"),
        (
            {
                "auto_winner": {"metric": "clicks", "test_share": 20, "test_hours": 4},
                "variants": [{"key": "a", "share": 90, "content": EMAIL}],
            },
            "at least two variants",
        ),
        ({"channel_strategy": {"mode": "single", "channel": "sms"}}, "content for the channel sms"),
        ({"schedule": {"kind": "at"}}, "needs at"),
    ],
)
def test_a_campaign_that_does_not_add_up_is_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        campaign_in(**overrides)
