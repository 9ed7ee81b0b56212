"""Order events as rows of the lake's `order_lines` table (`ecrm.core.lake.ORDER_LINE_COLUMNS`).

A purchase is a positive row per line of an order placed; a return a negative row per line returned; a
cancellation one row, no sku, negative by what it refunded (zero for an order never paid): a reader
drops a cancelled order's purchase rows by `order_id`. `event_id` with `sku` identifies a row, so a
reader keeps one row per pair however often the queue delivered its event.

The lake writer names a row by the change it records (`change_id`: the order and what happened to it), not by
the envelope: the order's history rebuilt from its state (`history_events`, when a merge attributes a merged
customer's orders to the survivor) is then the same rows as its events, and a reader keeps each once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ecrm.core.lake import lake_timestamp
from ecrm.transactions.ledger import major_units
from ecrm.transactions.models import (
    Order,
    OrderLineIn,
    OrderPlaced,
    OrderReturned,
    OrderStatusChanged,
    ReturnedLine,
)

OrderEvent = OrderPlaced | OrderReturned | OrderStatusChanged


def _row(
    event_id: str,
    order_id: str,
    customer_id: str,
    *,
    kind: str,
    amount_minor: int,
    currency: str,
    occurred_at: datetime,
    sku: str | None = None,
    category: str | None = None,
    quantity: int | None = None,
    channel: str | None = None,
    store: str | None = None,
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "order_id": order_id,
        "customer_id": customer_id,
        "kind": kind,
        "sku": sku,
        "category": category,
        "quantity": quantity,
        "amount_minor": amount_minor,
        "amount": float(major_units(amount_minor, currency)),
        "currency": currency,
        "channel": channel,
        "store": store,
        "occurred_at": lake_timestamp(occurred_at),
    }


def order_rows(event: OrderEvent, *, event_id: str) -> list[dict[str, Any]]:
    """The rows of one order event ([] for a status change other than a cancellation)."""
    ids = (event_id, event.order_id, event.customer_id)
    if isinstance(event, OrderPlaced):
        return [
            _row(
                *ids,
                kind="purchase",
                sku=line.sku,
                category=line.category,
                quantity=line.quantity,
                amount_minor=line.quantity * line.unit_price_minor,
                currency=event.currency,
                channel=event.channel,
                store=event.store,
                occurred_at=event.placed_at,
            )
            for line in event.lines
        ]
    if isinstance(event, OrderReturned):
        return [
            _row(
                *ids,
                kind="return",
                sku=line.sku,
                category=line.category,
                quantity=-line.quantity,
                amount_minor=-line.quantity * line.unit_price_minor,
                currency=event.currency,
                occurred_at=event.returned_at,
            )
            for line in event.lines
        ]
    if event.status != "cancelled":
        return []
    return [
        _row(
            *ids,
            kind="cancellation",
            amount_minor=-event.refund_minor,
            currency=event.currency,
            occurred_at=event.changed_at,
        )
    ]


def change_id(event: OrderEvent) -> str:
    """The change an order event records, as a row's `event_id`: the same however the change is written again."""
    if isinstance(event, OrderPlaced):
        return f"{event.order_id}:placed"
    if isinstance(event, OrderReturned):
        return f"{event.order_id}:{event.return_id}"
    return f"{event.order_id}:{event.status}"


def history_events(order: Order, customer_id: str) -> list[OrderEvent]:
    """The events that made the order what it is, as `customer_id`'s: placed, each return, the cancellation."""
    placed = OrderPlaced(
        order_id=order.order_id,
        customer_id=customer_id,
        currency=order.currency,
        channel=order.channel,
        store=order.store,
        lines=[OrderLineIn(**line.model_dump(exclude={"returned_quantity"})) for line in order.lines],
        total_minor=order.total_minor,
        placed_at=order.placed_at,
    )
    events: list[OrderEvent] = [placed]
    by_sku = {line.sku: line for line in order.lines}
    back = dict.fromkeys(by_sku, 0)
    for taken in order.returns:
        asked: dict[str, int] = {}
        for line in taken.lines:
            asked[line.sku] = asked.get(line.sku, 0) + line.quantity
            back[line.sku] += line.quantity
        events.append(
            OrderReturned(
                order_id=order.order_id,
                customer_id=customer_id,
                return_id=taken.return_id,
                lines=[
                    ReturnedLine(
                        sku=sku,
                        category=by_sku[sku].category,
                        quantity=quantity,
                        unit_price_minor=by_sku[sku].unit_price_minor,
                    )
                    for sku, quantity in asked.items()
                ],
                refund_minor=taken.refund_minor,
                currency=order.currency,
                fully_returned=all(back[sku] == line.quantity for sku, line in by_sku.items()),
                returned_at=taken.returned_at,
            )
        )
    if order.status == "cancelled":  # terminal: the order's last change was its cancellation
        refund = order.refunded_minor - sum(taken.refund_minor for taken in order.returns)
        events.append(
            OrderStatusChanged(
                order_id=order.order_id,
                customer_id=customer_id,
                previous_status="paid" if refund else "placed",
                status="cancelled",
                refund_minor=refund,
                currency=order.currency,
                changed_at=order.updated_at,
            )
        )
    return events
