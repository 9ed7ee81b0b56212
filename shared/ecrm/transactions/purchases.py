"""The brokered purchase as an aggregate: its states, the moves between them, and the events they end in.

Pure rules (no boto3, no clock): the store saves what these return, the saga's steps decide with them.

    requested -> reserved -> charged -> awaiting_confirmation -> confirmed -> completed
    any state but the two final ones -> compensating (the first failure named) -> failed

Each step of the saga may run more than once (a Lambda retry, a redelivered task), so each move tells a
step that already happened (`already_past`) from one that may not happen any more (`PurchaseAborted`): the
first is answered with success and changes nothing, the second ends the step so the saga compensates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import get_args

from ecrm.core.contract import Contract
from ecrm.transactions.models import (
    OrderIn,
    OrderLineIn,
    Purchase,
    PurchaseBrokered,
    PurchaseFailed,
    PurchaseFailure,
    PurchaseId,
    PurchaseIn,
    PurchaseStatus,
)

HAPPY_PATH: tuple[PurchaseStatus, ...] = (
    "requested",
    "reserved",
    "charged",
    "awaiting_confirmation",
    "confirmed",
    "completed",
)
FINAL: frozenset[PurchaseStatus] = frozenset({"completed", "failed"})
FAILURES: frozenset[str] = frozenset(get_args(PurchaseFailure))
ORDER_CHANNEL = "marketplace"


class SagaStepInput(Contract):
    """What the state machine hands each step: the purchase, and for some steps the token or the error."""

    purchase_id: PurchaseId
    task_token: str | None = None
    error: str | None = None
    cause: str | None = None


class PurchaseAborted(Exception):
    """The purchase is being compensated or is over: a forward step may not run any more."""


class IllegalPurchaseMove(Exception):
    """A move the state machine does not allow (a bug in a step, never the customer's input)."""


@dataclass(frozen=True)
class PricedOffer:
    """What the catalogue says a vendor sells a product for, as the purchase needs it."""

    product_name: str
    category: str | None
    unit_price_minor: int
    currency: str
    in_stock: bool = True
    sku: str | None = None  # the vendor's sku: what the order line carries, so history knows the vendor


def new_purchase(
    purchase_id: str, customer_id: str, request: PurchaseIn, offer: PricedOffer, now: datetime
) -> Purchase:
    return Purchase(
        purchase_id=purchase_id,
        customer_id=customer_id,
        product_id=request.product_id,
        vendor_id=request.vendor_id,
        quantity=request.quantity,
        sku=offer.sku,
        product_name=offer.product_name,
        category=offer.category,
        unit_price_minor=offer.unit_price_minor,
        total_minor=offer.unit_price_minor * request.quantity,
        currency=offer.currency,
        status="requested",
        requested_at=now,
        updated_at=now,
    )


def already_past(purchase: Purchase, status: PurchaseStatus) -> bool:
    """Whether the purchase went through `status` on its happy path already (a step's retry)."""
    if purchase.status not in HAPPY_PATH:
        return False
    return HAPPY_PATH.index(purchase.status) >= HAPPY_PATH.index(status)


def advance(purchase: Purchase, status: PurchaseStatus, now: datetime, **changes: object) -> Purchase:
    """The next state on the happy path; `PurchaseAborted` once compensation started."""
    if purchase.status in ("compensating", "failed"):
        raise PurchaseAborted(f"purchase {purchase.purchase_id} is {purchase.status} ({purchase.failure})")
    if status not in HAPPY_PATH or purchase.status not in HAPPY_PATH:
        raise IllegalPurchaseMove(f"{purchase.status} -> {status}")
    if HAPPY_PATH.index(status) != HAPPY_PATH.index(purchase.status) + 1:
        raise IllegalPurchaseMove(f"{purchase.status} -> {status}")
    return _changed(purchase, now, status=status, **changes)


def renew_confirmation_request(purchase: Purchase, now: datetime) -> Purchase:
    """A retried confirmation request: the purchase stays awaiting, with a new version (its new task token)."""
    if purchase.status != "awaiting_confirmation":
        raise IllegalPurchaseMove(f"a confirmation request is renewed while awaiting it, not {purchase.status}")
    return _changed(purchase, now)


def start_compensation(
    purchase: Purchase, failure: PurchaseFailure, detail: str | None, now: datetime
) -> Purchase | None:
    """Compensating, named by the first failure; None when it already is (or is over): nothing to change."""
    if purchase.status in ("compensating", "failed"):
        return None
    if purchase.status == "completed":
        raise IllegalPurchaseMove(f"purchase {purchase.purchase_id} completed: it is returned, not compensated")
    return _changed(purchase, now, status="compensating", failure=failure, failure_detail=_short(detail))


def failure_for(purchase: Purchase, error: str | None) -> PurchaseFailure:
    """The failure a saga error means: a known error names it, any other one is read from where it stopped."""
    named: dict[str, PurchaseFailure] = {
        "VendorRefused": "vendor_refused",
        "VendorUnavailable": "vendor_unavailable",
        "PaymentDeclined": "payment_declined",
        "PaymentUnavailable": "payment_unavailable",
        "ConfirmationRefused": "confirmation_refused",
        "States.Timeout": "confirmation_timed_out",
        "States.HeartbeatTimeout": "confirmation_timed_out",
        "OfferUnavailable": "offer_unavailable",
    }
    if error in named:
        return named[error]
    by_status: dict[str, PurchaseFailure] = {
        "requested": "vendor_unavailable",
        "reserved": "payment_unavailable",
        "charged": "vendor_unavailable",
        "awaiting_confirmation": "confirmation_timed_out",
    }
    return by_status.get(purchase.status, "completion_failed")


def mark_released(purchase: Purchase, now: datetime) -> Purchase:
    return _compensation_step(purchase, now, released=True)


def mark_refunded(purchase: Purchase, now: datetime) -> Purchase:
    return _compensation_step(purchase, now, refunded=True)


def fail(purchase: Purchase, now: datetime) -> tuple[Purchase, PurchaseFailed]:
    """The end of compensation: failed, with the event that tells the customer why."""
    if purchase.status != "compensating" or purchase.failure is None:
        raise IllegalPurchaseMove(f"a purchase fails from compensating, not {purchase.status}")
    failed = _changed(purchase, now, status="failed")
    event = PurchaseFailed(
        purchase_id=failed.purchase_id,
        customer_id=failed.customer_id,
        product_id=failed.product_id,
        vendor_id=failed.vendor_id,
        total_minor=failed.total_minor,
        currency=failed.currency,
        reason=purchase.failure,
        detail=failed.failure_detail,
        released=failed.released,
        refunded=failed.refunded,
        failed_at=now,
    )
    return failed, event


def complete(purchase: Purchase, order_id: str, now: datetime) -> tuple[Purchase, PurchaseBrokered]:
    completed = advance(purchase, "completed", now, order_id=order_id)
    event = PurchaseBrokered(
        purchase_id=completed.purchase_id,
        customer_id=completed.customer_id,
        product_id=completed.product_id,
        vendor_id=completed.vendor_id,
        quantity=completed.quantity,
        total_minor=completed.total_minor,
        currency=completed.currency,
        order_id=order_id,
        vendor_reference=completed.vendor_ref,
        brokered_at=now,
    )
    return completed, event


def order_for(purchase: Purchase) -> OrderIn:
    """The order a completed purchase becomes: it is what earns the points and what the lake counts."""
    return OrderIn(
        customer_id=purchase.customer_id,
        currency=purchase.currency,
        channel=ORDER_CHANNEL,
        store=purchase.vendor_id,
        external_ref=purchase.purchase_id,
        lines=[
            OrderLineIn(
                sku=purchase.sku or purchase.product_id,
                name=purchase.product_name,
                category=purchase.category,
                quantity=purchase.quantity,
                unit_price_minor=purchase.unit_price_minor,
            )
        ],
    )


def _compensation_step(purchase: Purchase, now: datetime, **changes: object) -> Purchase:
    if purchase.status != "compensating":
        raise IllegalPurchaseMove(f"compensation runs while compensating, not {purchase.status}")
    return _changed(purchase, now, **changes)


def _changed(purchase: Purchase, now: datetime, **changes: object) -> Purchase:
    return purchase.model_copy(update={**changes, "updated_at": now, "version": purchase.version + 1})


def _short(detail: str | None, limit: int = 500) -> str | None:
    return detail[:limit] if detail else None
