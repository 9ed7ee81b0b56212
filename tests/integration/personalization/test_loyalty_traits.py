"""Loyalty standing in personalization, on moto: the transactions engine's loyalty events become `loyalty_*`
traits of the projection (a late, older standing changing nothing), which offer rules target and templates
render."""

from __future__ import annotations

from datetime import date, timedelta

from ecrm.personalization.customer_events import ProjectionService
from ecrm.personalization.offer_service import OfferService
from ecrm.personalization.store import PersonalizationStore
from ecrm.personalization.template_catalogue import build_context
from ecrm.transactions.models import LoyaltyStanding, PointsEarned, TierChanged

from tests.integration.personalization.conftest import NOW, created, customer_id
from tests.integration.personalization.test_offers import GRANTED, offer_in


def standing(version: int, *, tier: str, expiring: int) -> LoyaltyStanding:
    return LoyaltyStanding(
        balance=1000,
        tier=tier,
        qualifying_points=1000,
        expiring_soon=expiring,
        expiring_by=date(2026, 12, 20),
        account_version=version,
        as_of=NOW + timedelta(minutes=version),
    )


def tier_changed(customer: str, held: LoyaltyStanding) -> TierChanged:
    return TierChanged(
        customer_id=customer,
        previous_tier="silver",
        tier=held.tier,
        qualifying_points=held.qualifying_points,
        changed_at=held.as_of,
        standing=held,
    )


def test_offer_rules_and_templates_read_the_loyalty_standing(
    offers: OfferService, projections: ProjectionService, store: PersonalizationStore
) -> None:
    # Given an offer for gold members with more than 500 points about to expire
    gold = offers.create(
        offer_in(
            "Spend them before they go",
            eligibility={
                "conditions": [
                    {"trait": "loyalty_tier", "op": "==", "value": "gold"},
                    {"trait": "loyalty_points_expiring_30d", "op": ">", "value": 500},
                ]
            },
        )
    )
    customer = customer_id()
    projections.apply(created(customer, consents=GRANTED, country="FR"))
    assert offers.next_best(customer, "email", present=False).offer is None

    # When the customer reaches gold with 600 points expiring (account version 3)
    projections.apply(tier_changed(customer, standing(3, tier="gold", expiring=600)))

    # Then the offer is theirs
    decided = offers.next_best(customer, "email", present=False).offer
    assert decided is not None
    assert decided.offer_id == gold.offer_id

    # When an older standing arrives late (version 2: silver, nothing expiring)
    late = PointsEarned(
        customer_id=customer,
        entry_id="ent_2",
        points=100,
        cause="order:ord_1",
        expires_on=date(2027, 11, 23),
        earned_at=NOW,
        standing=standing(2, tier="silver", expiring=0),
    )
    projections.apply(late)

    # Then nothing changed: the projection keeps version 3, which templates render
    projection = store.projection(customer)
    assert projection is not None
    assert projection.traits["loyalty_tier"] == "gold"
    assert projection.traits["loyalty_account_version"] == 3
    rendered = build_context(projection.template_customer(), [], None, {})["customer"]
    assert (rendered["loyalty_tier"], rendered["loyalty_points_expiring_30d"]) == ("gold", 600)
    assert rendered["loyalty_expiring_by"] == "2026-12-20"
