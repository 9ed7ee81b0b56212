"""Brokered purchases: the customer's request, the vendor's callback, and each step of the saga.

The saga (one Step Functions state machine, `infra/constructs/purchase_saga.py`) calls one method per
state: `reserve`, `charge`, `request_confirmation` (holding the execution's task token until the vendor
answers), `complete`; on any failure `compensate` names it, then `refund`, `release` and `fail` undo what
was done and tell the customer. Every step may run again (a retry, a redelivery): a step finds what its
earlier run did and changes nothing, and a forward step after compensation started raises
`PurchaseAborted`. Payment and vendor calls are keyed by the purchase id, so a repeated call is the same
call to them too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from ecrm.core.clock import Clock
from ecrm.core.errors import Conflict, InvalidInput, NotFound, ServiceUnavailable, Unauthorized
from ecrm.core.ids import new_id
from ecrm.transactions import purchases
from ecrm.transactions.models import (
    Purchase,
    PurchaseIn,
    StatusChangeIn,
    Vendor,
    VendorCallbackIn,
    VendorCallbackReceipt,
    VendorIn,
)
from ecrm.transactions.order_service import OrderService
from ecrm.transactions.orders import IdempotencyKeyReused
from ecrm.transactions.payments import PaymentProvider
from ecrm.transactions.purchase_store import (
    KeyAlreadyUsed,
    PurchaseStore,
    StalePurchase,
    StoredPurchase,
    TokenClosed,
    key_pk,
)
from ecrm.transactions.purchases import PricedOffer, PurchaseAborted
from ecrm.transactions.vendors import VendorClient, VendorEndpoint, VendorRefused, check_endpoint, verify_signature

MAX_KEY_LENGTH = 255
ATTEMPTS = 5
ORDER_CALLER = "purchase-saga"


class OfferSource(Protocol):
    def priced_offer(self, product_id: str, vendor_id: str) -> PricedOffer | None:
        """The vendor's current offer for the product, or None when it has none."""
        ...


class SagaControl(Protocol):
    def start(self, purchase_id: str) -> None: ...

    def succeed(self, token: str, output: dict[str, Any]) -> None: ...

    def fail(self, token: str, error: str, cause: str) -> None: ...


class PurchaseService:
    def __init__(
        self,
        store: PurchaseStore,
        *,
        offers: OfferSource,
        vendors: VendorClient,
        payments: PaymentProvider,
        saga: SagaControl,
        orders: OrderService,
        clock: Clock,
        callback_base_url: str,
        callback_tolerance_s: int = 300,
        allow_loopback_http: bool = False,
    ) -> None:
        self.store = store
        self.offers = offers
        self.vendors = vendors
        self.payments = payments
        self.saga = saga
        self.orders = orders
        self.clock = clock
        self.callback_base_url = callback_base_url.rstrip("/")
        self.callback_tolerance_s = callback_tolerance_s
        self.allow_loopback_http = allow_loopback_http

    # -- the customer's side -------------------------------------------------------------------------------
    def request(self, customer_id: str, body: PurchaseIn, *, idempotency_key: str | None) -> tuple[Purchase, bool]:
        """The purchase, created and started once per (customer, key); True when created by this call."""
        key = key_pk(customer_id, _checked_key(idempotency_key))
        fingerprint = hashlib.sha256(json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
        known = self.store.key_record(key)
        if known is None:
            purchase = self._new_purchase(customer_id, body)
            try:
                self.store.create(purchase, key=key, fingerprint=fingerprint, now=purchase.requested_at)
                self._start(purchase.purchase_id)
                return purchase, True
            except KeyAlreadyUsed:
                known = self.store.key_record(key)
                if known is None:
                    raise ServiceUnavailable("the Idempotency-Key is being used concurrently; retry") from None
        if known.fingerprint != fingerprint:
            raise IdempotencyKeyReused("this Idempotency-Key was used for another purchase; use a new key")
        purchase = self._stored(known.purchase_id).purchase
        if purchase.status == "requested":
            self._start(purchase.purchase_id)  # the first request's start may have been lost after the write
        return purchase, False

    def get_for_customer(self, customer_id: str, purchase_id: str) -> Purchase:
        stored = self.store.get(purchase_id)
        if stored is None or stored.purchase.customer_id != customer_id:
            raise NotFound(f"no purchase {purchase_id}")
        return stored.purchase

    def register_vendor(self, vendor_id: str, body: VendorIn) -> Vendor:
        try:
            check_endpoint(body.endpoint, allow_loopback_http=self.allow_loopback_http)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        return self.store.put_vendor(
            vendor_id, name=body.name, endpoint=body.endpoint, secret=body.secret, now=self.clock.now()
        )

    # -- the vendor's side ---------------------------------------------------------------------------------
    def vendor_callback(self, vendor_id: str, body: bytes, signature: str | None) -> VendorCallbackReceipt:
        """The vendor's answer, verified, resuming the saga once; a replayed answer changes nothing."""
        found = self.store.vendor(vendor_id)
        now_s = self.clock.now().timestamp()
        if found is None or not verify_signature(
            found[1].secret, signature, body, now_s=now_s, tolerance_s=self.callback_tolerance_s
        ):
            raise Unauthorized(
                "the callback's X-Ecrm-Signature is missing, stale or does not match the vendor's secret"
            )
        try:
            answer = VendorCallbackIn.model_validate_json(body)
        except ValidationError as exc:
            raise InvalidInput(f"the callback's body is not a vendor answer: {exc.errors()[0]['msg']}") from None
        for _ in range(ATTEMPTS):
            stored = self.store.get(answer.purchase_id)
            if stored is None or stored.purchase.vendor_id != vendor_id:
                raise NotFound(f"vendor {vendor_id} has no purchase {answer.purchase_id}")
            try:
                return self._take_answer(stored, answer)
            except StalePurchase:
                continue
        raise ServiceUnavailable("the purchase is changing concurrently; send the callback again")

    def _take_answer(self, stored: StoredPurchase, answer: VendorCallbackIn) -> VendorCallbackReceipt:
        purchase, token, now = stored.purchase, stored.task_token, self.clock.now()
        if purchase.status == "awaiting_confirmation":
            changed = (
                purchases.advance(purchase, "confirmed", now, vendor_ref=answer.vendor_reference)
                if answer.outcome == "confirmed"
                else purchases.start_compensation(purchase, "confirmation_refused", answer.reason, now)
            )
            assert changed is not None  # awaiting: compensation has not started
            self.store.save(changed, expected_version=purchase.version, task_token=token, now=now)
            try:
                self._resume(token, answer)
            except TokenClosed:
                raise Conflict(
                    "the answer came after the purchase stopped waiting for it; the reservation is being released",
                    purchase_status=changed.status,
                ) from None
            return VendorCallbackReceipt(purchase_id=purchase.purchase_id, status=changed.status, replayed=False)
        same_confirmation = (
            answer.outcome == "confirmed"
            and purchases.already_past(purchase, "confirmed")
            and purchase.vendor_ref == answer.vendor_reference
        )
        same_refusal = answer.outcome == "refused" and purchase.failure == "confirmation_refused"
        if not (same_confirmation or same_refusal):
            raise Conflict(
                f"purchase {purchase.purchase_id} is not awaiting a confirmation: it is {purchase.status}"
                + (f" ({purchase.failure})" if purchase.failure else ""),
                purchase_status=purchase.status,
            )
        if purchase.status in ("confirmed", "compensating") and token:
            with contextlib.suppress(TokenClosed):  # the first answer may have been recorded, its resumption lost
                self._resume(token, answer)
        return VendorCallbackReceipt(purchase_id=purchase.purchase_id, status=purchase.status, replayed=True)

    def _resume(self, token: str | None, answer: VendorCallbackIn) -> None:
        if token is None:
            raise TokenClosed("no task token stored")
        if answer.outcome == "confirmed":
            self.saga.succeed(token, {"outcome": "confirmed", "vendor_reference": answer.vendor_reference})
        else:
            self.saga.fail(token, "ConfirmationRefused", answer.reason or "the vendor refused the purchase")

    # -- the saga's forward steps --------------------------------------------------------------------------
    def reserve(self, purchase_id: str) -> Purchase:
        def step(purchase: Purchase, now: datetime) -> Purchase:
            reference = self.vendors.reserve(self._endpoint(purchase.vendor_id), purchase)
            return purchases.advance(purchase, "reserved", now, reservation_ref=reference)

        return self._forward(purchase_id, "reserved", step)

    def charge(self, purchase_id: str) -> Purchase:
        def step(purchase: Purchase, now: datetime) -> Purchase:
            payment_ref = self.payments.charge(
                key=purchase.purchase_id,
                customer_id=purchase.customer_id,
                amount_minor=purchase.total_minor,
                currency=purchase.currency,
            )
            return purchases.advance(purchase, "charged", now, payment_ref=payment_ref)

        return self._forward(purchase_id, "charged", step)

    def request_confirmation(self, purchase_id: str, task_token: str) -> Purchase:
        """Keeps the token the execution waits on, then asks the vendor to confirm (a retry renews both)."""
        stored = self._stored(purchase_id)
        purchase, now = stored.purchase, self.clock.now()
        if purchase.status == "charged":
            waiting = purchases.advance(purchase, "awaiting_confirmation", now)
        elif purchase.status == "awaiting_confirmation":
            waiting = purchases.renew_confirmation_request(purchase, now)
        elif purchases.already_past(purchase, "confirmed"):
            self.saga.succeed(task_token, {"outcome": "confirmed", "vendor_reference": purchase.vendor_ref})
            return purchase
        else:
            raise PurchaseAborted(f"purchase {purchase_id} is {purchase.status}")
        self.store.save(waiting, expected_version=purchase.version, task_token=task_token, now=now)
        callback_url = f"{self.callback_base_url}/vendors/{purchase.vendor_id}/callbacks"
        self.vendors.request_confirmation(self._endpoint(purchase.vendor_id), waiting, callback_url)
        return waiting

    def complete(self, purchase_id: str, *, correlation_id: str | None = None) -> Purchase:
        """The confirmed purchase becomes a paid order (which earns its points), then completes with its event."""
        purchase = self._stored(purchase_id).purchase
        if purchase.status == "completed":
            return purchase
        if purchase.status != "confirmed":
            raise PurchaseAborted(f"purchase {purchase_id} is {purchase.status}, not confirmed")
        placement = self.orders.place(
            purchases.order_for(purchase),
            idempotency_key=purchase.purchase_id,
            caller=ORDER_CALLER,
            correlation_id=correlation_id or purchase.purchase_id,
        )
        order = placement.order
        if order.status == "placed":
            order = self.orders.change_status(
                order.order_id,
                StatusChangeIn(status="paid", reason=f"paid through brokered purchase {purchase.purchase_id}"),
                correlation_id=correlation_id or purchase.purchase_id,
            )
        now = self.clock.now()
        completed, event = purchases.complete(purchase, order.order_id, now)
        self.store.save(
            completed, expected_version=purchase.version, event=event, correlation_id=correlation_id, now=now
        )
        return completed

    # -- compensation --------------------------------------------------------------------------------------
    def compensate(self, purchase_id: str, error: str | None, cause: str | None) -> Purchase:
        """Compensating, named by the first failure (a refusal recorded by the callback stays the reason)."""
        purchase, now = self._stored(purchase_id).purchase, self.clock.now()
        failure = purchases.failure_for(purchase, error)
        changed = purchases.start_compensation(purchase, failure, _cause_text(cause), now)
        if changed is None:
            return purchase
        self.store.save(changed, expected_version=purchase.version, now=now)
        return changed

    def refund(self, purchase_id: str) -> Purchase:
        purchase = self._stored(purchase_id).purchase
        if purchase.status == "failed" or purchase.refunded:
            return purchase
        if not self.payments.refund(key=purchase.purchase_id):
            return purchase  # nothing was charged
        refunded = purchases.mark_refunded(purchase, self.clock.now())
        self.store.save(refunded, expected_version=purchase.version, now=refunded.updated_at)
        return refunded

    def release(self, purchase_id: str) -> Purchase:
        purchase = self._stored(purchase_id).purchase
        if purchase.status == "failed" or purchase.released:
            return purchase
        refused_at_reservation = (
            purchase.failure in ("vendor_refused", "offer_unavailable") and not purchase.reservation_ref
        )
        if refused_at_reservation:
            return purchase  # the vendor holds nothing for it
        self.vendors.release(self._endpoint(purchase.vendor_id), purchase.purchase_id)
        released = purchases.mark_released(purchase, self.clock.now())
        self.store.save(released, expected_version=purchase.version, now=released.updated_at)
        return released

    def fail(self, purchase_id: str, *, correlation_id: str | None = None) -> Purchase:
        purchase = self._stored(purchase_id).purchase
        if purchase.status == "failed":
            return purchase
        failed, event = purchases.fail(purchase, self.clock.now())
        self.store.save(
            failed, expected_version=purchase.version, event=event, correlation_id=correlation_id, now=failed.updated_at
        )
        return failed

    # -- helpers -------------------------------------------------------------------------------------------
    def _forward(self, purchase_id: str, status: Any, step: Callable[[Purchase, datetime], Purchase]) -> Purchase:
        purchase = self._stored(purchase_id).purchase
        if purchases.already_past(purchase, status):
            return purchase
        if purchase.status in ("compensating", "failed"):
            raise PurchaseAborted(f"purchase {purchase_id} is {purchase.status} ({purchase.failure})")
        changed = step(purchase, self.clock.now())
        self.store.save(changed, expected_version=purchase.version, now=changed.updated_at)
        return changed

    def _new_purchase(self, customer_id: str, body: PurchaseIn) -> Purchase:
        offer = self.offers.priced_offer(body.product_id, body.vendor_id)
        if offer is None:
            raise NotFound(f"vendor {body.vendor_id} has no offer for product {body.product_id}")
        if not offer.in_stock:
            raise Conflict(f"vendor {body.vendor_id} has product {body.product_id} out of stock")
        if self.store.vendor(body.vendor_id) is None:
            raise Conflict(f"vendor {body.vendor_id} does not take brokered purchases (no endpoint registered)")
        return purchases.new_purchase(new_id("pur_"), customer_id, body, offer, self.clock.now())

    def _start(self, purchase_id: str) -> None:
        try:
            self.saga.start(purchase_id)
        except Exception as exc:  # the purchase is saved: the same request again starts it
            raise ServiceUnavailable(
                "the purchase is saved but could not be started; send the request again with the same Idempotency-Key"
            ) from exc

    def _stored(self, purchase_id: str) -> StoredPurchase:
        stored = self.store.get(purchase_id)
        if stored is None:
            raise NotFound(f"no purchase {purchase_id}")
        return stored

    def _endpoint(self, vendor_id: str) -> VendorEndpoint:
        found = self.store.vendor(vendor_id)
        if found is None:
            raise VendorRefused(f"vendor {vendor_id} has no endpoint registered")
        return found[1]


def _cause_text(cause: str | None) -> str | None:
    """A Lambda error's cause is its JSON (`errorMessage`, `errorType`, `stackTrace`): keep the message."""
    if not cause:
        return None
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause
    return str(parsed.get("errorMessage") or cause) if isinstance(parsed, dict) else cause


def _checked_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise InvalidInput("a purchase takes an Idempotency-Key header (a unique value per new purchase)")
    key = key.strip()
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(f"the Idempotency-Key is printable text of at most {MAX_KEY_LENGTH} characters")
    return key
