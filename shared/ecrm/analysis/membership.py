"""Real-time segment membership: apply one customer change, re-evaluate only what it can affect.

For each event from the customer store (a profile snapshot, a consent, an interaction, a merge,
computed traits) the service reads the customer (one query), applies the change to the
projection (idempotently), and evaluates the segments whose rules read what changed. Entering or
leaving a segment is itself a behaviour event (`segment_entered` / `segment_exited`), so segments
built on other segments follow in the same call, up to a bounded depth. Every change is written to
the lake too (the profile row and behaviour rows), which is what the batch path reads.

Time passing alone can also change a result ("no email opened in 30 days"): the membership build
(`ecrm.analysis.audiences`) reconciles time-relative segments on a schedule, nominating
candidates from the lake and confirming each with this same predicate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ecrm.analysis.models import Segment, SegmentEntered, SegmentExited
from ecrm.analysis.predicate import BehaviourEvent, OrderRow, Predicate, compile_predicate
from ecrm.analysis.projection import Change, Projection, millisecond
from ecrm.analysis.rules import (
    DEFAULT_CATALOG,
    ORDER_CHANGES,
    SEGMENT_ENTERED,
    SEGMENT_EXITED,
    Dependencies,
    FieldCatalog,
    Rule,
    dependencies,
)
from ecrm.analysis.segment_sql import behaviour_record, profile_record
from ecrm.analysis.store import AnalysisStore, CustomerState, ProjectionConflict
from ecrm.core.clock import Clock
from ecrm.core.errors import ServiceUnavailable
from ecrm.core.events import DomainEvent
from ecrm.core.ids import new_id

MAX_ATTEMPTS = 6
MAX_CASCADE = 5
SEGMENT_CACHE_SECONDS = 30.0


class Publisher(Protocol):
    def publish_all(self, events: Sequence[DomainEvent], *, correlation_id: str | None = None) -> Any: ...


class LakeSink(Protocol):
    """Appends rows to a lake table (`ecrm.core.lake.FirehoseLakeWriter`); returns the rows it could not write."""

    def write(self, events: Sequence[Mapping[str, Any]]) -> list[Any]: ...


@dataclass(frozen=True)
class CompiledSegment:
    segment: Segment
    predicate: Predicate
    depends_on: Dependencies


class SegmentCatalogue:
    """Dynamic segments compiled once and cached briefly: a consumer reads them on every event.

    With `revision` (the store's catalogue revision), `revalidate()` at the start of each invocation costs one read
    and drops the cache when a segment was created since it was loaded: an event handled after a segment's
    creation was answered is evaluated against it (a warm consumer would otherwise miss a new segment for up to
    `ttl`, and the creation's build from the lake cannot see what the lake's buffering still holds).
    """

    def __init__(
        self,
        load: Callable[[], list[Segment]],
        catalog: FieldCatalog,
        ttl: float = SEGMENT_CACHE_SECONDS,
        revision: Callable[[], int] | None = None,
    ):
        self._load = load
        self._catalog = catalog
        self._ttl = ttl
        self._revision = revision
        self._loaded_revision: int | None = None
        self._loaded_at = -1e9
        self._compiled: list[CompiledSegment] = []

    def revalidate(self) -> None:
        if self._revision is not None and self._revision() != self._loaded_revision:
            self._loaded_at = -1e9

    def dynamic(self) -> list[CompiledSegment]:
        if time.monotonic() - self._loaded_at > self._ttl:
            # read before the list: a segment created while loading shows as a newer revision next time
            self._loaded_revision = self._revision() if self._revision is not None else None
            from pydantic import TypeAdapter

            adapter: TypeAdapter[Rule] = TypeAdapter(Rule)
            compiled = []
            for segment in self._load():
                if segment.kind != "dynamic" or segment.rule is None:
                    continue
                rule = adapter.validate_python(segment.rule)
                compiled.append(CompiledSegment(segment, compile_predicate(rule, self._catalog), dependencies(rule)))
            self._compiled = compiled
            self._loaded_at = time.monotonic()
        return self._compiled


class LakeFailed(Exception):
    """The lake stream refused rows: the event is retried (then parked in the DLQ)."""


@dataclass
class MembershipService:
    store: AnalysisStore
    publisher: Publisher
    clock: Clock
    profiles_lake: LakeSink
    behaviour_lake: LakeSink
    catalog: FieldCatalog = DEFAULT_CATALOG
    segments: SegmentCatalogue | None = None
    _published: list[DomainEvent] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.segments is None:
            self.segments = SegmentCatalogue(
                self.store.list_segments, self.catalog, revision=self.store.segments_revision
            )

    # -- applying changes -------------------------------------------------------------------------------------------
    def apply(
        self,
        customer_id: str,
        mutate: Callable[[Projection], Change],
        *,
        new_events: Sequence[BehaviourEvent] = (),
        new_orders: Sequence[OrderRow] = (),
        trigger: str,
        correlation_id: str | None = None,
        follow_merge: bool = False,
    ) -> list[DomainEvent]:
        """Apply `mutate` (and behaviour `new_events`, order rows `new_orders`) to the customer, then
        re-evaluate affected segments. A merged customer is left alone, or with `follow_merge` the change goes
        to the customer they were merged into (an order of theirs that arrives after the merge is the survivor's).

        New behaviour and orders are written before the projection's conditional save: whoever saves next
        reads them, so of two consumers applying events to one customer at once, the last to save sees both.
        Order rows reach the lake through the transactions engine, not through this engine.
        """
        written: set[str] = set()
        orders_written: set[OrderRow] = set()
        for _ in range(MAX_ATTEMPTS):
            state = self.store.load_customer(customer_id)
            survivor = state.projection.merged_into
            if follow_merge and state.projection.status == "merged" and survivor and survivor != customer_id:
                return self.apply(
                    survivor,
                    mutate,
                    new_events=new_events,
                    new_orders=new_orders,
                    trigger=trigger,
                    correlation_id=correlation_id,
                    follow_merge=True,
                )
            if state.projection.status in {"erased", "merged"}:
                return []
            expected = state.projection.version if state.exists else None
            change = mutate(state.projection)
            known = {e.event_id for e in state.events}
            fresh = [e for e in new_events if e.event_id not in known or e.event_id in written]
            change.events |= {e.type for e in fresh}
            unwritten = [e for e in fresh if e.event_id not in known]
            if unwritten:
                self.store.put_events(customer_id, unwritten)
                state.events.extend(unwritten)
                written |= {e.event_id for e in unwritten}
            held = set(state.orders)
            if any(row not in held or row in orders_written for row in new_orders):
                change.events.add(ORDER_CHANGES)
            unheld = [row for row in new_orders if row not in held]
            if unheld:
                self.store.put_orders(customer_id, unheld)
                state.orders.extend(unheld)
                orders_written |= set(unheld)
            if state.exists and fresh and fresh == unwritten and not self._read_by_any_segment(change):
                # New behaviour no segment reads (a message delivered, a page viewed with no segment on it) and
                # the projection unchanged: the events are written, a concurrent writer's evaluation does not
                # depend on them, and the projection's save (a write unit) would only move its version. A
                # redelivery (nothing new) still saves and rewrites the profile row a failed attempt may have missed.
                self._write_lake(self.behaviour_lake, [self._behaviour_row(state, e) for e in fresh])
                return []
            try:
                self.store.save_projection(state.projection, expected_version=expected)
            except ProjectionConflict:
                continue
            self._to_lake(state, fresh)
            published = self._evaluate(state, change, trigger) if change else []
            if published:
                self.publisher.publish_all(published, correlation_id=correlation_id)
            return published
        raise ServiceUnavailable(f"customer {customer_id} kept changing concurrently")

    def _read_by_any_segment(self, change: Change) -> bool:
        """Whether saving and evaluating the customer may matter: the projection changed, or a dynamic segment
        reads what changed (a segment reading two event types is read by a change to either, so two consumers
        applying them at once still meet at the projection's conditional save)."""
        if change.everything or change.attributes or change.traits or change.consents or change.identities:
            return True
        return self.segments is None or any(change.touches(c.depends_on) for c in self.segments.dynamic())

    def reevaluate(self, customer_id: str, *, trigger: str, only: set[str] | None = None) -> list[DomainEvent]:
        """Evaluate a customer against every dynamic segment (or `only` these ids): builds and merges use it."""
        state = self.store.load_customer(customer_id)
        if not state.exists or state.projection.status != "active":
            return []
        published = self._evaluate(state, Change(everything=True), trigger, only=only)
        if published:
            self.publisher.publish_all(published)
        return published

    def _evaluate(
        self, state: CustomerState, change: Change, trigger: str, only: set[str] | None = None
    ) -> list[DomainEvent]:
        assert self.segments is not None
        now = self.clock.now()
        published: list[DomainEvent] = []
        pending = change
        for _ in range(MAX_CASCADE):
            subject = state.projection.subject(state.events, state.orders)
            moves: list[BehaviourEvent] = []
            for compiled in self.segments.dynamic():
                segment = compiled.segment
                if only is not None and segment.segment_id not in only:
                    continue
                if not pending.touches(compiled.depends_on):
                    continue
                member = compiled.predicate(subject, now)
                was_member = segment.segment_id in state.memberships
                if member == was_member:
                    continue
                event = self._move(state, segment, member, now, trigger)
                if event is not None:
                    published.append(event)
                    moves.append(
                        BehaviourEvent(
                            event_id=new_id("mbr_"),
                            type=SEGMENT_ENTERED if member else SEGMENT_EXITED,
                            occurred_at=millisecond(now),
                            segment_id=segment.segment_id,
                        )
                    )
            if not moves:
                break
            self.store.put_events(state.projection.customer_id, moves)
            state.events.extend(moves)
            self._write_lake(self.behaviour_lake, [self._behaviour_row(state, e) for e in moves])
            pending = Change(events={SEGMENT_ENTERED, SEGMENT_EXITED})
            only = None  # segments defined on those that moved follow, whichever segments were asked for
        return published

    def _move(
        self, state: CustomerState, segment: Segment, member: bool, now: datetime, trigger: str
    ) -> DomainEvent | None:
        customer_id = state.projection.customer_id
        if member:
            if not self.store.enter(customer_id, segment.segment_id, now):
                return None
            state.memberships[segment.segment_id] = now.isoformat()
            return SegmentEntered(
                segment_id=segment.segment_id,
                segment_name=segment.name,
                customer_id=customer_id,
                entered_at=now,
                trigger=trigger,
            )
        if not self.store.exit(customer_id, segment.segment_id):
            return None
        state.memberships.pop(segment.segment_id, None)
        return SegmentExited(
            segment_id=segment.segment_id,
            segment_name=segment.name,
            customer_id=customer_id,
            exited_at=now,
            trigger=trigger,
        )

    # -- removing customers -----------------------------------------------------------------------------------------
    def remove(
        self, customer_id: str, *, status: str, merged_into: str | None = None, trigger: str
    ) -> list[DomainEvent]:
        """Forget a customer (erased, or merged into another): exit their segments, tombstone the lake row."""
        state = self.store.load_customer(customer_id)
        now = self.clock.now()
        segments = {s.segment.segment_id: s.segment for s in (self.segments.dynamic() if self.segments else [])}
        left = self.store.delete_customer(customer_id)
        # The projection stays as a tombstone (no attributes): events still in flight for them are ignored.
        self.store.save_projection(
            Projection(customer_id, status=status, merged_into=merged_into), expected_version=None
        )
        published: list[DomainEvent] = [
            SegmentExited(
                segment_id=segment_id,
                segment_name=segments[segment_id].name if segment_id in segments else segment_id,
                customer_id=customer_id,
                exited_at=now,
                trigger=trigger,
            )
            for segment_id in left
        ]
        tombstone = Projection(customer_id, status=status, merged_into=merged_into)
        row = profile_record(
            tombstone.subject([]),
            version=state.projection.version + 1,
            updated_at=now,
            deleted=True,
            catalog=self.catalog,
        )
        self._write_lake(self.profiles_lake, [row])
        if published:
            self.publisher.publish_all(published)
        return published

    def events_of(self, customer_id: str) -> list[BehaviourEvent]:
        return [
            e for e in self.store.load_customer(customer_id).events if e.type not in {SEGMENT_ENTERED, SEGMENT_EXITED}
        ]

    # -- the lake ---------------------------------------------------------------------------------------------------
    def _to_lake(self, state: CustomerState, fresh: Sequence[BehaviourEvent]) -> None:
        """The current profile row, always (a redelivered event rewrites what a failed attempt may have missed)."""
        now = self.clock.now()
        subject = state.projection.subject([])
        self._write_lake(
            self.profiles_lake,
            [profile_record(subject, version=state.projection.version, updated_at=now, catalog=self.catalog)],
        )
        if fresh:
            self._write_lake(self.behaviour_lake, [self._behaviour_row(state, e) for e in fresh])

    def _behaviour_row(self, state: CustomerState, event: BehaviourEvent) -> dict[str, Any]:
        return behaviour_record(state.projection.customer_id, event, recorded_at=self.clock.now())

    def write_behaviour(self, customer_id: str, events: Sequence[BehaviourEvent]) -> None:
        self._write_lake(
            self.behaviour_lake, [behaviour_record(customer_id, e, recorded_at=self.clock.now()) for e in events]
        )

    @staticmethod
    def _write_lake(sink: LakeSink, rows: list[dict[str, Any]]) -> None:
        if rows and sink.write(rows):
            raise LakeFailed("the lake stream refused rows")
