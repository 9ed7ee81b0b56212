"""The transactions engine's brokered-purchase outcomes on the customer's timeline: a purchase that
completed and one that ended compensated are both something the customer experienced.

Each event becomes one interaction whose id is derived from the event's id, so a redelivered event adds
nothing. Events are read by the fields every purchase outcome carries, tolerant of the rest, so the
customer store follows the transactions engine without importing its code.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, ValidationError

from ecrm.core.contract import Contract
from ecrm.core.errors import InvalidInput
from ecrm.customers.event_timeline import EventTimeline
from ecrm.customers.message_timeline import EventMetadataView
from ecrm.customers.models import InteractionIn
from ecrm.customers.service import CustomerService

TRANSACTIONS_SOURCE = "ecrm.transactions"
# detail-type -> the interaction type it becomes on the timeline
INTERACTION_TYPES = {"PurchaseBrokered": "purchase_brokered", "PurchaseFailed": "purchase_failed"}
SHOWN = (
    "purchase_id",
    "product_id",
    "vendor_id",
    "quantity",
    "total_minor",
    "currency",
    "order_id",
    "reason",
    "released",
    "refunded",
)


class PurchaseOutcomeData(Contract):
    model_config = ConfigDict(extra="ignore")

    customer_id: str


def interaction_for(detail_type: str, detail: dict[str, Any]) -> tuple[str, InteractionIn]:
    """The customer and the interaction an event becomes; `InvalidInput` for an event of another shape."""
    interaction_type = INTERACTION_TYPES.get(detail_type)
    if interaction_type is None:
        raise InvalidInput(f"{detail_type} is not recorded on the timeline")
    try:
        metadata = EventMetadataView.model_validate(detail.get("metadata"))
        data = PurchaseOutcomeData.model_validate(detail.get("data"))
    except ValidationError as error:
        raise InvalidInput(f"a {detail_type} event of an unexpected shape: {error.errors()[0]['msg']}") from None
    raw = detail["data"]
    interaction = InteractionIn(
        type=interaction_type,
        occurred_at=metadata.occurred_at,
        source="transactions",
        interaction_id=f"transactions:{metadata.id}",
        properties={name: raw[name] for name in SHOWN if raw.get(name) is not None},
    )
    return data.customer_id, interaction


class PurchaseTimeline(EventTimeline):
    def __init__(self, service: CustomerService) -> None:
        super().__init__(service, interaction_for)
