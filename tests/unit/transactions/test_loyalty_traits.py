"""A loyalty standing becomes `loyalty_*` traits by one mapping, the transactions engine's, in every engine that
keeps it: the customer store's traits and segmentation's declared fields cannot drift apart."""

from __future__ import annotations

from datetime import UTC, date, datetime

from ecrm.analysis.rules import LOYALTY_TRAITS
from ecrm.customers import loyalty_traits as customer_traits
from ecrm.transactions.models import LOYALTY_EVENTS, LoyaltyStanding, is_newer_standing, loyalty_traits

STANDING = LoyaltyStanding(
    balance=640,
    tier="gold",
    qualifying_points=2100,
    expiring_soon=120,
    expiring_by=date(2026, 7, 1),
    account_version=7,
    as_of=datetime(2026, 6, 1, 9, 30, tzinfo=UTC),
)


def test_a_standing_becomes_every_trait_segmentation_declares_and_when_it_held() -> None:
    traits = loyalty_traits(STANDING)
    assert set(LOYALTY_TRAITS) <= set(traits)
    assert traits["loyalty_tier"] == "gold"
    assert traits["loyalty_points_expiring_30d"] == 120
    assert traits["loyalty_expiring_by"] == "2026-07-01"
    assert traits["loyalty_as_of"] == "2026-06-01T09:30:00+00:00"


def test_the_customer_store_reads_the_same_events_and_keeps_the_same_traits() -> None:
    assert tuple(e.detail_type for e in LOYALTY_EVENTS) == customer_traits.LOYALTY_EVENTS
    view = customer_traits.read_event(
        "TierChanged",
        {"data": {"customer_id": "cus_1", "standing": {**STANDING.model_dump(mode="json"), "added_later": 1}}},
    )
    assert view.standing is not None
    assert customer_traits.loyalty_traits(view.standing) == loyalty_traits(STANDING)


def test_only_a_newer_account_version_replaces_the_one_held() -> None:
    assert is_newer_standing({}, STANDING)
    assert is_newer_standing({"loyalty_account_version": 6}, STANDING)
    assert not is_newer_standing({"loyalty_account_version": 7}, STANDING)
    assert not is_newer_standing({"loyalty_account_version": 8.0}, STANDING)
