"""Which rows an event counts on, the minute buckets they live in, and how buckets add up to the live view.

Pure: no AWS, no clock. A message event counts on its channel's row, the total, and its campaign's variant
or its journey's step when it came from one. The step names come from the engines that send: a campaign
message's step is `r<run>.<arm>` (`ecrm.campaigns.runs.message_step`), a journey's `<step id>.<entry>`
(`ecrm.campaigns.journey_runtime`); a recurring campaign's runs add up on their arm, a journey's entries on
their step.

A bucket is one minute of one row. Writes spread over `shards` partitions per hour (a hash of the event id
picks one), so a campaign sending thousands of messages a second does not make one item hot; a read of the
window queries every shard of every hour it touches and adds the buckets up. A batch of events is summed per
bucket before it is written (`sum_buckets`): ten sends of one campaign in one minute are one `ADD` per row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ecrm.insights.models import (
    COUNTERS,
    CampaignRow,
    ChannelRow,
    Counters,
    JourneyRow,
    LiveInsights,
)

TOTAL = "total"
MINUTE_FORMAT = "%Y-%m-%dT%H:%M"
HOUR_FORMAT = "%Y-%m-%dT%H"
COUNTER_PREFIX = "c_"
REVENUE_PREFIX = "r_"
RATES = {
    "delivery": ("delivered", "sent"),
    "bounce": ("bounced", "sent"),
    "complaint": ("complained", "sent"),
    "open": ("opened", "delivered"),
    "click": ("clicked", "delivered"),
}


def source_row(source_ref: str, step: str) -> str | None:
    """The campaign variant's or journey step's row key of a message, None for any other source."""
    kind, _, source_id = source_ref.partition(":")
    if kind == "campaign":
        run, dot, arm = step.partition(".")
        variant = arm if dot and run.startswith("r") and arm else step
        return f"campaign#{source_id}#{variant}"
    if kind == "journey":
        step_id, dot, _entry = step.rpartition(".")
        return f"journey#{source_id}#{step_id if dot else step}"
    return None


def channel_row(channel: str | None) -> str:
    return f"channel#{channel or 'unknown'}"


def rows_of(source_ref: str | None, step: str, channel: str | None) -> list[str]:
    """Every row one message event counts on."""
    rows = [TOTAL, channel_row(channel)]
    source = source_row(source_ref, step) if source_ref else None
    if source:
        rows.append(source)
    return rows


def shard_of(event_id: str, shards: int) -> int:
    return int(hashlib.sha256(event_id.encode()).hexdigest()[:8], 16) % max(shards, 1)


def minute_of(at: datetime) -> datetime:
    utc = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return utc.replace(second=0, microsecond=0)


def bucket_key(at: datetime, row: str, shard: int) -> tuple[str, str]:
    """(pk, sk) of the bucket of `row` for the minute of `at`."""
    minute = minute_of(at)
    return f"LIVE#{minute:{HOUR_FORMAT}}#{shard}", f"{minute:%M}#{row}"


@dataclass(frozen=True)
class HourRange:
    """The part of one hour a window reads: the partition (without its shard) and the sort keys' minutes."""

    hour: str
    first_minute: str
    last_minute: str


def window_hours(until: datetime, minutes: int) -> Iterator[HourRange]:
    """The hours a window of `minutes` whole minutes ending with the minute of `until` touches."""
    last = minute_of(until)
    first = last - timedelta(minutes=minutes - 1)
    hour = first.replace(minute=0)
    while hour <= last:
        start = max(first, hour)
        end = min(last, hour + timedelta(minutes=59))
        yield HourRange(f"{hour:{HOUR_FORMAT}}", f"{start:%M}", f"{end:%M}")
        hour += timedelta(hours=1)


@dataclass
class Increments:
    """What one event adds to its rows: counter -> n, and revenue per currency."""

    counters: dict[str, int] = field(default_factory=dict)
    revenue: dict[str, int] = field(default_factory=dict)

    def attributes(self) -> dict[str, int]:
        """The bucket item's attribute names and amounts to ADD."""
        return {
            **{f"{COUNTER_PREFIX}{name}": n for name, n in self.counters.items() if n},
            **{f"{REVENUE_PREFIX}{currency}": n for currency, n in self.revenue.items() if n},
        }


@dataclass(frozen=True)
class EventCount:
    """What one event adds: its id (counted once), its minute, the increments per row, the buckets' expiry."""

    event_id: str
    at: datetime
    increments: Mapping[str, Increments]
    expires_at: int


def sum_buckets(events: Iterable[EventCount], shard: int) -> dict[tuple[str, str], tuple[dict[str, int], int]]:
    """(pk, sk) of each bucket the events touch -> (attributes to ADD, expiry): one write per bucket, not per event.

    The shard only spreads writes over partitions (a reader adds every shard up), so a batch takes one shard for
    all its events and shares each bucket's write.
    """
    sums: dict[tuple[str, str], tuple[dict[str, int], int]] = {}
    for event in events:
        for row, increment in event.increments.items():
            attributes = increment.attributes()
            if not attributes:
                continue
            key = bucket_key(event.at, row, shard)
            target, expires_at = sums.get(key, ({}, 0))
            for name, n in attributes.items():
                target[name] = target.get(name, 0) + n
            sums[key] = (target, max(expires_at, event.expires_at))
    return sums


def add_up(buckets: Iterable[tuple[str, Mapping[str, int]]]) -> dict[str, dict[str, int]]:
    """Row key -> summed attributes, from (row key, bucket attributes) pairs."""
    sums: dict[str, dict[str, int]] = {}
    for row, attributes in buckets:
        target = sums.setdefault(row, {})
        for name, value in attributes.items():
            target[name] = target.get(name, 0) + value
    return sums


def counters_of(attributes: Mapping[str, int]) -> dict[str, object]:
    counts: dict[str, int] = {name: int(attributes.get(f"{COUNTER_PREFIX}{name}", 0)) for name in COUNTERS}
    revenue = {
        name.removeprefix(REVENUE_PREFIX): int(value)
        for name, value in attributes.items()
        if name.startswith(REVENUE_PREFIX)
    }
    rates = {rate: round(counts[top] / counts[bottom], 6) for rate, (top, bottom) in RATES.items() if counts[bottom]}
    return {**counts, "revenue": revenue, "rates": rates}


def live_view(sums: Mapping[str, Mapping[str, int]], *, until: datetime, minutes: int) -> LiveInsights:
    """The live view of summed rows: the total, then campaigns, journeys and channels, each sorted by key."""
    campaigns, journeys, channels = [], [], []
    for row in sorted(sums):
        counts = counters_of(sums[row])
        kind, _, rest = row.partition("#")
        if kind == "campaign":
            campaign_id, _, variant = rest.partition("#")
            campaigns.append(CampaignRow.model_validate({**counts, "campaign_id": campaign_id, "variant": variant}))
        elif kind == "journey":
            journey_id, _, step = rest.partition("#")
            journeys.append(JourneyRow.model_validate({**counts, "journey_id": journey_id, "step": step}))
        elif kind == "channel":
            channels.append(ChannelRow.model_validate({**counts, "channel": rest}))
    last = minute_of(until)
    return LiveInsights(
        window_minutes=minutes,
        since=(last - timedelta(minutes=minutes - 1)).isoformat(),
        until=last.isoformat(),
        total=Counters.model_validate(counters_of(sums.get(TOTAL, {}))),
        campaigns=campaigns,
        journeys=journeys,
        channels=channels,
    )
