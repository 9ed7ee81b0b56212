"""Real-time segment membership on moto's DynamoDB: customer store events in, SegmentEntered/Exited out.

The service is driven the way the consumer drives it (`apply_customer_event`), with a recording
publisher and recording lake streams.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from ecrm.analysis.customer_events import apply_customer_event
from ecrm.analysis.membership import CompiledSegment, LakeFailed, MembershipService, SegmentCatalogue
from ecrm.analysis.models import CustomerTraits, SegmentEntered, SegmentExited, TraitsComputed
from ecrm.analysis.predicate import Subject
from ecrm.analysis.rules import DEFAULT_CATALOG, SEGMENT_ENTERED, SEGMENT_EXITED
from ecrm.analysis.segment_sql import CROCKFORD
from ecrm.analysis.store import AnalysisStore
from ecrm.core.clock import FixedClock
from ecrm.core.errors import ServiceUnavailable
from ecrm.core.events import DomainEvent
from ecrm.customers.models import ConsentChanged, CustomersMerged, ProfileSnapshot

from tests.integration.analysis.conftest import (
    NOW,
    TABLE,
    LakeStreams,
    RecordingPublisher,
    created,
    order,
    saved_segment,
    updated,
)

CUSTOMER = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"
OTHER = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2F"
FRENCH = {"attribute": "country", "op": "eq", "value": "FR"}
TWO_ORDERS = {"event": "order_completed", "window": {"last_days": 90}, "count": {"op": "gte", "value": 2}}


def moved(events: Sequence[DomainEvent]) -> list[SegmentEntered | SegmentExited]:
    """What the service published, all of it membership moves on this path."""
    moves = [e for e in events if isinstance(e, SegmentEntered | SegmentExited)]
    assert len(moves) == len(events)
    return moves


def member_count(store: AnalysisStore, segment_id: str) -> int:
    return store.get_segment(segment_id).member_count


def members(store: AnalysisStore, segment_id: str) -> set[str]:
    return set(store.members(segment_id, CROCKFORD))


# -- entering and leaving -------------------------------------------------------------------------------------------
def test_entering_and_leaving_publish_each_move_once_and_redeliveries_publish_nothing(
    membership: MembershipService, store: AnalysisStore, publisher: RecordingPublisher, clock: FixedClock
) -> None:
    # Given a dynamic segment of French customers
    french = saved_segment(store, "French", FRENCH)

    # When a French customer is created, and the event is delivered twice
    first = moved(apply_customer_event(membership, created(CUSTOMER, country="FR")))
    again = moved(apply_customer_event(membership, created(CUSTOMER, country="FR")))

    # Then they entered once: one event, one member, the count kept
    assert [(e.detail_type, e.segment_id, e.segment_name, e.trigger) for e in first] == [
        ("SegmentEntered", french.segment_id, "French", "CustomerCreated")
    ]
    assert again == []
    assert publisher.moves() == [("SegmentEntered", french.segment_id, CUSTOMER)]
    assert members(store, french.segment_id) == {CUSTOMER}
    assert member_count(store, french.segment_id) == 1

    # When they move to Germany (snapshot 2), that event is redelivered, and the stale snapshot 1 arrives late
    clock.advance(minutes=5)
    left = moved(apply_customer_event(membership, updated(CUSTOMER, 2, at=clock.now(), country="DE")))
    apply_customer_event(membership, updated(CUSTOMER, 2, at=clock.now(), country="DE"))
    apply_customer_event(membership, created(CUSTOMER, country="FR"))

    # Then they left once, and the late snapshot changed nothing
    assert [e.exited_at for e in left if isinstance(e, SegmentExited)] == [clock.now()]
    assert len(left) == 1
    assert publisher.moves() == [
        ("SegmentEntered", french.segment_id, CUSTOMER),
        ("SegmentExited", french.segment_id, CUSTOMER),
    ]
    assert members(store, french.segment_id) == set()
    assert member_count(store, french.segment_id) == 0


def test_a_redelivered_order_counts_once_and_reaches_the_lake_once(
    membership: MembershipService, store: AnalysisStore, publisher: RecordingPublisher, streams: LakeStreams
) -> None:
    # Given a segment of customers with two orders in 90 days, and a customer
    loyal = saved_segment(store, "Two orders", TWO_ORDERS)
    apply_customer_event(membership, created(CUSTOMER, country="FR"))

    # When their first order is delivered twice
    apply_customer_event(membership, order(CUSTOMER, "int_1", at=NOW - timedelta(days=3)))
    apply_customer_event(membership, order(CUSTOMER, "int_1", at=NOW - timedelta(days=3)))

    # Then it counted once: not a member yet, and one behaviour row in the lake
    assert publisher.moves() == []
    assert [r["event_id"] for r in streams.behaviour.rows] == ["int_1"]

    # When a second order arrives
    entered = moved(apply_customer_event(membership, order(CUSTOMER, "int_2", at=NOW - timedelta(days=1))))

    # Then they enter, and the lake holds both orders (amount and category read from the properties) and the move
    assert [e.segment_id for e in entered] == [loyal.segment_id]
    rows = streams.behaviour.rows
    assert [(r["event_id"], r["event_type"], r["amount"], r["category"]) for r in rows[:2]] == [
        ("int_1", "order_completed", 40.0, "shoes"),
        ("int_2", "order_completed", 40.0, "shoes"),
    ]
    assert [(r["event_type"], r["segment_id"], r["occurred_at"]) for r in rows[2:]] == [
        (SEGMENT_ENTERED, loyal.segment_id, "2026-11-23T10:00:00.000Z")
    ]
    # and every change wrote the profile row, versions increasing
    versions = [r["version"] for r in streams.profiles.rows]
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions)


def test_a_warm_consumer_evaluates_a_segment_created_after_it_loaded_the_catalogue(
    store: AnalysisStore, publisher: RecordingPublisher, clock: FixedClock, streams: LakeStreams
) -> None:
    # Given a consumer that compiled the segments (none yet) and caches them for an hour, as a warm function does
    warm = MembershipService(
        store=store,
        publisher=publisher,
        clock=clock,
        profiles_lake=streams.profiles,
        behaviour_lake=streams.behaviour,
        segments=SegmentCatalogue(store.list_segments, DEFAULT_CATALOG, ttl=3600, revision=store.segments_revision),
    )
    assert warm.segments is not None
    warm.segments.revalidate()
    apply_customer_event(warm, created(OTHER, country="FR"))
    assert store.segments_revision() == 0

    # When a segment is created, and the consumer's next invocation handles a French customer
    french = saved_segment(store, "French", FRENCH)
    assert store.segments_revision() == 1
    warm.segments.revalidate()
    entered = moved(apply_customer_event(warm, created(CUSTOMER, country="FR")))

    # Then the customer enters it within the hour the cache would have lasted
    assert [(e.segment_id, e.customer_id) for e in entered] == [(french.segment_id, CUSTOMER)]

    # And without a new segment, the next invocation reads the revision and not the segments
    loads = []
    warm.segments._load = lambda: loads.append(1) or store.list_segments()  # type: ignore[method-assign]
    warm.segments.revalidate()
    apply_customer_event(warm, updated(CUSTOMER, 2, at=clock.now(), country="FR"))
    assert loads == []


def test_a_segment_defined_on_another_follows_in_the_same_call(
    membership: MembershipService, store: AnalysisStore, publisher: RecordingPublisher, clock: FixedClock
) -> None:
    # Given "French" and "French and reachable by email", defined on the first
    french = saved_segment(store, "French", FRENCH)
    reachable = saved_segment(
        store,
        "French, reachable",
        {"all": [{"in_segment": french.segment_id}, {"consent": "email", "purpose": "marketing"}]},
    )

    # When a French customer who granted marketing email is created
    entered = moved(
        apply_customer_event(membership, created(CUSTOMER, consents={"email:marketing": "granted"}, country="FR"))
    )

    # Then they enter both, the second because of the first
    assert [(e.detail_type, e.segment_id) for e in entered] == [
        ("SegmentEntered", french.segment_id),
        ("SegmentEntered", reachable.segment_id),
    ]
    assert member_count(store, reachable.segment_id) == 1

    # When they later move abroad
    clock.advance(hours=1)
    left = moved(apply_customer_event(membership, updated(CUSTOMER, 2, at=clock.now(), country="DE")))

    # Then they leave both, in the same order
    assert [(e.detail_type, e.segment_id) for e in left] == [
        ("SegmentExited", french.segment_id),
        ("SegmentExited", reachable.segment_id),
    ]
    kinds = [(e.type, e.segment_id) for e in store.load_customer(CUSTOMER).events]
    assert sorted(kinds) == sorted(
        [
            (SEGMENT_ENTERED, french.segment_id),
            (SEGMENT_ENTERED, reachable.segment_id),
            (SEGMENT_EXITED, french.segment_id),
            (SEGMENT_EXITED, reachable.segment_id),
        ]
    )


def test_a_consent_withdrawn_exits_the_segments_that_read_it(
    membership: MembershipService, store: AnalysisStore, clock: FixedClock
) -> None:
    # Given a customer who may receive marketing email, in the segment of those who may
    emailable = saved_segment(store, "Emailable", {"consent": "email", "purpose": "marketing"})
    apply_customer_event(membership, created(CUSTOMER, consents={"email:marketing": "granted"}))
    assert members(store, emailable.segment_id) == {CUSTOMER}

    # When they withdraw it
    clock.advance(minutes=1)
    withdrawn = ConsentChanged(
        customer_id=CUSTOMER,
        channel="email",
        purpose="marketing",
        state="denied",
        previous_state="granted",
        proof_source="preference_center",
        changed_at=clock.now(),
    )
    left = moved(apply_customer_event(membership, withdrawn))

    # Then they leave, with the consent change as the trigger
    assert [(e.detail_type, e.trigger) for e in left] == [("SegmentExited", "ConsentChanged")]
    assert member_count(store, emailable.segment_id) == 0


# -- what is evaluated -------------------------------------------------------------------------------------------------
class CountingCatalogue(SegmentCatalogue):
    """The real catalogue, counting how often each segment's predicate runs."""

    def __init__(self, store: AnalysisStore) -> None:
        super().__init__(store.list_segments, DEFAULT_CATALOG, ttl=-1)
        self.calls: dict[str, int] = {}

    def dynamic(self) -> list[CompiledSegment]:
        return [self._counting(c) for c in super().dynamic()]

    def _counting(self, compiled: CompiledSegment) -> CompiledSegment:
        def predicate(subject: Subject, now: datetime) -> bool:
            self.calls[compiled.segment.name] = self.calls.get(compiled.segment.name, 0) + 1
            return compiled.predicate(subject, now)

        return CompiledSegment(compiled.segment, predicate, compiled.depends_on)


def test_only_the_segments_reading_what_changed_are_evaluated(
    membership: MembershipService, store: AnalysisStore
) -> None:
    # Given segments on a country, on orders, on a consent and on churn risk, and a known customer
    saved_segment(store, "French", FRENCH)
    saved_segment(store, "Two orders", TWO_ORDERS)
    saved_segment(store, "Emailable", {"consent": "email", "purpose": "marketing"})
    saved_segment(store, "At risk", {"trait": "churn_risk", "op": "gte", "value": 0.7})
    apply_customer_event(membership, created(CUSTOMER, country="FR"))
    counting = CountingCatalogue(store)
    membership.segments = counting

    # When an order arrives
    apply_customer_event(membership, order(CUSTOMER, "int_1"))
    # Then only the segment on orders was evaluated
    assert counting.calls == {"Two orders": 1}

    # When marketing email is granted, then only the consent segment is evaluated
    counting.calls.clear()
    granted = ConsentChanged(
        customer_id=CUSTOMER,
        channel="email",
        purpose="marketing",
        state="granted",
        previous_state=None,
        proof_source="web",
        changed_at=NOW,
    )
    apply_customer_event(membership, granted)
    assert counting.calls == {"Emailable": 1}

    # When a snapshot changes nothing segmentation reads (only its version), nothing is evaluated
    counting.calls.clear()
    apply_customer_event(membership, updated(CUSTOMER, 2, at=NOW, country="FR"))
    assert counting.calls == {}


def test_computed_traits_enter_segments_and_an_older_computation_does_not_undo_a_newer(
    membership: MembershipService, store: AnalysisStore, publisher: RecordingPublisher
) -> None:
    # Given a segment on churn risk and a known customer
    at_risk = saved_segment(store, "At risk", {"trait": "churn_risk", "op": "gte", "value": 0.7})
    apply_customer_event(membership, created(CUSTOMER))

    def scored(risk: float, at: datetime) -> TraitsComputed:
        return TraitsComputed(
            model="churn",
            model_version="2026-11-22",
            computed_at=at,
            customers=[CustomerTraits(customer_id=CUSTOMER, traits={"churn_risk": risk, "favourite_colour": "red"})],
        )

    # When the churn model scores them at risk, then a stale scoring (computed earlier) arrives
    entered = moved(apply_customer_event(membership, scored(0.9, NOW)))
    late = moved(apply_customer_event(membership, scored(0.1, NOW - timedelta(days=1))))

    # Then they entered, triggered by the model, and stayed; the unknown trait is not kept
    assert [(e.segment_id, e.trigger) for e in entered] == [(at_risk.segment_id, "traits:churn")]
    assert late == []
    assert store.load_customer(CUSTOMER).projection.traits == {"churn_risk": 0.9}


# -- concurrency -------------------------------------------------------------------------------------------------------
class InterleavingStore(AnalysisStore):
    """The analysis table, letting another consumer run at one point of the next `save_projection`."""

    def __init__(self, client: Any) -> None:
        super().__init__(client, TABLE)
        self.before_save: list[Any] = []
        self.after_save: list[Any] = []

    def save_projection(self, projection: Any, *, expected_version: int | None) -> None:
        if self.before_save:
            self.before_save.pop(0)()
        super().save_projection(projection, expected_version=expected_version)
        if self.after_save:
            self.after_save.pop(0)()


@pytest.fixture
def interleaving(dynamodb: Any, membership: MembershipService) -> MembershipService:
    """A second consumer of the same table: its saves can be interleaved with another consumer's."""
    return MembershipService(
        store=InterleavingStore(dynamodb),
        publisher=membership.publisher,
        clock=membership.clock,
        profiles_lake=membership.profiles_lake,
        behaviour_lake=membership.behaviour_lake,
        segments=membership.segments,
    )


def test_a_concurrent_change_makes_the_save_conflict_and_the_event_is_applied_again(
    membership: MembershipService, interleaving: MembershipService, store: AnalysisStore, publisher: RecordingPublisher
) -> None:
    # Given a segment on two orders and a customer
    loyal = saved_segment(store, "Two orders", TWO_ORDERS)
    apply_customer_event(membership, created(CUSTOMER))
    assert isinstance(interleaving.store, InterleavingStore)

    # When one consumer applies an order while another consumer applies a second order just before it saves
    interleaving.store.before_save.append(lambda: apply_customer_event(membership, order(CUSTOMER, "int_2")))
    apply_customer_event(interleaving, order(CUSTOMER, "int_1"))

    # Then the first consumer's save conflicted and was applied again: both orders kept, the customer entered once
    state = store.load_customer(CUSTOMER)
    assert sorted(e.event_id for e in state.events if e.type == "order_completed") == ["int_1", "int_2"]
    assert publisher.moves() == [("SegmentEntered", loyal.segment_id, CUSTOMER)]
    assert member_count(store, loyal.segment_id) == 1


def test_an_order_applied_while_another_is_being_saved_is_not_lost(
    membership: MembershipService, interleaving: MembershipService, store: AnalysisStore, publisher: RecordingPublisher
) -> None:
    # Given a segment on two orders and a customer
    loyal = saved_segment(store, "Two orders", TWO_ORDERS)
    apply_customer_event(membership, created(CUSTOMER))
    assert isinstance(interleaving.store, InterleavingStore)

    # When a second consumer applies an order right after the first consumer saved the projection for another
    interleaving.store.after_save.append(lambda: apply_customer_event(membership, order(CUSTOMER, "int_2")))
    apply_customer_event(interleaving, order(CUSTOMER, "int_1"))

    # Then one of them saw both orders: the customer, who has two orders, entered the segment
    assert publisher.moves() == [("SegmentEntered", loyal.segment_id, CUSTOMER)]
    assert members(store, loyal.segment_id) == {CUSTOMER}


def test_a_customer_changing_all_the_time_fails_the_event_for_a_later_retry(
    membership: MembershipService, interleaving: MembershipService
) -> None:
    # Given a customer whose projection someone else changes before every save (a segment reads orders, so an
    # order is saved and evaluated)
    saved_segment(interleaving.store, "Two orders", TWO_ORDERS)
    apply_customer_event(membership, created(CUSTOMER))
    assert isinstance(interleaving.store, InterleavingStore)
    interleaving.store.before_save.extend(
        [lambda n=n: apply_customer_event(membership, order(CUSTOMER, f"int_other_{n}")) for n in range(10)]
    )

    # When an order is applied, then it gives up after a few attempts (SQS redelivers it later)
    with pytest.raises(ServiceUnavailable, match="concurrently"):
        apply_customer_event(interleaving, order(CUSTOMER, "int_1"))


def test_a_lake_stream_refusing_rows_fails_the_event(
    membership: MembershipService, streams: LakeStreams, store: AnalysisStore
) -> None:
    # Given a lake stream that refuses rows
    streams.profiles.refuse = True

    # When a customer event is applied, then it fails, so SQS redelivers it
    with pytest.raises(LakeFailed):
        apply_customer_event(membership, created(CUSTOMER, country="FR"))

    # and once the stream accepts rows again, the redelivery writes the profile row it missed
    streams.profiles.refuse = False
    apply_customer_event(membership, created(CUSTOMER, country="FR"))
    assert [(r["customer_id"], r["a_country"]) for r in streams.profiles.rows] == [(CUSTOMER, "FR")]


# -- forgetting customers ----------------------------------------------------------------------------------------------
def test_erasure_exits_every_segment_and_tombstones_the_lake_row(
    membership: MembershipService,
    store: AnalysisStore,
    publisher: RecordingPublisher,
    streams: LakeStreams,
    dynamodb: Any,
    clock: FixedClock,
) -> None:
    # Given a French customer with an order, in two segments
    french = saved_segment(store, "French", FRENCH)
    buyers = saved_segment(store, "Buyers", {"event": "order_completed"})
    apply_customer_event(membership, created(CUSTOMER, country="FR"))
    apply_customer_event(membership, order(CUSTOMER, "int_1"))
    last_version = streams.profiles.rows[-1]["version"]
    publisher.clear()

    # When their data is erased
    clock.advance(minutes=1)
    left = moved(membership.remove(CUSTOMER, status="erased", trigger="erasure"))

    # Then they exit both segments (named), the counts follow, and the lake's latest row for them is a tombstone
    assert sorted((e.detail_type, e.segment_name, e.trigger) for e in left) == [
        ("SegmentExited", "Buyers", "erasure"),
        ("SegmentExited", "French", "erasure"),
    ]
    assert publisher.moves() == [(e.detail_type, e.segment_id, CUSTOMER) for e in left]
    assert member_count(store, french.segment_id) == member_count(store, buyers.segment_id) == 0
    tombstone = streams.profiles.rows[-1]
    assert (tombstone["customer_id"], tombstone["deleted"], tombstone["a_country"]) == (CUSTOMER, True, None)
    assert tombstone["version"] > last_version
    # and nothing of theirs is left in the table but the fact that they were erased
    items = dynamodb.query(
        TableName=TABLE, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": f"CUST#{CUSTOMER}"}}
    )["Items"]
    assert [i["sk"]["S"] for i in items] in ([], ["PROFILE"])
    for item in items:
        assert json.loads(item["doc"]["S"])["attributes"] == {}


def test_an_event_arriving_after_the_erasure_does_not_bring_the_customer_back(
    membership: MembershipService, store: AnalysisStore, publisher: RecordingPublisher, streams: LakeStreams
) -> None:
    # Given an erased customer, and a segment of buyers
    buyers = saved_segment(store, "Buyers", {"event": "order_completed"})
    apply_customer_event(membership, created(CUSTOMER, country="FR"))
    membership.remove(CUSTOMER, status="erased", trigger="erasure")
    rows_before = len(streams.profiles.rows)
    publisher.clear()

    # When an order of theirs, still in flight, arrives afterwards
    apply_customer_event(membership, order(CUSTOMER, "int_late"))

    # Then they do not enter any segment, and no live profile row of theirs reaches the lake
    assert publisher.moves() == []
    assert members(store, buyers.segment_id) == set()
    assert len(streams.profiles.rows) == rows_before
    assert store.load_customer(CUSTOMER).events == []


def test_a_merge_moves_the_losers_behaviour_to_the_survivor(
    membership: MembershipService,
    store: AnalysisStore,
    publisher: RecordingPublisher,
    streams: LakeStreams,
    clock: FixedClock,
) -> None:
    # Given a segment on two orders; the loser has two orders (a member), the survivor one
    loyal = saved_segment(store, "Two orders", TWO_ORDERS)
    apply_customer_event(membership, created(CUSTOMER, country="FR"))
    apply_customer_event(membership, created(OTHER, country="FR"))
    for number in (1, 2):
        apply_customer_event(membership, order(OTHER, f"int_bob_{number}", at=NOW - timedelta(days=number)))
    apply_customer_event(membership, order(CUSTOMER, "int_ada_1", at=NOW - timedelta(days=5)))
    assert members(store, loyal.segment_id) == {OTHER}
    publisher.clear()

    # When the customer store merges the loser into the survivor, and the event is delivered twice
    clock.advance(minutes=1)
    merged = CustomersMerged(
        survivor_id=CUSTOMER,
        merged_ids=[OTHER],
        matched_by=["email"],
        reason="same email",
        merged_at=clock.now(),
        snapshot=ProfileSnapshot(version=2, attributes={"country": "BE"}, identity_types=["email", "phone"]),
    )
    apply_customer_event(membership, merged)
    apply_customer_event(membership, merged)

    # Then the loser left and the survivor, now with three orders, entered (once)
    assert publisher.moves() == [
        ("SegmentExited", loyal.segment_id, OTHER),
        ("SegmentEntered", loyal.segment_id, CUSTOMER),
    ]
    assert members(store, loyal.segment_id) == {CUSTOMER}
    assert member_count(store, loyal.segment_id) == 1
    survivor = store.load_customer(CUSTOMER)
    assert sorted(e.event_id for e in survivor.events if e.type == "order_completed") == [
        "int_ada_1",
        "int_bob_1",
        "int_bob_2",
    ]
    assert survivor.projection.attributes == {"country": "BE"}
    assert survivor.projection.identities == ["email", "phone"]
    # and the lake has the moved orders under the survivor and a tombstone for the loser
    moved = {r["event_id"] for r in streams.behaviour.rows if r["customer_id"] == CUSTOMER}
    assert {"int_bob_1", "int_bob_2"} <= moved
    assert [r["deleted"] for r in streams.profiles.rows if r["customer_id"] == OTHER][-1] is True
