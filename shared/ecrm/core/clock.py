"""Time as a collaborator, so logic and tests agree on what `now` is.

`SystemClock` and `utc_now` read the host's time plus `skew()`, which is zero in AWS. An emulated
environment whose time runs ahead of its host's (the local cloud, whose clock tests move) sets it
with `set_skew` before running a handler; the handler itself never knows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

_skew = timedelta(0)


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        now = datetime.now(UTC)
        return now + _skew if _skew else now


class FixedClock:
    """A clock for tests: returns `at` until advanced."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


def utc_now() -> datetime:
    now = datetime.now(UTC)
    return now + _skew if _skew else now


def skew() -> timedelta:
    """How far this environment's time runs ahead of the host's (zero in AWS)."""
    return _skew


def set_skew(ahead: timedelta) -> None:
    global _skew
    _skew = ahead
