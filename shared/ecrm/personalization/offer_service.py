"""Offers in use: the catalogue, a customer's offers, the next best offer per channel, and acceptances.

`offers` decides (eligibility, ranking, arbitration); this service reads what it needs, stores what it decides
and publishes the offer events. A request reads the catalogue (one query), the counters of the offers in
play (one BatchGetItem per 100 offers) and the customer (one query: projection, usage, remembered decision).

When is an offer *presented*? When the channel about to show it (a page, an app screen, a message being
rendered) says so: `GET /customers/{id}/next-best-offer?channel=&present=true`, which only the groups that
present offers may ask. The presentation is counted once per (decision, channel, offer), so a retried or
repeated request within the decision window counts once, and `OfferPresented` is published when it is counted.
Without `present=true` the request is a look without side effects (an analyst's question, an agent's screen, a
template preview): nothing is counted and no decision is remembered, as a GET should be. `GET /me/offers` is the
customer's own list of what they may take up, not a presentation.

Acceptances are counted once per business key (`acceptance_id`), in one transaction with the customer's cap and
the offer's budget as conditions, so two concurrent redemptions cannot overrun either. The acceptance that uses
the last of a budget marks the offer exhausted and publishes `OfferExhausted`, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from ecrm.core.clock import Clock
from ecrm.core.errors import Conflict, NotFound
from ecrm.core.events import DomainEvent
from ecrm.core.ids import new_id
from ecrm.personalization.offers import (
    DECISION_WINDOW,
    PRIOR_STRENGTH,
    CustomerContext,
    NextBestOffer,
    Offer,
    OfferAccepted,
    OfferChannel,
    OfferCreated,
    OfferExhausted,
    OfferIn,
    OfferOutcomes,
    OfferPresented,
    budget_exhausted,
    customer_offers,
    next_best_offer,
    trait_buckets,
)
from ecrm.personalization.projection import CustomerProjection
from ecrm.personalization.service_models import Acceptance, AcceptanceIn, CustomerOffer, CustomerOffers
from ecrm.personalization.store import CustomerRecord, PersonalizationStore

DECISION_ATTEMPTS = 3


class Publisher(Protocol):
    """What the services need of an event publisher (`EventPublisher.publish_all`)."""

    def publish_all(self, events: Sequence[DomainEvent], *, correlation_id: str | None = None) -> Any: ...


class OfferUnavailable(Conflict):
    code = "offer-unavailable"
    title = "The offer cannot be taken up"


@dataclass
class OfferService:
    store: PersonalizationStore
    publisher: Publisher
    clock: Clock
    decision_window: timedelta = DECISION_WINDOW
    prior_strength: float = PRIOR_STRENGTH

    # -- the catalogue --------------------------------------------------------------------------------------------
    def create(self, body: OfferIn, *, correlation_id: str | None = None) -> Offer:
        now = self.clock.now()
        offer = Offer(offer_id=new_id("off_"), created_at=now, updated_at=now, **body.model_dump())
        self.store.put_offer(offer)
        created = OfferCreated(
            offer_id=offer.offer_id,
            name=offer.name,
            channels=list(offer.channels),
            category=offer.category,
            exclusive_group=offer.exclusive_group,
            priority=offer.priority,
            value=offer.value,
            valid_from=offer.valid_from,
            valid_until=offer.valid_until,
            created_at=now,
        )
        self.publisher.publish_all([created], correlation_id=correlation_id)
        return offer

    def all(self) -> list[Offer]:
        offers, _ = self._with_evidence(self.store.offers())
        return sorted(offers, key=lambda o: o.created_at)

    def get(self, offer_id: str) -> Offer:
        offer = self.store.offer(offer_id)
        if offer is None:
            raise NotFound(f"offer {offer_id} does not exist")
        return self._with_evidence([offer])[0][0]

    # -- a customer's offers --------------------------------------------------------------------------------------
    def for_customer(self, customer_id: str) -> CustomerOffers:
        """`GET /me/offers`: what the customer may take up now, best first, without the targeting behind it."""
        now = self.clock.now()
        offers, outcomes = self._in_play(now)
        record = self.store.load_customer(customer_id)
        ranking = customer_offers(
            offers,
            _context(record),
            now=now,
            usage=record.usage,
            outcomes=outcomes,
            prior_strength=self.prior_strength,
        )
        by_id = {o.offer_id: o for o in offers}
        return CustomerOffers(
            items=[
                CustomerOffer(
                    offer_id=r.offer_id,
                    name=by_id[r.offer_id].name,
                    description=by_id[r.offer_id].description,
                    code=by_id[r.offer_id].code,
                    category=by_id[r.offer_id].category,
                    valid_until=by_id[r.offer_id].valid_until,
                )
                for r in ranking.ranked
            ]
        )

    def next_best(
        self,
        customer_id: str,
        channel: OfferChannel,
        *,
        present: bool = True,
        correlation_id: str | None = None,
        record: CustomerRecord | None = None,
    ) -> NextBestOffer:
        """The offer to show on `channel` now, consistent with every other channel (see the module docstring)."""
        now = self.clock.now()
        offers, outcomes = self._in_play(now)
        record = record or self.store.load_customer(customer_id)
        customer = _context(record)
        previous = record.decision
        for _ in range(DECISION_ATTEMPTS):
            result = next_best_offer(
                offers,
                customer,
                now=now,
                channel=channel,
                previous=previous,
                usage=record.usage,
                outcomes=outcomes,
                decision_window=self.decision_window,
                prior_strength=self.prior_strength,
            )
            if not present or not result.decided_now:
                break
            if self.store.save_decision(result.decision, replacing=previous):
                break
            previous = self.store.decision(customer_id)  # another channel decided first: walk its decision
        if present and result.offer is not None:
            buckets = trait_buckets(customer) if customer.profiling_allowed else []
            counted = self.store.record_presentation(
                customer_id, result.offer.offer_id, channel=channel, decision=result.decision, buckets=buckets
            )
            if counted:
                presented = OfferPresented(
                    offer_id=result.offer.offer_id,
                    customer_id=customer_id,
                    channel=channel,
                    propensity=result.offer.propensity,
                    expected_value=result.offer.expected_value,
                    decided_at=result.decision.decided_at,
                    presented_at=now,
                )
                self.publisher.publish_all([presented], correlation_id=correlation_id)
        return result

    def accept(self, offer_id: str, body: AcceptanceIn, *, correlation_id: str | None = None) -> Acceptance:
        offer = self.get(offer_id)
        accepted_at = body.accepted_at or self.clock.now()
        customer = _context(self.store.load_customer(body.customer_id))
        cost = float(offer.budget.unit_cost or 0.0) if offer.budget is not None else 0.0
        outcome = self.store.record_acceptance(
            body.customer_id,
            offer,
            acceptance_id=body.acceptance_id,
            cost=cost,
            buckets=trait_buckets(customer) if customer.profiling_allowed else [],
            record=body.model_dump(mode="json") | {"accepted_at": accepted_at.isoformat(), "cost": cost},
        )
        acceptance = Acceptance(
            offer_id=offer_id,
            customer_id=body.customer_id,
            acceptance_id=body.acceptance_id,
            accepted_at=accepted_at,
            counted=outcome == "counted",
            cost=cost,
            exhausted=False,
        )
        if outcome == "repeated":
            return acceptance
        if outcome == "cap reached":
            raise OfferUnavailable(f"customer {body.customer_id} has taken offer {offer_id} up as often as allowed")
        events: list[DomainEvent] = []
        if outcome == "counted":
            events.append(
                OfferAccepted(
                    offer_id=offer_id,
                    customer_id=body.customer_id,
                    channel=body.channel,
                    code=body.code,
                    cost=cost,
                    accepted_at=accepted_at,
                )
            )
        counters = self._with_evidence([offer])[0][0].counters
        reason = budget_exhausted(offer, counters)
        if reason is not None and self.store.set_offer_status(offer_id, "exhausted", expected="active", at=accepted_at):
            acceptance.exhausted = outcome == "counted"
            events.append(
                OfferExhausted(
                    offer_id=offer_id,
                    reason=reason,
                    accepted=counters.accepted,
                    cost_spent=counters.cost_spent,
                    exhausted_at=accepted_at,
                )
            )
        if events:
            self.publisher.publish_all(events, correlation_id=correlation_id)
        if outcome == "budget exhausted":
            raise OfferUnavailable(f"offer {offer_id} has no budget left ({reason or 'budget exhausted'})")
        return acceptance

    # -- reading ---------------------------------------------------------------------------------------------------
    def _in_play(self, now: datetime) -> tuple[list[Offer], dict[str, OfferOutcomes]]:
        """Offers not yet expired (expired ones could only ever be excluded), with fresh counters."""
        current = [o for o in self.store.offers() if o.valid_until is None or o.valid_until > now]
        return self._with_evidence(current)

    def _with_evidence(self, offers: list[Offer]) -> tuple[list[Offer], dict[str, OfferOutcomes]]:
        evidence = self.store.offer_evidence(o.offer_id for o in offers)
        merged = [
            o.model_copy(update={"counters": evidence[o.offer_id].counters}) if o.offer_id in evidence else o
            for o in offers
        ]
        return merged, {offer_id: e.outcomes for offer_id, e in evidence.items()}


def _context(record: CustomerRecord) -> CustomerContext:
    return (record.projection or CustomerProjection(customer_id=record.customer_id)).context()
