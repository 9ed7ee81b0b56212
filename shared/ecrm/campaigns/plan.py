"""When each chunk of a campaign run may be handed to broadcast: the pure planning behind the run's manifest.

Every manifest item carries `not_before`, and the run's Distributed Map waits for it (a Wait state with a
`TimestampPath`, which runs on the local clock in tests) before the chunk is sent. One mechanism serves
three needs without a second execution or a change to broadcast's request:
- a plain run: every chunk's `not_before` is the freeze time, so the waits end at once;
- `local_time`: recipients are grouped by their time zone (asked of the customer store at freeze time)
  and a group's chunks wait for `local_time` on the schedule's date in that zone; the schedule fires the
  run when the earliest zone on Earth (UTC+14) gets there, and the run lasts until the latest (UTC-12);
- a throttle: a chunk holds at most one minute of messages, and each chunk waits until the messages
  before it have had their minutes, so the run hands broadcast `throttle_per_minute` messages a minute on
  average (the holdout, which receives nothing, costs no time).
The same pacing runs after an auto-winner's test phase, from the moment the winner is picked.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The zones furthest ahead of and behind UTC: a local time happens within this span around the date's UTC.
EARLIEST_OFFSET = timedelta(hours=14)
TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"  # what a Wait state's TimestampPath reads (whole seconds, UTC)


@dataclass(frozen=True)
class PlannedChunk:
    not_before: datetime
    customer_ids: list[str]


def zone_or_utc(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_instant(day: date, at: time, zone: str | None) -> datetime:
    """The UTC instant of `at` on `day` in `zone` (an unknown zone is UTC; a skipped local time moves on)."""
    return datetime.combine(day, at, tzinfo=zone_or_utc(zone)).astimezone(UTC)


def earliest_local_instant(day: date, at: time) -> datetime:
    """When the first zone reaches `at` on `day`: the local-time run's start."""
    return datetime.combine(day, at, tzinfo=UTC) - EARLIEST_OFFSET


def whole_second(moment: datetime) -> datetime:
    """Up to the next whole second: a Wait state's timestamp has no fraction."""
    rounded = moment.replace(microsecond=0)
    return rounded if rounded == moment else rounded + timedelta(seconds=1)


def plan_chunks(
    groups: Sequence[tuple[datetime, Sequence[str]]],
    *,
    chunk_size: int,
    per_minute: int | None,
    sends: Callable[[str], bool] = lambda _: True,
) -> list[PlannedChunk]:
    """The chunks of `groups` (each a start instant and its recipients), earliest first, paced by the throttle.

    `sends` says whether a recipient gets a message (the holdout does not): only messages use up the minute.
    """
    size = max(1, min(chunk_size, per_minute)) if per_minute else chunk_size
    planned: list[PlannedChunk] = []
    free_at: datetime | None = None
    for start, customer_ids in sorted(groups, key=lambda group: group[0]):
        for offset in range(0, len(customer_ids), size):
            part = list(customer_ids[offset : offset + size])
            slot = whole_second(start if free_at is None else max(start, free_at))
            planned.append(PlannedChunk(slot, part))
            if per_minute:
                messages = sum(1 for customer_id in part if sends(customer_id))
                free_at = slot + timedelta(seconds=60 * messages / per_minute)
    return planned


def minutes_to_send(messages: int, per_minute: int | None) -> int:
    """How long a throttled run takes to hand over `messages` (0 without a throttle)."""
    return math.ceil(messages / per_minute) if per_minute else 0


def replan(
    chunks: Sequence[PlannedChunk],
    *,
    start: datetime,
    per_minute: int | None,
    sends: Callable[[str], bool] = lambda _: True,
    skip: Callable[[int], bool] = lambda _: False,
) -> list[PlannedChunk]:
    """Frozen chunks paced again from `start` (a resumed run): each keeps its own `not_before` when that is
    later (a zone's local time), and a chunk `skip` names (handed over before) costs no time."""
    free_at = start
    paced: list[PlannedChunk] = []
    for n, chunk in enumerate(chunks):
        if skip(n):
            paced.append(chunk)
            continue
        slot = whole_second(max(chunk.not_before, free_at))
        paced.append(PlannedChunk(slot, chunk.customer_ids))
        if per_minute:
            free_at = slot + timedelta(seconds=60 * sum(1 for c in chunk.customer_ids if sends(c)) / per_minute)
    return paced


def timestamp(moment: datetime) -> str:
    return whole_second(moment).astimezone(UTC).strftime(TIMESTAMP)


def parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, TIMESTAMP).replace(tzinfo=UTC)
