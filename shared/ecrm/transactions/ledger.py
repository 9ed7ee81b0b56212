"""The loyalty ledger's rules, pure: what an order earns, what a return takes back, what expires, which tier.

An account is its balance plus its lots: the points earned, net of reversals, grouped by the day they
expire. Spending (redemptions, expiries) is kept as one running `consumed` total, taken from the oldest
lots first (FIFO), so `balance == sum(lots) - consumed` always, and what expires on a day is what is left
of the lots due by then: `max(0, due - consumed)`. The account stays one small item whatever the history,
and a redemption changes only `balance` and `consumed`, which is what lets the store write it as an
arithmetic update conditional on the balance (no read-modify-write race between parallel redemptions).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from ecrm.transactions.models import LoyaltyRulesIn, OrderLineIn, major_units


def line_points(lines: Iterable[OrderLineIn], currency: str, rules: LoyaltyRulesIn, on: date) -> dict[str, int]:
    """Points per sku: price x rate x the category's multiplier x the best campaign running `on`, floored."""
    points: dict[str, int] = {}
    for line in lines:
        multiplier = rules.category_multipliers.get(line.category or "", Decimal(1))
        campaigns = [
            c.multiplier
            for c in rules.campaigns
            if c.starts_on <= on <= c.ends_on and (not c.categories or line.category in c.categories)
        ]
        if campaigns:
            multiplier *= max(campaigns)
        value = major_units(line.quantity * line.unit_price_minor, currency) * rules.points_per_unit * multiplier
        points[line.sku] = int(value.to_integral_value(rounding=ROUND_FLOOR))
    return points


def returned_points(points: int, quantity: int, returned_before: int, returned_now: int) -> int:
    """A line's points taken back for `returned_now` more units: cumulative floors, so the parts add up."""
    before = points * returned_before // quantity
    return points * (returned_before + returned_now) // quantity - before


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def tier_for(rules: LoyaltyRulesIn, qualifying_points: int) -> str:
    reached = [tier for tier in rules.tiers if tier.threshold <= max(qualifying_points, 0)]
    return reached[-1].name


@dataclass(frozen=True)
class Account:
    customer_id: str
    balance: int = 0
    consumed: int = 0
    qualifying: int = 0
    tier: str = ""
    lots: dict[str, int] = field(default_factory=dict)  # ISO day of expiry -> points earned due then
    version: int = 0  # 0: not saved yet
    erased: bool = False  # the customer was erased: the account stays empty, late events change nothing
    merged_into: str | None = None  # the customer store merged the customer: the account moved there, empty

    @property
    def earliest_expiry(self) -> str | None:
        return min(self.lots) if self.lots else None

    def due_by(self, day: date) -> int:
        """What expires by `day` unless spent before."""
        due = sum(points for expiry, points in self.lots.items() if expiry <= day.isoformat())
        return max(0, due - self.consumed)


def earn(account: Account, points: int, expires_on: date, rules: LoyaltyRulesIn) -> Account:
    lots = dict(account.lots)
    if points:
        lots[expires_on.isoformat()] = lots.get(expires_on.isoformat(), 0) + points
    qualifying = account.qualifying + points
    return replace(
        account,
        balance=account.balance + points,
        qualifying=qualifying,
        tier=tier_for(rules, qualifying),
        lots=lots,
        version=account.version + 1,
    )


def reverse(account: Account, points: int, expires_on: date, rules: LoyaltyRulesIn) -> tuple[Account, int]:
    """Take back up to `points` of the lot they were earned in; never below a zero balance.

    Points already spent stay spent (the customer keeps the discount; the shortfall is the programme's
    cost), and points of a lot that already expired are gone anyway.
    """
    key = expires_on.isoformat()
    taken = max(0, min(points, account.balance, account.lots.get(key, 0)))
    lots = dict(account.lots)
    if key in lots:
        lots[key] -= taken
        if lots[key] <= 0:
            del lots[key]
    qualifying = account.qualifying - taken
    changed = replace(
        account,
        balance=account.balance - taken,
        qualifying=qualifying,
        tier=tier_for(rules, qualifying),
        lots=lots,
        version=account.version + 1,
    )
    return changed, taken


def expire(account: Account, today: date) -> tuple[Account, int]:
    """Lots due by `today` leave the account; what was left of them unspent is the points expired."""
    due = {expiry: points for expiry, points in account.lots.items() if expiry <= today.isoformat()}
    if not due:
        return account, 0
    total = sum(due.values())
    expired = max(0, total - account.consumed)
    lots = {expiry: points for expiry, points in account.lots.items() if expiry not in due}
    changed = replace(
        account,
        balance=account.balance - expired,
        consumed=max(0, account.consumed - total),
        lots=lots,
        version=account.version + 1,
    )
    return changed, expired


def absorb(survivor: Account, merged: Account, rules: LoyaltyRulesIn) -> tuple[Account, Account]:
    """A merged customer's account into the survivor's: balance, spent and qualifying points add up, lots add up
    per expiry day (each point keeps the day it expires), the tier is the one the sum qualifies for; the merged
    account is left empty, pointing at the survivor. `balance == sum(lots) - consumed` holds for the sum as it
    held for each part; what was spent is taken from the oldest lots of the whole from then on (FIFO).
    """
    lots = dict(survivor.lots)
    for day, points in merged.lots.items():
        lots[day] = lots.get(day, 0) + points
    qualifying = survivor.qualifying + merged.qualifying
    absorbed = replace(
        survivor,
        balance=survivor.balance + merged.balance,
        consumed=survivor.consumed + merged.consumed,
        qualifying=qualifying,
        tier=tier_for(rules, qualifying),
        lots=lots,
        version=survivor.version + 1,
    )
    emptied = replace(
        merged,
        balance=0,
        consumed=0,
        qualifying=0,
        lots={},
        version=merged.version + 1,
        merged_into=survivor.customer_id,
    )
    return absorbed, emptied


def expiry_day(earned_at: datetime, rules: LoyaltyRulesIn) -> date:
    if rules.expiry_days:
        return earned_at.date() + timedelta(days=rules.expiry_days)
    return add_months(earned_at.date(), rules.expiry_months)


def birthday_key(birth_date: date) -> str:
    """The index key of a birthday: month and day (the year is nobody's business here)."""
    return birth_date.strftime("%m-%d")


def birthday_keys(day: date) -> set[str]:
    """The birthdays celebrated on `day`: its own, and 29 February's on the 28th of a year without one."""
    keys = {birthday_key(day)}
    if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
        keys.add("02-29")
    return keys
