"""Order events as rows of the lake's `order_lines` table (`ecrm.core.lake.ORDER_LINE_COLUMNS`).

A purchase is a positive row per line of an order placed; a return a negative row per line returned; a
cancellation one row, no sku, negative by what it refunded (zero for an order never paid): a reader
drops a cancelled order's purchase rows by `order_id`. `event_id` with `sku` identifies a row, so a
reader keeps one row per pair however often the queue delivered its event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ecrm.core.lake import lake_timestamp
from ecrm.transactions.ledger import major_units
from ecrm.transactions.models import OrderPlaced, OrderReturned, OrderStatusChanged


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


def order_rows(event: OrderPlaced | OrderReturned | OrderStatusChanged, *, event_id: str) -> list[dict[str, Any]]:
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
