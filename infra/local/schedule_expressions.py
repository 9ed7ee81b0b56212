"""EventBridge schedule expressions evaluated as AWS documents them: `rate()`, `cron()` and `at()`.

- `cron(minutes hours day-of-month month day-of-week year)`: AWS's six fields. One of the two day
  fields must be `?`. Day-of-week counts 1-7 from Sunday (`SUN-SAT` too), unlike Unix cron's 0-6;
  `L` (last day of the month, or `5L`: the month's last Thursday), `W` (`15W`: the weekday nearest
  the 15th) and `#` (`3#2`: the second Tuesday) are honoured; `LW` and a bare `L` in day-of-week
  are refused. The expression is read in the schedule's IANA time zone (`ScheduleExpressionTimezone`,
  UTC for EventBridge rules). Across daylight saving time, as EventBridge Scheduler does: a time
  that does not exist that day (spring forward) is skipped, a time that occurs twice (fall back)
  runs once, at its first occurrence.
- `rate(value unit)`: every `value` minutes, hours or days from an anchor (a day is 24 hours,
  whatever DST does to the wall clock); `1` takes the singular unit, other values the plural.
- `at(yyyy-mm-ddThh:mm:ss)`: once, at that wall-clock time in the schedule's time zone.

Every function takes and returns aware UTC datetimes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
CRON = re.compile(r"^cron\((.+)\)$")
YEAR_FIELD = re.compile(r"^(\*|\d{4}(-\d{4})?)(/\d+)?$")
# A cron expression that never matches again (a year range in the past) stops after this many candidates.
SEARCH_LIMIT = 10_000


class UnsupportedExpression(ValueError):
    """An expression AWS would refuse, or one the local cloud does not evaluate (named in the message)."""


@dataclass(frozen=True)
class Rate:
    period: timedelta

    def next_after(self, anchor: datetime, after: datetime) -> datetime:
        """The first `anchor + k * period` (k >= 0) strictly after `after`."""
        if after < anchor:
            return anchor
        steps = (after - anchor) // self.period + 1
        return anchor + steps * self.period


@dataclass(frozen=True)
class At:
    when: datetime  # aware UTC


@dataclass(frozen=True)
class Cron:
    unix: str  # five Unix fields for croniter, day-of-week translated
    years: str
    zone: ZoneInfo

    def next_after(self, after: datetime) -> datetime | None:
        """The first occurrence strictly after `after` (UTC), or None when the years allow no more."""
        wall = after.astimezone(self.zone).replace(tzinfo=None, second=0, microsecond=0)
        candidates = croniter(self.unix, wall - timedelta(minutes=1))
        for _ in range(SEARCH_LIMIT):
            local: datetime = candidates.get_next(datetime)
            if not _year_matches(self.years, local.year):
                if _years_exhausted(self.years, local.year):
                    return None
                continue
            utc = _wall_to_utc(local, self.zone)
            if utc is not None and utc > after:
                return utc
        return None


Expression = Rate | At | Cron


def parse(expression: str, timezone: str = "UTC") -> Expression:
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (KeyError, ValueError):
        raise UnsupportedExpression(f"unknown time zone {timezone!r}: give an IANA name such as Europe/Paris") from None
    expression = expression.strip()
    rate = RATE.match(expression)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2)
        if value <= 0:
            raise UnsupportedExpression(f"{expression}: the rate must be a positive number")
        if (value == 1) != (not unit.endswith("s")):
            raise UnsupportedExpression(f"{expression}: AWS wants the singular unit for 1 and the plural otherwise")
        return Rate(timedelta(**{unit.rstrip("s") + "s": value}))
    at = AT.match(expression)
    if at:
        wall = datetime.fromisoformat(at.group(1))
        return At(wall.replace(tzinfo=zone).astimezone(UTC))
    cron = CRON.match(expression)
    if cron:
        return _parse_cron(expression, cron.group(1), zone)
    raise UnsupportedExpression(f"{expression!r} is not a rate(), cron() or at() expression")


def _parse_cron(expression: str, body: str, zone: ZoneInfo) -> Cron:
    fields = body.split()
    if len(fields) != 6:
        raise UnsupportedExpression(f"{expression}: AWS cron takes six fields (minutes hours day month weekday year)")
    minute, hour, day, month, weekday, year = fields
    if (day == "?") == (weekday == "?"):
        raise UnsupportedExpression(f"{expression}: exactly one of day-of-month and day-of-week must be '?'")
    if "LW" in day.upper():
        raise UnsupportedExpression(f"{expression}: 'LW' is not evaluated by the local cloud")
    if not YEAR_FIELD.match(year) and not all(re.fullmatch(r"\d{4}(-\d{4})?", part) for part in year.split(",")):
        raise UnsupportedExpression(f"{expression}: the year field {year!r} is not understood")
    unix = " ".join([minute, hour, "*" if day == "?" else day, month, "*" if weekday == "?" else _weekday(weekday)])
    try:
        croniter(unix)
    except (ValueError, KeyError) as exc:
        raise UnsupportedExpression(f"{expression}: {exc}") from None
    return Cron(unix, year, zone)


def _weekday(field: str) -> str:
    """AWS counts Sunday as 1, Unix cron as 0: numbers shift down by one; `5L` is croniter's `L4`."""
    if field.upper() == "L":
        raise UnsupportedExpression("a bare 'L' in day-of-week is not evaluated by the local cloud: name the day")

    def shift(number: str) -> str:
        value = int(number)
        if not 1 <= value <= 7:
            raise UnsupportedExpression(f"day-of-week {value} is outside 1-7 (1 is Sunday)")
        return str(value - 1)

    def one(part: str) -> str:
        last = re.fullmatch(r"(\w+)L", part)
        if last:
            day = last.group(1)
            return "L" + (shift(day) if day.isdigit() else day)
        nth = re.fullmatch(r"(\w+)#(\d)", part)
        if nth:
            day = nth.group(1)
            return (shift(day) if day.isdigit() else day) + "#" + nth.group(2)
        step = part.split("/", 1)
        span = re.sub(r"\d+", lambda m: shift(m.group(0)), step[0])
        return span + ("/" + step[1] if len(step) == 2 else "")

    return ",".join(one(part) for part in field.split(","))


def _year_matches(field: str, year: int) -> bool:
    if field == "*":
        return True
    for part in field.split(","):
        span, _, step = part.partition("/")
        low, _, high = span.partition("-")
        first = 1970 if low == "*" else int(low)
        last = 2199 if low == "*" else int(high or (low if not step else 2199))
        if first <= year <= last and (year - first) % int(step or 1) == 0:
            return True
    return False


def _years_exhausted(field: str, year: int) -> bool:
    if field == "*" or ("/" in field and field.startswith("*")):
        return False
    lasts = []
    for part in field.split(","):
        span, _, step = part.partition("/")
        low, _, high = span.partition("-")
        lasts.append(2199 if step and not high else int(high or low))
    return year > max(lasts)


def _wall_to_utc(wall: datetime, zone: ZoneInfo) -> datetime | None:
    """A wall-clock time in `zone` as UTC: None if it does not exist that day, the first one if it occurs twice."""
    first = wall.replace(tzinfo=zone, fold=0)
    utc = first.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) != wall:
        return None  # in the spring-forward gap
    return utc
