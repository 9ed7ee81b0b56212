"""The transactions engine's contract: orders, returns, the loyalty ledger, and their events.

Money is integer minor units of an ISO 4217 currency (`unit_price_minor = 1999` is 19.99 EUR), never a
float. Loyalty shares the engine (ADR 13): its events come from the same source, `ecrm.transactions`.
The catalogue, vendor offers and brokered purchases will add their models beside these.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from ecrm.core.contract import Contract
from ecrm.core.erasure import CustomerDataErased
from ecrm.core.events import DomainEvent

SOURCE = "ecrm.transactions"

# ISO 4217 minor-unit exponents that are not 2: part of the contract, since every reader of an amount in minor
# units (the loyalty rules earn per major unit, the lake's `order_lines.amount`) must convert it the same way.
CURRENCY_EXPONENTS: Mapping[str, int] = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND"), 0),
    **dict.fromkeys(("VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


def major_units(minor: int, currency: str) -> Decimal:
    """Minor units as the currency's major unit (1999 EUR -> 19.99, 1999 JPY -> 1999, 1999 KWD -> 1.999)."""
    return Decimal(minor).scaleb(-CURRENCY_EXPONENTS.get(currency, 2))


CUSTOMER_ID_PATTERN = r"^cus_[0-9A-Z]{26}$"
ORDER_ID_PATTERN = r"^ord_[0-9A-Z]{26}$"
CustomerId = Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)]
OrderId = Annotated[str, StringConstraints(pattern=ORDER_ID_PATTERN)]
Sku = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")]
Category = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
MinorUnits = Annotated[int, Field(ge=0, le=10**12)]

SalesChannel = Literal["web", "app", "store", "callcenter", "marketplace", "partner"]
OrderStatus = Literal["placed", "paid", "shipped", "delivered", "cancelled", "returned"]
# What `POST /orders/{id}/status` may ask for; `returned` is reached through returns only.
RequestedStatus = Literal["paid", "shipped", "delivered", "cancelled"]


class _Strict(Contract):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- orders --------------------------------------------------------------------------------------------------
class OrderLineIn(_Strict):
    sku: Sku
    name: ShortText
    category: Category | None = None
    quantity: int = Field(ge=1, le=10_000)
    unit_price_minor: MinorUnits = Field(description="Price of one unit in minor units of the order's currency")


class OrderIn(_Strict):
    """`POST /orders`: an order placed on any channel (a staff console, a shop, an import)."""

    customer_id: CustomerId
    currency: Currency = Field(description="ISO 4217 code")
    channel: SalesChannel
    store: ShortText | None = Field(default=None, description="The store or site the order was placed in")
    external_ref: ShortText | None = Field(default=None, description="The order's number in the system it came from")
    lines: list[OrderLineIn] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _one_line_per_sku(self) -> OrderIn:
        skus = [line.sku for line in self.lines]
        if len(skus) != len(set(skus)):
            raise ValueError("each sku appears on one line only (add up the quantities)")
        return self


class OrderLine(OrderLineIn):
    returned_quantity: int = 0


class ReturnLineIn(_Strict):
    sku: Sku
    quantity: int = Field(ge=1, le=10_000)


class ReturnIn(_Strict):
    """`POST /orders/{id}/returns`: some units of some lines came back; they are refunded at their price."""

    lines: list[ReturnLineIn] = Field(min_length=1, max_length=100)
    reason: ShortText | None = None


class OrderReturn(_Strict):
    return_id: str
    lines: list[ReturnLineIn]
    refund_minor: int
    reason: str | None = None
    returned_at: datetime


class StatusChangeIn(_Strict):
    status: RequestedStatus
    reason: ShortText | None = None


class Order(_Strict):
    order_id: str
    customer_id: str
    status: OrderStatus
    currency: str
    channel: SalesChannel
    store: str | None = None
    external_ref: str | None = None
    lines: list[OrderLine]
    total_minor: int
    refunded_minor: int = 0
    returns: list[OrderReturn] = Field(default_factory=list)
    placed_at: datetime
    updated_at: datetime
    version: int = 1


class OrderList(_Strict):
    items: list[Order]


# -- order events ---------------------------------------------------------------------------------------------
class OrderPlaced(DomainEvent):
    """An order was placed; its lines carry what loyalty earns on and what the lake records as a purchase."""

    source = SOURCE
    detail_type = "OrderPlaced"

    order_id: str
    customer_id: str
    currency: str
    channel: str
    store: str | None = None
    lines: list[OrderLineIn]
    total_minor: int
    placed_at: datetime


class OrderStatusChanged(DomainEvent):
    """An order moved in its status machine; `refund_minor` is what a cancellation after payment gives back."""

    source = SOURCE
    detail_type = "OrderStatusChanged"

    order_id: str
    customer_id: str
    previous_status: str
    status: str
    reason: str | None = None
    refund_minor: int = 0
    currency: str
    changed_at: datetime


class ReturnedLine(_Strict):
    sku: str
    category: str | None = None
    quantity: int
    unit_price_minor: int


class OrderReturned(DomainEvent):
    """Units of an order came back and were refunded: a refund, never a purchase, to every reader."""

    source = SOURCE
    detail_type = "OrderReturned"

    order_id: str
    customer_id: str
    return_id: str
    lines: list[ReturnedLine]
    refund_minor: int
    currency: str
    fully_returned: bool
    returned_at: datetime


# -- loyalty --------------------------------------------------------------------------------------------------
Multiplier = Annotated[Decimal, Field(ge=0, le=100, max_digits=6, decimal_places=2)]


class BonusCampaign(_Strict):
    """Between two days (inclusive, UTC), matching lines earn `multiplier` times their points."""

    name: ShortText
    starts_on: date
    ends_on: date
    multiplier: Multiplier
    categories: list[Category] = Field(default_factory=list, description="Empty: every category")

    @model_validator(mode="after")
    def _ordered(self) -> BonusCampaign:
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on is before starts_on")
        return self


class Tier(_Strict):
    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
    threshold: int = Field(ge=0, description="Qualifying points (earned, net of reversals) to reach the tier")
    benefits: list[ShortText] = Field(default_factory=list)


class LoyaltyRulesIn(_Strict):
    """`POST /loyalty/rules`: the programme's rules, replacing the previous ones from now on."""

    points_per_unit: Multiplier = Field(
        default=Decimal(1), description="Points per major unit of any currency (per euro, per dollar)"
    )
    category_multipliers: dict[Category, Multiplier] = Field(default_factory=dict)
    campaigns: list[BonusCampaign] = Field(default_factory=list, max_length=50)
    signup_bonus: int = Field(default=0, ge=0, le=1_000_000)
    birthday_bonus: int = Field(default=0, ge=0, le=1_000_000)
    expiry_months: int = Field(default=12, ge=1, le=120, description="Points expire this long after they are earned")
    expiry_days: int | None = Field(
        default=None, ge=1, le=3660, description="Instead of expiry_months: a number of days (short trial programmes)"
    )
    minimum_redemption: int = Field(default=100, ge=1)
    minor_units_per_point: int = Field(
        default=1, ge=1, le=10_000, description="What one point is worth as a discount, in minor units"
    )
    tiers: list[Tier] = Field(default_factory=lambda: [Tier(name="member", threshold=0)], min_length=1, max_length=10)

    @model_validator(mode="after")
    def _tiers_start_at_zero(self) -> LoyaltyRulesIn:
        thresholds = [t.threshold for t in self.tiers]
        if thresholds != sorted(set(thresholds)) or thresholds[0] != 0:
            raise ValueError("tiers have increasing thresholds, the first at 0")
        return self


class LoyaltyRules(LoyaltyRulesIn):
    version: int = 0
    updated_at: datetime | None = None
    updated_by: str | None = None


LedgerKind = Literal["earned", "reversed", "redeemed", "expired", "bonus"]


class StatementLine(_Strict):
    """One ledger entry: what changed the balance, by how much, and the cause it is traceable to."""

    entry_id: str
    kind: LedgerKind
    points: int = Field(description="Signed: earnings positive, reversals, redemptions and expiries negative")
    cause: str = Field(description="order:<id>, return:<id>, redemption:<id>, expiry:<date>, signup, birthday:<year>")
    at: datetime
    note: str | None = None


class LoyaltyAccount(_Strict):
    customer_id: str
    balance: int
    tier: str
    qualifying_points: int
    expiring_soon: int = Field(description="Points that expire in the next 30 days unless spent")
    expiring_by: date
    statement: list[StatementLine]


class RedemptionIn(_Strict):
    """`POST /me/loyalty/redeem`: points for a discount code (`reward` names a catalogue reward instead)."""

    points: int = Field(ge=1, le=10_000_000)
    reward: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")] | None = None


class Redemption(_Strict):
    redemption_id: str
    points: int
    discount_code: str
    discount_minor: int
    reward: str | None = None
    redeemed_at: datetime


class LoyaltyStanding(_Strict):
    """The account as the change left it, carried by every loyalty event (event-carried state): what the
    customer store keeps as the customer's loyalty traits, the highest `account_version` winning."""

    balance: int
    tier: str
    qualifying_points: int
    expiring_soon: int = Field(description="Points that expire within 30 days of `as_of` unless spent")
    expiring_by: date
    account_version: int
    as_of: datetime


class PointsEarned(DomainEvent):
    source = SOURCE
    detail_type = "PointsEarned"

    customer_id: str
    entry_id: str
    points: int
    cause: str
    expires_on: date
    earned_at: datetime
    standing: LoyaltyStanding | None = None


class PointsReversed(DomainEvent):
    """Points taken back because their cause was undone (a return, a cancellation)."""

    source = SOURCE
    detail_type = "PointsReversed"

    customer_id: str
    entry_id: str
    points: int
    cause: str
    reversed_at: datetime
    standing: LoyaltyStanding | None = None


class PointsRedeemed(DomainEvent):
    source = SOURCE
    detail_type = "PointsRedeemed"

    customer_id: str
    entry_id: str
    points: int
    redemption_id: str
    discount_minor: int
    reward: str | None = None
    redeemed_at: datetime
    standing: LoyaltyStanding | None = None


class PointsExpired(DomainEvent):
    source = SOURCE
    detail_type = "PointsExpired"

    customer_id: str
    entry_id: str
    points: int
    expired_at: datetime
    standing: LoyaltyStanding | None = None


class PointsExpiring(DomainEvent):
    """A warning ahead of an expiry (the daily job, once per account and expiry day): the points still unspent
    that leave the account on `expires_on` unless redeemed before."""

    source = SOURCE
    detail_type = "PointsExpiring"

    customer_id: str
    points: int
    expires_on: date
    warned_at: datetime


class BirthdayReached(DomainEvent):
    """It is the customer's birthday in their own zone (the hourly job, once per customer and year); `points`
    is the rules' birthday bonus given with it, 0 when there is none."""

    source = SOURCE
    detail_type = "BirthdayReached"

    customer_id: str
    year: int
    local_date: date
    points: int = 0
    reached_at: datetime


class TransactionsDataErased(CustomerDataErased):
    """The transactions engine's acknowledgement of an erasure request, from this engine's source."""

    source = SOURCE
    detail_type = "CustomerDataErased"


class TierChanged(DomainEvent):
    source = SOURCE
    detail_type = "TierChanged"

    customer_id: str
    previous_tier: str
    tier: str
    qualifying_points: int
    changed_at: datetime
    standing: LoyaltyStanding | None = None


# The events that carry the loyalty account as the change left it (`standing`), and how a standing becomes a
# customer's `loyalty_*` traits: one mapping for every engine that keeps it (the customer store's traits,
# segmentation's and personalization's projections), so "loyalty tier is gold" means the same in a segment,
# a contact card and an offer rule.
LOYALTY_EVENTS = (PointsEarned, PointsReversed, PointsRedeemed, PointsExpired, TierChanged)
LOYALTY_VERSION_TRAIT = "loyalty_account_version"


def loyalty_traits(standing: LoyaltyStanding) -> dict[str, Any]:
    """The traits of a standing; `loyalty_account_version` lets a holder keep only a newer one (events arrive late
    and twice), `loyalty_as_of` says when the account was in that state."""
    return {
        "loyalty_tier": standing.tier,
        "loyalty_balance": standing.balance,
        "loyalty_qualifying_points": standing.qualifying_points,
        "loyalty_points_expiring_30d": standing.expiring_soon,
        "loyalty_expiring_by": standing.expiring_by.isoformat(),
        "loyalty_as_of": standing.as_of.isoformat(),
        LOYALTY_VERSION_TRAIT: standing.account_version,
    }


def is_newer_standing(held: Mapping[str, Any], standing: LoyaltyStanding) -> bool:
    """Whether `standing` is newer than the one the traits `held` come from (none held: it is)."""
    kept = held.get(LOYALTY_VERSION_TRAIT)
    return kept is None or standing.account_version > float(kept)


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
