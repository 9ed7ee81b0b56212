"""The birthday job: who has their birthday now in their own zone, and the customers' birth dates as
their profile events say them (the ledger's part, once per customer and year, is `LoyaltyService`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ecrm.transactions import ledger
from ecrm.transactions.loyalty_service import LoyaltyService
from ecrm.transactions.loyalty_zones import TimeZones


def grant_birthday_bonuses(loyalty: LoyaltyService, zones: TimeZones) -> int:
    """Every customer whose birthday it is now in their own zone has it recorded (`BirthdayReached`, which the
    birthday journey starts on) with the rules' bonus, if any; returns the points given.

    Run hourly: somewhere a day starts every hour, and the customers whose birthday is yesterday, today
    or tomorrow in UTC are all whose birthday may be today somewhere. Each is given once per year (its
    cause), so a re-run, or an hourly run that finds the same birthday again, gives nothing more.
    """
    now = loyalty.clock.now()
    near: dict[str, str] = {}
    for offset in (-1, 0, 1):
        for day in ledger.birthday_keys((now + timedelta(days=offset)).date()):
            near |= dict.fromkeys(loyalty.store.birthdays_on(day), day)
    given = 0
    for customer_id, zone in sorted(zones.zones(sorted(near)).items()):
        local = now.astimezone(_zone(zone)).date()
        if near[customer_id] in ledger.birthday_keys(local):
            given += loyalty.grant_birthday_bonus(customer_id, local.year, local)
    return given


def birth_date_of(attributes: Mapping[str, Any]) -> date | None:
    """The birth date a profile snapshot publishes (`birth_date`, ISO), or None when it has none or no date."""
    value = attributes.get("birth_date")
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ValueError, ZoneInfoNotFoundError):
        return ZoneInfo("UTC")
