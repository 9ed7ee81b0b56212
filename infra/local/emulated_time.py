"""The one "now" of the local cloud's own emulations (SES, End User Messaging, ...).

Every timestamp an emulated service writes (send times, event times, quotas, opt-outs) comes from
`now()`: the local cloud's movable clock once it plugs it in with `use_clock`, real time before.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

_clock: Callable[[], datetime] | None = None


def use_clock(clock: Callable[[], datetime] | None) -> None:
    """Read time from the local cloud's clock (None: real time again)."""
    global _clock
    _clock = clock


def now() -> datetime:
    """The current time, aware, in UTC: the local cloud's clock when one is plugged in."""
    return _clock() if _clock is not None else datetime.now(UTC)
