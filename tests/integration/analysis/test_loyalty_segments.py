"""Loyalty standing in segments, on moto's DynamoDB and the emulated lake: a rule on the tier or on the points
about to expire validates, evaluates in real time as the transactions engine's loyalty events arrive (a late,
older standing changing nothing) and previews on the lake."""

from __future__ import annotations

from datetime import date, timedelta

from ecrm.analysis.customer_events import apply_customer_event
from ecrm.analysis.membership import MembershipService
from ecrm.analysis.models import PreviewIn
from ecrm.analysis.rule_text import describe
from ecrm.analysis.rules import problems
from ecrm.analysis.segments import RULE, SegmentService
from ecrm.analysis.store import AnalysisStore
from ecrm.transactions.models import LoyaltyStanding, PointsEarned, PointsRedeemed, TierChanged

from tests.integration.analysis.conftest import NOW, LakeStreams, RecordingPublisher, created, saved_segment

GOLD_MEMBER = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"
SILVER_MEMBER = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2F"
GOLD = {"trait": "loyalty_tier", "op": "eq", "value": "gold"}
EXPIRING_OVER_500 = {"trait": "loyalty_points_expiring_30d", "op": "gt", "value": 500}


def standing(version: int, *, tier: str, balance: int, expiring: int) -> LoyaltyStanding:
    return LoyaltyStanding(
        balance=balance,
        tier=tier,
        qualifying_points=balance,
        expiring_soon=expiring,
        expiring_by=date(2026, 12, 20),
        account_version=version,
        as_of=NOW + timedelta(minutes=version),
    )


def tier_changed(customer_id: str, held: LoyaltyStanding) -> TierChanged:
    return TierChanged(
        customer_id=customer_id,
        previous_tier="silver",
        tier=held.tier,
        qualifying_points=held.qualifying_points,
        changed_at=held.as_of,
        standing=held,
    )


def earned(customer_id: str, held: LoyaltyStanding) -> PointsEarned:
    return PointsEarned(
        customer_id=customer_id,
        entry_id=f"ent_{held.account_version}",
        points=100,
        cause="order:ord_1",
        expires_on=date(2027, 11, 23),
        earned_at=held.as_of,
        standing=held,
    )


def test_loyalty_rules_validate_against_the_catalogue_and_read_as_written() -> None:
    for rule in (GOLD, EXPIRING_OVER_500, {"trait": "loyalty_expiring_by", "op": "lt", "value": "2027-01-01"}):
        assert problems(RULE.validate_python(rule)) == [], rule
    assert "loyalty_tier" in describe(RULE.validate_python(GOLD))
    assert problems(RULE.validate_python({"trait": "loyalty_tier", "op": "gt", "value": 3})) != []


def test_loyalty_events_move_customers_in_real_time_and_a_late_standing_changes_nothing(
    membership: MembershipService, store: AnalysisStore, publisher: RecordingPublisher
) -> None:
    gold = saved_segment(store, "Gold members", GOLD)
    expiring = saved_segment(store, "Points about to expire", EXPIRING_OVER_500)
    apply_customer_event(membership, created(GOLD_MEMBER, country="FR"))

    # When the customer reaches gold with 600 points expiring within 30 days (account version 3)
    apply_customer_event(membership, tier_changed(GOLD_MEMBER, standing(3, tier="gold", balance=900, expiring=600)))

    # Then they entered both segments
    assert sorted(publisher.moves()) == sorted(
        [("SegmentEntered", gold.segment_id, GOLD_MEMBER), ("SegmentEntered", expiring.segment_id, GOLD_MEMBER)]
    )

    # When an older standing arrives late (version 2: silver, nothing expiring), and the newest one twice
    moves = len(publisher.moves())
    apply_customer_event(membership, earned(GOLD_MEMBER, standing(2, tier="silver", balance=800, expiring=0)))
    apply_customer_event(membership, tier_changed(GOLD_MEMBER, standing(3, tier="gold", balance=900, expiring=600)))

    # Then nothing moved, and the projection holds version 3
    assert len(publisher.moves()) == moves
    assert store.load_customer(GOLD_MEMBER).projection.traits["loyalty_tier"] == "gold"

    # When a redemption spends the expiring points (version 4)
    redeemed = PointsRedeemed(
        customer_id=GOLD_MEMBER,
        entry_id="ent_4",
        points=600,
        redemption_id="red_1",
        discount_minor=600,
        redeemed_at=NOW + timedelta(minutes=4),
        standing=standing(4, tier="gold", balance=300, expiring=0),
    )
    apply_customer_event(membership, redeemed)

    # Then the customer left the expiring segment only
    assert publisher.moves()[-1] == ("SegmentExited", expiring.segment_id, GOLD_MEMBER)
    assert len(publisher.moves()) == moves + 1


def test_a_loyalty_rule_previews_on_the_lake(
    membership: MembershipService, segments: SegmentService, streams: LakeStreams
) -> None:
    # Given a gold member and a silver one, their standings as the loyalty events left them
    apply_customer_event(membership, created(GOLD_MEMBER, country="FR"))
    apply_customer_event(membership, created(SILVER_MEMBER, country="FR"))
    apply_customer_event(membership, tier_changed(GOLD_MEMBER, standing(3, tier="gold", balance=900, expiring=600)))
    apply_customer_event(membership, earned(SILVER_MEMBER, standing(5, tier="silver", balance=700, expiring=200)))
    streams.deliver()

    # When a marketer previews each rule
    gold = segments.preview(PreviewIn.model_validate({"rule": GOLD, "sample": 5}))
    expiring = segments.preview(PreviewIn.model_validate({"rule": EXPIRING_OVER_500, "sample": 5}))
    balance = segments.preview(
        PreviewIn.model_validate({"rule": {"trait": "loyalty_balance", "op": "gte", "value": 700}, "sample": 5})
    )

    # Then the lake answers from the profile rows the projection wrote
    assert (gold.count, gold.sample) == (1, [GOLD_MEMBER])
    assert (expiring.count, expiring.sample) == (1, [GOLD_MEMBER])
    assert (balance.count, sorted(balance.sample)) == (2, sorted([GOLD_MEMBER, SILVER_MEMBER]))
