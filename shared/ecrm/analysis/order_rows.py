"""The transactions engine's order events as the order rows segmentation's real-time path reads.

The same rows the transactions engine writes to the lake's `order_lines` (a purchase per line placed, a
negative return per line returned, one cancellation per cancelled order), so the predicate on the projection
and the SQL on the lake see one history. Built from the engine's published events (its `models`), since an
engine reads another only through its contract.
"""

from __future__ import annotations

from typing import Any

from ecrm.analysis.predicate import OrderRow
from ecrm.analysis.projection import millisecond
from ecrm.transactions.models import OrderPlaced, OrderReturned, OrderStatusChanged, major_units

ORDER_EVENTS = (OrderPlaced, OrderReturned, OrderStatusChanged)


def major_amount(minor: int, currency: str) -> float:
    """Minor units in the major unit, converted as the transactions engine converts the lake's `amount`."""
    return float(major_units(minor, currency))


def order_rows_of(event: Any, *, event_id: str) -> list[OrderRow]:
    """The rows of one order event ([] for a status change other than a cancellation)."""
    if isinstance(event, OrderPlaced):
        return [
            OrderRow(
                event_id=event_id,
                order_id=event.order_id,
                kind="purchase",
                occurred_at=millisecond(event.placed_at),
                amount=major_amount(line.quantity * line.unit_price_minor, event.currency),
                currency=event.currency,
                sku=line.sku,
                category=line.category,
                channel=event.channel,
                store=event.store,
            )
            for line in event.lines
        ]
    if isinstance(event, OrderReturned):
        return [
            OrderRow(
                event_id=event_id,
                order_id=event.order_id,
                kind="return",
                occurred_at=millisecond(event.returned_at),
                amount=major_amount(-line.quantity * line.unit_price_minor, event.currency),
                currency=event.currency,
                sku=line.sku,
                category=line.category,
            )
            for line in event.lines
        ]
    if isinstance(event, OrderStatusChanged) and event.status == "cancelled":
        return [
            OrderRow(
                event_id=event_id,
                order_id=event.order_id,
                kind="cancellation",
                occurred_at=millisecond(event.changed_at),
                amount=major_amount(-event.refund_minor, event.currency),
                currency=event.currency,
            )
        ]
    return []
