"""Live counters: message events, unsubscriptions and attributed orders into minute buckets, and the live view.

Each event counts once (its id is written with its increments in one transaction, `InsightsStore.count`), so
a duplicated delivery, a redrive from the DLQ or a replay adds nothing. Events count in the minute they
happened (`occurred_at`), so a late event fills the minute it belongs to.

A conversion is an order placed within the attribution window after a campaign or journey message was sent
to the customer: the order's revenue is added to each such variant or step (and once to its channels and the
total), and the customer counts as converted there on their first attributed order only. The campaign's own
report attributes by launch time and counts its holdout too (that is what its lift compares); this view
counts what was sent, as it happens.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from ecrm.broadcast.models import CustomerUnsubscribed, MessageEvent
from ecrm.core.clock import Clock
from ecrm.insights.logic import (
    TOTAL,
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


@dataclass(frozen=True)
class LiveSettings:
    shards: int = 4
    attribution_window: timedelta = timedelta(days=7)
    # Buckets outlive the longest window a reader asks for; markers outlive a DLQ's retention and its redrive.
    bucket_retention: timedelta = timedelta(days=2)
    seen_retention: timedelta = timedelta(days=15)


def _epoch(at: datetime, plus: timedelta) -> int:
    return int((at + plus).timestamp())


class InsightsService:
    def __init__(
        self, store: InsightsStore, clock: Clock, settings: LiveSettings | None = None, *, metric: Metric | None = None
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

    def record_message(self, event_id: str, detail_type: str, event: MessageEvent) -> bool:
        """Count a message event on its rows; False when it is not counted here or was counted before."""
        counter = COUNTER_OF_EVENT.get(detail_type)
        if counter is None:
            return False
        if counter == "sent":
            row = source_row(event.source_ref, event.step)
            if row is not None:
                self.store.touch(
                    event.customer_id,
                    row,
                    event.channel,
                    event.occurred_at,
                    expires_at=_epoch(event.occurred_at, self.settings.attribution_window),
                )
        rows = rows_of(event.source_ref, event.step, event.channel)
        counted = self._count(event_id, event.occurred_at, {row: Increments({counter: 1}) for row in rows})
        if counted and counter in METRIC_COUNTERS:
            self.metric(counter.title(), 1, {"channel": event.channel or "unknown"})
        return counted

    def record_unsubscribe(self, event_id: str, event: CustomerUnsubscribed) -> bool:
        increments = {row: Increments({"unsubscribed": 1}) for row in (TOTAL, channel_row(event.channel))}
        return self._count(event_id, event.occurred_at, increments)

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
