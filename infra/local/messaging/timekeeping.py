"""The one "now" of the messaging emulation.

Every timestamp the emulated services write (send times, event times, opt-out times, link dates)
comes from `now()`, so the local cloud's movable clock can be plugged in here, in one place.
"""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def epoch_millis(at: datetime) -> int:
    return int(at.timestamp() * 1000)
