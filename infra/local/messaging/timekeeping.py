"""The one "now" of the messaging emulation: the local cloud's clock (`infra.local.emulated_time`).

Every timestamp the emulated services write (send times, event times, opt-out times, link dates)
comes from `now()`.
"""

from __future__ import annotations

from datetime import datetime

from infra.local.emulated_time import now

__all__ = ["epoch_millis", "now"]


def epoch_millis(at: datetime) -> int:
    return int(at.timestamp() * 1000)
