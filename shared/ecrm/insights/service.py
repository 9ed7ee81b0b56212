"""Live counters: broadcast's counts of its message events, unsubscriptions and attributed orders into minute
buckets, and the live view.

Broadcast counts each message event once, where it writes it, and publishes a window of its stream's counts as
one `MessageOutcomesCounted` (ADR 12, "Outcomes counted at the source"): each minute of a window adds to its
rows once (`record_outcomes`: a marker per minute of the window, in one transaction with the `ADD`s), so a
duplicated delivery, a redrive from the DLQ or a replay adds nothing. A campaign's or a journey's sends still
come here one by one, for the touches orders are attributed by; broadcast writes its events to the lake itself. A queue
batch's unsubscriptions are counted together (`record_batch`): one transaction holds every event's marker and
one ADD per bucket for the batch's sum. Events count in the minute they happened (`occurred_at`), so a late
event fills the minute it belongs to.

A conversion is an order placed within the attribution window after a campaign or journey message was sent
to the customer: the order's revenue is added to each such variant or step (and once to its channels and the
total), and the customer counts as converted there on their first attributed order only. The campaign's own
report attributes by launch time and counts its holdout too (that is what its lift compares); this view
counts what was sent, as it happens.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ecrm.broadcast.models import CustomerUnsubscribed, MessageEvent, MessageOutcomesCounted
from ecrm.core.clock import Clock
from ecrm.insights.logic import (
    TOTAL,
    EventCount,
    Increments,
    add_up,
    channel_row,
    live_view,
    rows_of,
    shard_of,
    source_row,
    window_hours,
)
from ecrm.insights.models import COUNTER_OF_EVENT, DEFAULT_WINDOW_MINUTES, MAX_WINDOW_MINUTES, LiveInsights
from ecrm.insights.store import InsightsStore, Touch
from ecrm.transactions.models import OrderPlaced

Metric = Callable[[str, float, Mapping[str, str]], None]
# Published per channel as CloudWatch metrics (the dashboard's channel widgets read them).
METRIC_COUNTERS = frozenset({"targeted", "sent", "delivered", "bounced", "complained", "failed", "converted"})
# The most touches one order is attributed to (the newest): one DynamoDB transaction holds them all.
MAX_ATTRIBUTED_TOUCHES = 20
# Rows of a window's minute counted in one transaction, with its marker: within the 100 actions of one.
ROWS_PER_COUNT = 90


@dataclass(frozen=True)
class LiveSettings:
    shards: int = 4
    attribution_window: timedelta = timedelta(days=7)
    # Buckets outlive the longest window a reader asks for; markers outlive a DLQ's retention and its redrive.
    bucket_retention: timedelta = timedelta(days=2)
    seen_retention: timedelta = timedelta(days=15)


def _epoch(at: datetime, plus: timedelta) -> int:
    return int((at + plus).timestamp())


@dataclass(frozen=True)
class BatchEvent:
    """One event of a queue batch: `handle` names its record (what a failure is reported by)."""

    handle: str
    event_id: str
    detail_type: str
    data: MessageEvent | MessageOutcomesCounted | CustomerUnsubscribed | OrderPlaced


@dataclass
class BatchOutcome:
    counted: list[str] = field(default_factory=list)  # event ids counted now
    failed: dict[str, Exception] = field(default_factory=dict)  # handle -> why: the record is retried


class InsightsService:
    def __init__(
        self,
        store: InsightsStore,
        clock: Clock,
        settings: LiveSettings | None = None,
        *,
        metric: Metric | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings or LiveSettings()
        self.metric = metric or (lambda name, value, dimensions: None)

    def _count(
        self,
        event_id: str,
        at: datetime,
        increments: Mapping[str, Increments],
        converted_touches: list[tuple[str, str]] | None = None,
    ) -> bool:
        now = self.clock.now()
        return self.store.count(
            event_id,
            at,
            shard_of(event_id, self.settings.shards),
            increments,
            expires_at=_epoch(max(at, now), self.settings.bucket_retention),
            seen_until=_epoch(now, self.settings.seen_retention),
            converted_touches=converted_touches or [],
        )

    def record_batch(self, events: Sequence[BatchEvent]) -> BatchOutcome:
        """Record a queue batch: a send's touch; broadcast's counts of its message events, once per window;
        unsubscriptions in shared transactions; then each order. What fails is reported per record; what counted
        stays counted, and a retry of it adds nothing."""
        outcome = BatchOutcome()
        for e in events:
            if isinstance(e.data, MessageEvent) and e.detail_type == "MessageSent":
                try:
                    self._touch(e.data)
                except Exception as exc:  # this send alone is retried: a touch is an idempotent SET
                    outcome.failed[e.handle] = exc
        unsubscriptions = [e for e in events if isinstance(e.data, CustomerUnsubscribed)]
        try:
            outcome.counted += self._count_unsubscriptions(unsubscriptions)
        except Exception as exc:  # every unsubscription is retried; what counted before adds nothing then
            outcome.failed.update({e.handle: exc for e in unsubscriptions})
        for e in events:
            try:  # this record alone is retried
                if isinstance(e.data, MessageOutcomesCounted) and self.record_outcomes(e.event_id, e.data):
                    outcome.counted.append(e.event_id)
                if isinstance(e.data, OrderPlaced) and self.record_order(e.event_id, e.data):
                    outcome.counted.append(e.event_id)
            except Exception as exc:
                outcome.failed[e.handle] = exc
        return outcome

    def _count_unsubscriptions(self, events: Sequence[BatchEvent]) -> list[str]:
        now = self.clock.now()
        counts = []
        for e in events:
            assert isinstance(e.data, CustomerUnsubscribed)
            rows = (TOTAL, channel_row(e.data.channel))
            counts.append(self._event_count(e.event_id, e.data.occurred_at, rows, "unsubscribed", now))
        if not counts:
            return []
        shard = shard_of(min(c.event_id for c in counts), self.settings.shards)
        return self.store.count_events(counts, shard, seen_until=_epoch(now, self.settings.seen_retention))

    def record_outcomes(self, event_id: str, counted: MessageOutcomesCounted) -> bool:
        """Add a window of broadcast's counts to the buckets of their minutes, once; False when counted before.

        Broadcast counts each message event once at the source (ADR 12, "Outcomes counted at the source"): what
        this costs is a marker per minute of the window (and per `ROWS_PER_COUNT` rows), not per message event.
        """
        minutes: dict[datetime, dict[str, Increments]] = {}
        for count in counted.counts:
            counter = COUNTER_OF_EVENT.get(count.event)
            if counter is None:
                continue
            rows = minutes.setdefault(count.minute, {})
            for row in rows_of(count.source, count.step, count.channel):
                increment = rows.setdefault(row, Increments())
                increment.counters[counter] = increment.counters.get(counter, 0) + count.events
        recorded = False
        for minute, rows in sorted(minutes.items()):
            items = sorted(rows.items())
            for n in range(0, len(items), ROWS_PER_COUNT):
                part = dict(items[n : n + ROWS_PER_COUNT])
                count_id = f"{event_id}#{minute:%Y%m%dT%H%M}#{n // ROWS_PER_COUNT}"
                if self._count(count_id, minute, part):
                    recorded = True
                    self._publish_channel_metrics(part)
        return recorded

    def _publish_channel_metrics(self, increments: Mapping[str, Increments]) -> None:
        for row, increment in sorted(increments.items()):
            kind, _, channel = row.partition("#")
            if kind != "channel":
                continue
            for counter, n in sorted(increment.counters.items()):
                if counter in METRIC_COUNTERS and n:
                    self.metric(counter.title(), n, {"channel": channel})

    def _event_count(self, event_id: str, at: datetime, rows: Sequence[str], counter: str, now: datetime) -> EventCount:
        expires_at = _epoch(max(at, now), self.settings.bucket_retention)
        return EventCount(event_id, at, {row: Increments({counter: 1}) for row in rows}, expires_at)

    def _touch(self, event: MessageEvent) -> None:
        """Remember a campaign or journey send for the orders after it (an idempotent SET: a retry rewrites it)."""
        row = source_row(event.source_ref, event.step)
        if row is not None:
            self.store.touch(
                event.customer_id,
                row,
                event.channel,
                event.occurred_at,
                expires_at=_epoch(event.occurred_at, self.settings.attribution_window),
            )

    def record_order(self, event_id: str, order: OrderPlaced) -> bool:
        """Attribute an order to the variants and steps sent to its customer within the window before it."""
        window = self.settings.attribution_window
        touches = sorted(
            (t for t in self.store.touches(order.customer_id) if t.sent_at <= order.placed_at <= t.sent_at + window),
            key=lambda t: t.sent_at,
            reverse=True,
        )[:MAX_ATTRIBUTED_TOUCHES]
        if not touches:
            return False
        increments = self._order_increments(touches, order)
        converted = [(order.customer_id, t.row) for t in touches if not t.converted]
        counted = self._count(event_id, order.placed_at, increments, converted)
        if counted and converted:
            for channel in sorted({t.channel or "unknown" for t in touches if not t.converted}):
                self.metric("Converted", 1, {"channel": channel})
        return counted

    @staticmethod
    def _order_increments(touches: list[Touch], order: OrderPlaced) -> dict[str, Increments]:
        """Each touched row gets the revenue once, and one conversion when it holds a touch not yet converted."""
        increments: dict[str, Increments] = {}
        for touch in touches:
            for row in (touch.row, channel_row(touch.channel), TOTAL):
                increment = increments.setdefault(
                    row, Increments({"converted": 0}, {order.currency: order.total_minor})
                )
                if not touch.converted:
                    increment.counters["converted"] = 1
        return increments

    def live(self, window_minutes: int = DEFAULT_WINDOW_MINUTES) -> LiveInsights:
        minutes = max(1, min(window_minutes, MAX_WINDOW_MINUTES))
        now = self.clock.now()
        buckets = [
            bucket
            for hours in window_hours(now, minutes)
            for shard in range(self.settings.shards)
            for bucket in self.store.buckets(hours.hour, shard, hours.first_minute, hours.last_minute)
        ]
        return live_view(add_up(buckets), until=now, minutes=minutes)
