"""The transactions engine's order changes on the customer's timeline: an order placed, paid, shipped,
delivered or cancelled, and each return with its refund, are things the customer did or saw happen.

Each event becomes one interaction whose id is derived from the event's id, so a redelivered event adds
nothing. Events are read by the fields every order event carries, tolerant of the rest, so the customer store
follows the transactions engine without importing its code.

The interaction types are chosen so that no engine counts an order twice. Every interaction is published
as `InteractionRecorded`, which segmentation's behaviour events and personalization's item history read; the
orders themselves reach them from the transactions engine (the lake's `order_lines`, `OrderPlaced`). So:
- no type here is a purchase to personalization (`order_placed`, `order_completed`, `purchase`... are) nor
  the OLAP's return fact (`order_returned`): an order placed is `order_received`, a return `order_refunded`;
- no property carries a name those readers take as an amount (`total`, `amount`, `price`...), a product
  (`product_id`, `products`) or a category: money is `total_minor`/`refund_minor`, items are `skus`.
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
ORDER_EVENTS = ("OrderPlaced", "OrderStatusChanged", "OrderReturned")
PLACED = "order_received"
REFUNDED = "order_refunded"
# An order's status (`OrderStatusChanged.status`) -> the interaction type it becomes
STATUS_TYPES = {
    "paid": "order_paid",
    "shipped": "order_shipped",
    "delivered": "order_delivered",
    "cancelled": "order_cancelled",
}
INTERACTION_TYPES = frozenset({PLACED, REFUNDED, *STATUS_TYPES.values()})
SHOWN = (
    "order_id",
    "currency",
    "store",
    "total_minor",
    "previous_status",
    "status",
    "reason",
    "refund_minor",
    "return_id",
    "fully_returned",
)
# The sales channels that are also timeline channels; the others stay a property (`sales_channel`).
TIMELINE_CHANNELS = frozenset({"web", "app", "store"})


class OrderEventData(Contract):
    model_config = ConfigDict(extra="ignore")

    customer_id: str
    order_id: str
    status: str | None = None
    channel: str | None = None


def interaction_type_of(detail_type: str, data: OrderEventData) -> str:
    if detail_type == "OrderPlaced":
        return PLACED
    if detail_type == "OrderReturned":
        return REFUNDED
    if detail_type == "OrderStatusChanged" and data.status in STATUS_TYPES:
        return STATUS_TYPES[data.status]
    raise InvalidInput(f"{detail_type} (status {data.status}) is not recorded on the timeline")


def interaction_for(detail_type: str, detail: dict[str, Any]) -> tuple[str, InteractionIn]:
    """The customer and the interaction an event becomes; `InvalidInput` for an event of another shape."""
    if detail_type not in ORDER_EVENTS:
        raise InvalidInput(f"{detail_type} is not recorded on the timeline")
    try:
        metadata = EventMetadataView.model_validate(detail.get("metadata"))
        data = OrderEventData.model_validate(detail.get("data"))
    except ValidationError as error:
        raise InvalidInput(f"a {detail_type} event of an unexpected shape: {error.errors()[0]['msg']}") from None
    raw = detail["data"]
    properties: dict[str, Any] = {name: raw[name] for name in SHOWN if raw.get(name) is not None}
    lines = raw.get("lines")
    if isinstance(lines, list):
        properties["skus"] = [line.get("sku") for line in lines if isinstance(line, dict)][:100]
        properties["units"] = sum(
            line.get("quantity", 0)
            for line in lines
            if isinstance(line, dict) and isinstance(line.get("quantity"), int)
        )
    if data.channel:
        properties["sales_channel"] = data.channel
    interaction = InteractionIn(
        type=interaction_type_of(detail_type, data),
        occurred_at=metadata.occurred_at,
        source="transactions",
        channel=data.channel if data.channel in TIMELINE_CHANNELS else None,
        interaction_id=f"transactions:{metadata.id}",
        properties=properties,
    )
    return data.customer_id, interaction


class OrderTimeline(EventTimeline):
    def __init__(self, service: CustomerService) -> None:
        super().__init__(service, interaction_for)
