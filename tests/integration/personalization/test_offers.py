"""Offers on moto: the catalogue, one consistent next best offer, presentations and acceptances counted once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from ecrm.core.clock import FixedClock
from ecrm.core.errors import NotFound
from ecrm.personalization.customer_events import ProjectionService
from ecrm.personalization.offer_service import OfferService, OfferUnavailable
from ecrm.personalization.offers import OfferIn
from ecrm.personalization.service_models import AcceptanceIn
from ecrm.personalization.store import PersonalizationStore

from tests.integration.personalization.conftest import (
    NOW,
    RecordingPublisher,
    created,
    customer_id,
    entered,
    traits,
)

GRANTED = {"email:marketing": "granted", "sms:marketing": "granted"}


def offer_in(name: str, **overrides: Any) -> OfferIn:
    body: dict[str, Any] = {
        "name": name,
        "channels": ["email", "sms", "web"],
        "valid_from": NOW - timedelta(days=1),
        "value": 10.0,
        "propensity_prior": 0.1,
    } | overrides
    return OfferIn.model_validate(body)


def known_customer(projections: ProjectionService, **attributes: Any) -> str:
    customer = customer_id()
    projections.apply(created(customer, consents=GRANTED, country="FR", **attributes))
    return customer


def test_an_offer_is_created_listed_and_announced(offers: OfferService, publisher: RecordingPublisher) -> None:
    # When
    offer = offers.create(offer_in("Spring sale", code="SPRING20"), correlation_id="cor_1")

    # Then
    assert offer.offer_id.startswith("off_")
    assert [o.offer_id for o in offers.all()] == [offer.offer_id]
    assert offers.get(offer.offer_id).code == "SPRING20"
    (announced,) = publisher.of("OfferCreated")
    assert announced.offer_id == offer.offer_id
    with pytest.raises(NotFound):
        offers.get("off_01JD3Z6Q5N8V4W7X2Y9A0B1C2D")


def test_every_channel_serves_the_same_decision_and_counts_each_presentation_once(
    offers: OfferService, projections: ProjectionService, publisher: RecordingPublisher, store: PersonalizationStore
) -> None:
    # Given a high-value offer on email only, and a lower one everywhere
    best = offers.create(offer_in("Best", channels=["email"], value=100.0))
    fallback = offers.create(offer_in("Fallback", value=5.0))
    customer = known_customer(projections)

    # When email asks twice and SMS once
    on_email = offers.next_best(customer, "email")
    again = offers.next_best(customer, "email")
    on_sms = offers.next_best(customer, "sms")

    # Then email shows the best, SMS (where it cannot be shown) the next of the same remembered decision
    assert on_email.offer is not None
    assert on_email.offer.offer_id == best.offer_id
    assert on_email.decided_now
    assert not again.decided_now
    assert not on_sms.decided_now
    assert on_sms.offer is not None
    assert on_sms.offer.offer_id == fallback.offer_id
    assert on_sms.decision == on_email.decision
    # and the repeated email request was not a second presentation
    presented = publisher.of("OfferPresented")
    assert [(p.offer_id, p.channel) for p in presented] == [(best.offer_id, "email"), (fallback.offer_id, "sms")]
    assert offers.get(best.offer_id).counters.presented == 1
    assert store.load_customer(customer).usage[best.offer_id].presented == 1


def test_a_look_without_presenting_counts_nothing_and_fixes_no_decision(
    offers: OfferService, projections: ProjectionService, publisher: RecordingPublisher, store: PersonalizationStore
) -> None:
    offer = offers.create(offer_in("Look"))
    customer = known_customer(projections)

    looked = offers.next_best(customer, "email", present=False)

    assert looked.offer is not None
    assert looked.offer.offer_id == offer.offer_id
    assert publisher.of("OfferPresented") == []
    assert store.load_customer(customer).decision is None


def test_a_decision_is_kept_for_its_window_then_made_afresh(
    offers: OfferService, projections: ProjectionService, clock: FixedClock
) -> None:
    first = offers.create(offer_in("First", value=10.0))
    customer = known_customer(projections)
    decided = offers.next_best(customer, "email")

    # a better offer arrives: nothing changes until the window ends
    better = offers.create(offer_in("Better", value=50.0))
    assert offers.next_best(customer, "email").offer.offer_id == first.offer_id  # type: ignore[union-attr]
    clock.advance(hours=25)
    renewed = offers.next_best(customer, "email")

    assert renewed.decided_now
    assert renewed.decision.decided_at > decided.decision.decided_at
    assert renewed.offer is not None
    assert renewed.offer.offer_id == better.offer_id


def test_segments_traits_and_consent_from_events_decide_eligibility(
    offers: OfferService, projections: ProjectionService
) -> None:
    # Given an offer for VIPs at churn risk, and a customer who becomes one
    vip = offers.create(
        offer_in(
            "Stay with us",
            eligibility={
                "segments": {"any_of": ["seg_vip"]},
                "conditions": [{"trait": "churn_risk", "op": ">=", "value": 0.5}],
            },
            value=40.0,
        )
    )
    customer = known_customer(projections)
    assert offers.next_best(customer, "email", present=False).offer is None

    projections.apply(entered(customer, "seg_vip"))
    projections.apply(traits(customer, churn_risk=0.8))

    assert offers.next_best(customer, "email", present=False).offer.offer_id == vip.offer_id  # type: ignore[union-attr]
    # and without a marketing consent on SMS, SMS gets nothing
    unreachable = offers.next_best(customer, "push", present=False)
    assert unreachable.offer is None
    assert {e.reason for e in unreachable.excluded} <= {"no marketing consent", "channel not allowed"}


def test_my_offers_lists_what_i_may_take_up_best_first(offers: OfferService, projections: ProjectionService) -> None:
    low = offers.create(offer_in("Low", value=1.0))
    high = offers.create(offer_in("High", value=90.0, code="HIGH"))
    offers.create(offer_in("Expired", valid_until=NOW - timedelta(hours=1), valid_from=NOW - timedelta(days=3)))
    customer = known_customer(projections)

    mine = offers.for_customer(customer)

    assert [o.offer_id for o in mine.items] == [high.offer_id, low.offer_id]
    assert mine.items[0].code == "HIGH"


def test_an_acceptance_counts_once_and_the_cap_holds(
    offers: OfferService, projections: ProjectionService, publisher: RecordingPublisher
) -> None:
    offer = offers.create(offer_in("Once", cap={"max_acceptances": 1}))
    customer = known_customer(projections)

    first = offers.accept(offer.offer_id, AcceptanceIn(customer_id=customer, acceptance_id="ord-1"))
    repeated = offers.accept(offer.offer_id, AcceptanceIn(customer_id=customer, acceptance_id="ord-1"))

    assert first.counted
    assert not repeated.counted
    assert len(publisher.of("OfferAccepted")) == 1
    with pytest.raises(OfferUnavailable, match="as often as allowed"):
        offers.accept(offer.offer_id, AcceptanceIn(customer_id=customer, acceptance_id="ord-2"))
    assert offers.get(offer.offer_id).counters.accepted == 1


def test_the_budget_is_never_overrun_and_the_last_acceptance_exhausts_the_offer(
    offers: OfferService, projections: ProjectionService, publisher: RecordingPublisher
) -> None:
    # Given a budget of 25 at 10 per acceptance: two acceptances fit, a third would overrun it
    offer = offers.create(offer_in("Budget", budget={"max_total_cost": 25, "unit_cost": 10}))
    customers = [known_customer(projections) for _ in range(3)]

    first = offers.accept(offer.offer_id, AcceptanceIn(customer_id=customers[0], acceptance_id="a"))
    second = offers.accept(offer.offer_id, AcceptanceIn(customer_id=customers[1], acceptance_id="b"))
    with pytest.raises(OfferUnavailable, match="no budget left"):
        offers.accept(offer.offer_id, AcceptanceIn(customer_id=customers[2], acceptance_id="c"))

    assert not first.exhausted
    assert second.exhausted
    stored = offers.get(offer.offer_id)
    assert (stored.status, stored.counters.accepted, stored.counters.cost_spent) == ("exhausted", 2, 20.0)
    (exhausted,) = publisher.of("OfferExhausted")
    assert exhausted.offer_id == offer.offer_id
    # an exhausted offer is offered to nobody
    assert offers.next_best(customers[2], "email", present=False).offer is None


def test_outcomes_by_trait_bucket_feed_the_propensity(
    offers: OfferService, projections: ProjectionService, store: PersonalizationStore
) -> None:
    offer = offers.create(offer_in("Buckets"))
    customer = known_customer(projections)
    projections.apply(traits(customer, rfm_segment="champions"))

    offers.next_best(customer, "email")
    offers.accept(offer.offer_id, AcceptanceIn(customer_id=customer, acceptance_id="x", channel="email"))

    evidence = store.offer_evidence([offer.offer_id])[offer.offer_id]
    assert evidence.outcomes.by_bucket["rfm_segment=champions"].presented == 1
    assert evidence.outcomes.by_bucket["rfm_segment=champions"].accepted == 1
    assert evidence.outcomes.by_bucket["country=FR"].accepted == 1
