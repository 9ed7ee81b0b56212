"""The transactions engine's loyalty standing kept on the customer as traits: tier, balance, points about to
expire, so that what reads a customer's traits (contact cards, hence broadcast's rendering and journeys'
branches; segmentation once it declares them) can use them.

Every loyalty event (points earned, reversed, redeemed, expired; a tier change) carries the account as the
change left it (`standing`, event-carried state). Events arrive in any order and more than once, so a standing
is kept only when its account version is higher than the one the traits hold: a late or repeated event changes
nothing. Events are read by the fields every loyalty event carries, tolerant of the rest; the traits are the
transactions engine's own mapping of a standing (`ecrm.transactions.models.loyalty_traits`), the one segmentation
and personalization use too.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, ValidationError

from ecrm.core.contract import Contract
from ecrm.core.errors import InvalidInput, NotFound
from ecrm.customers.service import CustomerService
from ecrm.transactions.models import LOYALTY_EVENTS as LOYALTY_EVENT_TYPES
from ecrm.transactions.models import LOYALTY_VERSION_TRAIT, SOURCE, LoyaltyStanding, loyalty_traits

TRANSACTIONS_SOURCE = SOURCE
LOYALTY_EVENTS = tuple(event.detail_type for event in LOYALTY_EVENT_TYPES)
VERSION_TRAIT = LOYALTY_VERSION_TRAIT


class StandingView(LoyaltyStanding):
    """A standing read tolerantly: a field the transactions engine adds later does not fail the event."""

    model_config = ConfigDict(extra="ignore")


class LoyaltyEventView(Contract):
    model_config = ConfigDict(extra="ignore")

    customer_id: str
    standing: StandingView | None = None


def read_event(detail_type: str, detail: dict[str, Any]) -> LoyaltyEventView:
    """The customer and the standing an event carries; `InvalidInput` for an event of another shape."""
    if detail_type not in LOYALTY_EVENTS:
        raise InvalidInput(f"{detail_type} is not a loyalty event")
    try:
        return LoyaltyEventView.model_validate(detail.get("data"))
    except ValidationError as error:
        raise InvalidInput(f"a {detail_type} event of an unexpected shape: {error.errors()[0]['msg']}") from None


class LoyaltyTraits:
    def __init__(self, service: CustomerService) -> None:
        self.service = service

    def record(self, detail_type: str, detail: dict[str, Any]) -> bool:
        """True when the traits changed; False for a standing no newer than the one kept, an event without
        one, or a customer who is gone (erased)."""
        event = read_event(detail_type, detail)
        if event.standing is None:
            return False
        try:
            customer = self.service.get(event.customer_id)
        except NotFound:
            return False
        kept = customer.traits.get(VERSION_TRAIT)
        if isinstance(kept, int) and kept >= event.standing.account_version:
            return False
        recorded = self.service.record_analysis(event.customer_id, traits=loyalty_traits(event.standing))
        return recorded is not None
