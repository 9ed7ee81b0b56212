"""The loyalty programme's rules, account, statement and redemption, its events, and how a standing becomes
traits."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from ecrm.core.erasure import CustomerDataErased
from ecrm.core.events import DomainEvent
from ecrm.transactions.models.common import (
    SOURCE,
    Category,
    ShortText,
    _Strict,
)

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


LedgerKind = Literal["earned", "reversed", "redeemed", "expired", "bonus", "merged"]


class StatementLine(_Strict):
    """One ledger entry: what changed the balance, by how much, and the cause it is traceable to."""

    entry_id: str
    kind: LedgerKind
    points: int = Field(description="Signed: earnings positive, reversals, redemptions and expiries negative")
    cause: str = Field(
        description="order:<id>, return:<id>, redemption:<id>, expiry:<date>, signup, birthday:<year>, merge:<id>"
    )
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


class PointsMerged(DomainEvent):
    """The customer store merged `merged_id` into this customer: that account's points (with their expiry days)
    and qualifying points are this account's now. Not an earning: nothing was bought or given."""

    source = SOURCE
    detail_type = "PointsMerged"

    customer_id: str
    merged_id: str
    entry_id: str
    points: int
    qualifying_points: int
    merged_at: datetime
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
LOYALTY_EVENTS = (PointsEarned, PointsReversed, PointsRedeemed, PointsExpired, PointsMerged, TierChanged)
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
