"""Brokered purchases, vendors and their callbacks, and the purchase outcome events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from ecrm.core.events import DomainEvent
from ecrm.transactions.models.common import (
    SOURCE,
    ShortText,
    _Strict,
)

# -- brokered purchases ---------------------------------------------------------------------------------------
PURCHASE_ID_PATTERN = r"^pur_[0-9A-Z]{26}$"
VENDOR_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
PurchaseId = Annotated[str, StringConstraints(pattern=PURCHASE_ID_PATTERN)]
VendorId = Annotated[str, StringConstraints(pattern=VENDOR_ID_PATTERN)]
ProductRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")]

PurchaseStatus = Literal[
    "requested", "reserved", "charged", "awaiting_confirmation", "confirmed", "completed", "compensating", "failed"
]
# Why a purchase failed; each ends compensated (what was reserved released, what was charged refunded).
PurchaseFailure = Literal[
    "offer_unavailable",
    "vendor_refused",
    "vendor_unavailable",
    "payment_declined",
    "payment_unavailable",
    "confirmation_refused",
    "confirmation_timed_out",
    "completion_failed",
]


class PurchaseIn(_Strict):
    """`POST /me/purchases`: buy a product from the vendor a comparison offered it from."""

    product_id: ProductRef
    vendor_id: VendorId
    quantity: int = Field(ge=1, le=100)


class Purchase(_Strict):
    purchase_id: str
    customer_id: str
    product_id: str
    vendor_id: str
    quantity: int
    sku: str | None = Field(default=None, description="The vendor's sku of the offer")
    product_name: str
    category: str | None = None
    unit_price_minor: int
    total_minor: int
    currency: str
    status: PurchaseStatus
    failure: PurchaseFailure | None = None
    failure_detail: str | None = None
    reservation_ref: str | None = None
    payment_ref: str | None = None
    vendor_ref: str | None = Field(default=None, description="The vendor's reference of the confirmed sale")
    released: bool = False
    refunded: bool = False
    order_id: str | None = Field(default=None, description="The order a completed purchase became")
    requested_at: datetime
    updated_at: datetime
    version: int = 1


class VendorIn(_Strict):
    """`PUT /vendors/{id}`: where the vendor takes reservations and the secret both sides sign with."""

    name: ShortText
    endpoint: Annotated[str, StringConstraints(pattern=r"^https?://[^\s/$.?#][^\s]*$", max_length=500)]
    secret: Annotated[str, StringConstraints(min_length=32, max_length=256)] = Field(
        description="Shared HMAC-SHA256 secret (at least 32 characters); never returned"
    )


class Vendor(_Strict):
    vendor_id: str
    name: str
    endpoint: str
    key_id: str = Field(description="A fingerprint of the secret, to tell which one is configured")
    updated_at: datetime


class VendorCallbackIn(_Strict):
    """`POST /vendors/{id}/callbacks`: the vendor's answer to a confirmation request, signed with its secret."""

    purchase_id: PurchaseId
    outcome: Literal["confirmed", "refused"]
    vendor_reference: ShortText | None = None
    reason: ShortText | None = None


class VendorCallbackReceipt(_Strict):
    purchase_id: str
    status: PurchaseStatus
    replayed: bool = Field(description="True: this answer was received before and changed nothing now")


class PurchaseBrokered(DomainEvent):
    """A brokered purchase completed: reserved, paid, confirmed by the vendor, and placed as an order."""

    source = SOURCE
    detail_type = "PurchaseBrokered"

    purchase_id: str
    customer_id: str
    product_id: str
    vendor_id: str
    quantity: int
    total_minor: int
    currency: str
    order_id: str
    vendor_reference: str | None = None
    brokered_at: datetime


class PurchaseFailed(DomainEvent):
    """A brokered purchase ended without a sale, compensated: the customer is told why (broadcast reacts)."""

    source = SOURCE
    detail_type = "PurchaseFailed"

    purchase_id: str
    customer_id: str
    product_id: str
    vendor_id: str
    total_minor: int
    currency: str
    reason: PurchaseFailure
    detail: str | None = None
    released: bool
    refunded: bool
    failed_at: datetime
