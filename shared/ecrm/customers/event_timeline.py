"""Another engine's events as interactions on the customer's timeline, each recorded once.

Broadcast's message events, the saga's purchase outcomes and the transactions engine's order changes all reach
the timeline the same way: each module maps its events to an interaction whose id is the event's own (so a
redelivery records nothing again), and this records it for the customer the event names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ecrm.core.errors import NotFound
from ecrm.customers.models import InteractionIn
from ecrm.customers.service import CustomerService

InteractionFor = Callable[[str, dict[str, Any]], tuple[str, InteractionIn]]


class EventTimeline:
    def __init__(self, service: CustomerService, interaction_for: InteractionFor) -> None:
        self.service = service
        self.interaction_for = interaction_for

    def record(self, detail_type: str, detail: dict[str, Any]) -> bool:
        """True when the event was recorded now; False when it already was, or its customer is gone (erased)."""
        customer_id, interaction = self.interaction_for(detail_type, detail)
        correlation_id = (detail.get("metadata") or {}).get("correlation_id")
        try:
            _, recorded = self.service.record_interaction(customer_id, interaction, correlation_id=correlation_id)
        except NotFound:
            return False
        return recorded
