"""The rules of an order, pure: its status machine, its totals, what a return may take back.

No AWS here: the service applies these to what the store read, and the store writes the result with its
event in one transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime

from ecrm.core.errors import Conflict, EcrmError
from ecrm.core.events import DomainEvent
from ecrm.transactions.models import (
    ImportedStatus,
    Order,
    OrderIn,
    OrderLine,
    OrderPlaced,
    OrderReturn,
    OrderReturned,
    OrderStatusChanged,
    ReturnedLine,
    ReturnIn,
    StatusChangeIn,
)

# status -> the statuses a staff request may move it to. `returned` is reached by returning every unit.
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "placed": frozenset({"paid", "cancelled"}),
    "paid": frozenset({"shipped", "cancelled"}),
    "shipped": frozenset({"delivered"}),
    "delivered": frozenset(),
    "cancelled": frozenset(),
    "returned": frozenset(),
}
# Units can come back once they left the warehouse.
RETURNABLE = frozenset({"shipped", "delivered"})


class UnprocessableOrder(EcrmError):
    """A well-formed request the order's state does not allow (a return of more than was bought)."""

    status = 422
    code = "unprocessable"
    title = "Unprocessable request"


class IdempotencyKeyReused(EcrmError):
    status = 422
    code = "idempotency-key-reused"
    title = "Idempotency-Key reused with another body"


def fingerprint(body: OrderIn) -> str:
    """What identifies a request's body whatever its key order or spacing: the key's replay check."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def import_fingerprint(body: OrderIn, *, placed_at: datetime, status: str, earns_points: bool) -> str:
    """What identifies an imported order whatever customer its identity resolves to today (a merge since the first
    import moves it, and the order is still the same one): the file's order, its date, status and points choice."""
    order = body.model_dump(mode="json", exclude={"customer_id"})
    order["lines"] = sorted(order["lines"], key=lambda line: line["sku"])  # an export may list them in any order
    content = {
        "order": order,
        "placed_at": placed_at.isoformat(),
        "status": status,
        "earns_points": earns_points,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def return_id_for(order_id: str, idempotency_key: str) -> str:
    """A return's id from its request's key: the same key on the same order names the same return."""
    digest = hashlib.sha256(f"{order_id}\n{idempotency_key}".encode()).hexdigest().upper()
    return f"ret_{digest[:26]}"


def new_order(order_id: str, body: OrderIn, now: datetime) -> tuple[Order, OrderPlaced]:
    lines = [OrderLine(**line.model_dump()) for line in body.lines]
    total = sum(line.quantity * line.unit_price_minor for line in lines)
    order = Order(
        order_id=order_id,
        customer_id=body.customer_id,
        status="placed",
        currency=body.currency,
        channel=body.channel,
        store=body.store,
        external_ref=body.external_ref,
        lines=lines,
        total_minor=total,
        placed_at=now,
        updated_at=now,
    )
    event = OrderPlaced(
        order_id=order_id,
        customer_id=body.customer_id,
        currency=body.currency,
        channel=body.channel,
        store=body.store,
        lines=list(body.lines),
        total_minor=total,
        placed_at=now,
    )
    return order, event


def imported_order(
    order_id: str, body: OrderIn, *, placed_at: datetime, status: ImportedStatus, earns_points: bool, now: datetime
) -> tuple[Order, list[DomainEvent]]:
    """An order of another system's history, at its own date: placed then, in the status the file gives.

    Its `OrderPlaced` carries the date it was placed, so the lake and the models see it then. It arrives
    where its history took it (paid, shipped, delivered) without a status event for each step it took
    elsewhere; a cancelled one is placed and cancelled, as the API would have recorded it, so every reader
    nets it out (the lake's signed rows, the ledger's reversal)."""
    order, placed = new_order(order_id, body, placed_at)
    placed = placed.model_copy(update={"earns_points": earns_points})
    if status == "cancelled":
        cancelled, change = change_status(order, StatusChangeIn(status="cancelled", reason="imported"), placed_at)
        return cancelled.model_copy(update={"updated_at": now}), [placed, change]
    return order.model_copy(update={"status": status, "updated_at": now}), [placed]


def change_status(order: Order, change: StatusChangeIn, now: datetime) -> tuple[Order, OrderStatusChanged]:
    """The order moved to `change.status`, or a 409 naming the moves its status allows."""
    allowed = TRANSITIONS[order.status]
    if change.status not in allowed:
        moves = ", ".join(sorted(allowed)) or "none"
        raise Conflict(
            f"an order {order.status} cannot become {change.status} (allowed: {moves})",
            status_now=order.status,
        )
    # Cancelling a paid order refunds what is left of it; a placed order was never paid.
    refund = (
        order.total_minor - order.refunded_minor if (change.status == "cancelled" and order.status == "paid") else 0
    )
    changed = order.model_copy(
        update={
            "status": change.status,
            "refunded_minor": order.refunded_minor + refund,
            "updated_at": now,
            "version": order.version + 1,
        }
    )
    event = OrderStatusChanged(
        order_id=order.order_id,
        customer_id=order.customer_id,
        previous_status=order.status,
        status=change.status,
        reason=change.reason,
        refund_minor=refund,
        currency=order.currency,
        changed_at=now,
    )
    return changed, event


def apply_return(order: Order, request: ReturnIn, return_id: str, now: datetime) -> tuple[Order, OrderReturned]:
    """Units back and refunded at their line's price; the order is `returned` once every unit is back."""
    if order.status not in RETURNABLE:
        raise Conflict(f"an order {order.status} takes no return (only once shipped or delivered)")
    by_sku = {line.sku: line for line in order.lines}
    asked: dict[str, int] = {}
    for line in request.lines:
        asked[line.sku] = asked.get(line.sku, 0) + line.quantity
    unknown = sorted(set(asked) - set(by_sku))
    if unknown:
        raise UnprocessableOrder(f"the order has no line for {', '.join(unknown)}", skus=unknown)
    too_many = sorted(sku for sku, qty in asked.items() if qty > by_sku[sku].quantity - by_sku[sku].returned_quantity)
    if too_many:
        raise UnprocessableOrder(
            f"more units returned than bought and not yet returned for {', '.join(too_many)}", skus=too_many
        )
    lines = [
        line.model_copy(update={"returned_quantity": line.returned_quantity + asked.get(line.sku, 0)})
        for line in order.lines
    ]
    refund = sum(by_sku[sku].unit_price_minor * qty for sku, qty in asked.items())
    fully = all(line.returned_quantity == line.quantity for line in lines)
    record = OrderReturn(
        return_id=return_id,
        lines=list(request.lines),
        refund_minor=refund,
        reason=request.reason,
        returned_at=now,
    )
    changed = order.model_copy(
        update={
            "lines": lines,
            "status": "returned" if fully else order.status,
            "refunded_minor": order.refunded_minor + refund,
            "returns": [*order.returns, record],
            "updated_at": now,
            "version": order.version + 1,
        }
    )
    event = OrderReturned(
        order_id=order.order_id,
        customer_id=order.customer_id,
        return_id=return_id,
        lines=[
            ReturnedLine(
                sku=sku,
                category=by_sku[sku].category,
                quantity=qty,
                unit_price_minor=by_sku[sku].unit_price_minor,
            )
            for sku, qty in asked.items()
        ],
        refund_minor=refund,
        currency=order.currency,
        fully_returned=fully,
        returned_at=now,
    )
    return changed, event
