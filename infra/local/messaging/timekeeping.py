"""The one "now" of the messaging emulation.

Every timestamp the emulated services write (send times, event times, opt-out times, link dates)
comes from `now()`, so the local cloud's movable clock can be plugged in here, in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

_clock: Callable[[], datetime] | None = None  # the local cloud's clock (`use_clock`), else real time


def use_clock(clock: Callable[[], datetime] | None) -> None:
    """Read time from the local cloud's clock (None: real time again)."""
    global _clock
    _clock = clock


def now() -> datetime:
    """The current time, aware, in UTC: the local cloud's clock when one is plugged in."""
    return _clock() if _clock is not None else datetime.now(UTC)


def epoch_millis(at: datetime) -> int:
    return int(at.timestamp() * 1000)
