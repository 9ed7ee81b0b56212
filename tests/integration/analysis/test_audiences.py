"""Audience and membership builds, step by step as Step Functions runs them, on moto's Athena run by DuckDB."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from ecrm.analysis import audiences
from ecrm.analysis.audiences import AudienceSteps
from ecrm.analysis.customer_events import apply_customer_event
from ecrm.analysis.membership import MembershipService
from ecrm.analysis.models import SegmentIn
from ecrm.analysis.segment_sql import CROCKFORD, Shard
from ecrm.analysis.segments import SegmentService
from ecrm.analysis.store import AnalysisStore
from ecrm.core.clock import FixedClock

from tests.integration.analysis.conftest import (
    LAKE_BUCKET,
    LakeStreams,
    RecordingPublisher,
    read_s3,
    saved_segment,
    seed,
    updated,
)

# One customer per shard of four (ids end with 0-7, 8-F, G-Q, R-Z), and a second one in the third;
# builds are configured for two shards (0-F, G-Z), which the plan may reduce for a lake this small.
IN_SHARD_0 = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C21"
IN_SHARD_1 = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"
IN_SHARD_2 = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2K"
ALSO_IN_SHARD_2 = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2M"
IN_SHARD_3 = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2Z"
FRENCH = {"attribute": "country", "op": "eq", "value": "FR"}
TWO_ORDERS = {"event": "order_completed", "window": {"last_days": 90}, "count": {"op": "gte", "value": 2}}
LOYAL_FRENCH = {"all": [FRENCH, TWO_ORDERS]}


@pytest.fixture
def steps(segments: SegmentService, membership: MembershipService, streams: LakeStreams) -> AudienceSteps:
    return AudienceSteps(segments=segments, membership=membership, s3=streams.s3, bucket=LAKE_BUCKET)


@pytest.fixture
def population(membership: MembershipService) -> None:
    """French customers with two orders in 90 days in shards 0, 1 and 3; in shard 2, one French customer
    with one order and one German customer with two."""
    seed(membership, IN_SHARD_0, country="FR", orders=[3, 40])
    seed(membership, IN_SHARD_1, country="FR", orders=[1, 2])
    seed(membership, IN_SHARD_2, country="FR", orders=[5])
    seed(membership, ALSO_IN_SHARD_2, country="DE", orders=[1, 2])
    seed(membership, IN_SHARD_3, country="FR", orders=[10, 20, 30])


def run_build(steps: AudienceSteps, audience_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Plan, every shard (the Distributed Map), finish: what the state machine does."""
    plan = steps.plan(audience_id)
    results = [steps.shard(item["audience_id"], item["index"], item["count"]) for item in plan["shards"]]
    return steps.finish(audience_id, results), results


def part_ids(s3: Any, location: str) -> list[str]:
    rows = list(csv.reader(io.StringIO(read_s3(s3, location).decode())))
    assert rows[0] == ["customer_id"]
    return [row[0] for row in rows[1:]]


def test_an_audience_build_leaves_a_manifest_whose_parts_hold_the_matching_ids(
    steps: AudienceSteps,
    segments: SegmentService,
    store: AnalysisStore,
    streams: LakeStreams,
    publisher: RecordingPublisher,
    population: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the population in the lake, and a segment of French customers with two recent orders
    streams.deliver()
    loyal = saved_segment(store, "Loyal French", LOYAL_FRENCH)

    # When its audience is built in four shards (however few customers the lake holds)
    segments.shards = 4
    monkeypatch.setattr(audiences, "CUSTOMERS_PER_SHARD", 1, raising=False)
    build = segments.build(loyal.segment_id)
    plan = steps.plan(build.audience_id)
    finished, results = run_build(steps, build.audience_id)

    # Then the plan has one item per shard, and the manifest lists one part per shard, in order
    assert [(s["index"], s["count"]) for s in plan["shards"]] == [(0, 4), (1, 4), (2, 4), (3, 4)]
    manifest = json.loads(read_s3(streams.s3, finished["manifest"]))
    assert finished["manifest"] == f"s3://{LAKE_BUCKET}/audiences/{build.audience_id}/manifest.json"
    assert (manifest["segment_id"], manifest["count"], manifest["format"], manifest["columns"]) == (
        loyal.segment_id,
        3,
        "csv",
        ["customer_id"],
    )
    assert [p["count"] for p in manifest["parts"]] == [1, 1, 0, 1]
    # and each part (Athena's CSV result) holds the matching ids of its shard only
    for index, part in enumerate(manifest["parts"]):
        ids = part_ids(streams.s3, part["location"])
        assert len(ids) == part["count"]
        assert all(i[-1] in Shard(index, 4).endings for i in ids)
    found = [i for part in manifest["parts"] for i in part_ids(streams.s3, part["location"])]
    assert found == [IN_SHARD_0, IN_SHARD_1, IN_SHARD_3]
    # and an audience build changes no membership
    assert sum(r["entered"] + r["exited"] for r in results) == 0
    # and the build is complete, announced with its count and manifest
    done = segments.audience(build.audience_id)
    assert (done.status, done.count, done.manifest) == ("completed", 3, finished["manifest"])
    built = publisher.of("AudienceBuilt")
    assert [(e.audience_id, e.count, e.manifest) for e in built] == [(build.audience_id, 3, finished["manifest"])]


def test_a_membership_build_enters_who_the_lake_finds_when_the_projection_agrees(
    steps: AudienceSteps,
    segments: SegmentService,
    membership: MembershipService,
    store: AnalysisStore,
    streams: LakeStreams,
    publisher: RecordingPublisher,
    clock: FixedClock,
    population: None,
) -> None:
    # Given the population in the lake, and then one of them moving abroad (not yet delivered to the lake)
    streams.deliver()
    apply_customer_event(membership, updated(IN_SHARD_1, 2, at=clock.now(), country="DE"))
    publisher.clear()

    # When the segment is created, which starts a membership build, and the build runs
    segment = segments.create(SegmentIn(name="Loyal French", rule=LOYAL_FRENCH), actor="marketer@example.com")
    finished, results = run_build(steps, str(segment.last_audience_id))

    # Then those the lake finds and the projection confirms entered; the one who moved did not
    assert set(store.members(segment.segment_id, CROCKFORD)) == {IN_SHARD_0, IN_SHARD_3}
    assert sorted((e.detail_type, e.customer_id, e.trigger) for e in publisher.of("SegmentEntered")) == [
        ("SegmentEntered", IN_SHARD_0, "build"),
        ("SegmentEntered", IN_SHARD_3, "build"),
    ]
    assert sum(r["entered"] for r in results) == 2
    assert segments.get(segment.segment_id).member_count == 2
    done = segments.audience(str(segment.last_audience_id))
    assert (done.purpose, done.entered, done.exited, done.count) == ("membership", 2, 0, finished["count"])

    # When 60 days pass (one customer's second order leaves the window) and the schedule rebuilds the segment
    clock.advance(days=60)
    streams.deliver()
    publisher.clear()
    (refresh,) = segments.refresh_time_relative()
    _, results = run_build(steps, refresh.audience_id)

    # Then that customer exited, and the others stayed
    assert [(e.detail_type, e.customer_id) for e in publisher.of("SegmentExited")] == [("SegmentExited", IN_SHARD_0)]
    assert sum(r["exited"] for r in results) == 1
    assert set(store.members(segment.segment_id, CROCKFORD)) == {IN_SHARD_3}
    assert segments.get(segment.segment_id).member_count == 1


def test_a_membership_build_moving_a_customer_moves_them_in_segments_defined_on_it(
    steps: AudienceSteps,
    segments: SegmentService,
    membership: MembershipService,
    store: AnalysisStore,
    streams: LakeStreams,
    publisher: RecordingPublisher,
    clock: FixedClock,
) -> None:
    # Given "ordered in the last 30 days" and a segment defined on it, and a customer who ordered 20 days ago
    recent = saved_segment(store, "Recent buyers", {"event": "order_completed", "window": {"last_days": 30}})
    followers = saved_segment(store, "Recent, French", {"all": [{"in_segment": recent.segment_id}, FRENCH]})
    seed(membership, IN_SHARD_0, country="FR", orders=[20])
    assert publisher.moves() == [
        ("SegmentEntered", recent.segment_id, IN_SHARD_0),
        ("SegmentEntered", followers.segment_id, IN_SHARD_0),
    ]
    publisher.clear()

    # When 15 days pass and the time-relative segment is rebuilt (the other is not: it does not depend on time)
    clock.advance(days=15)
    streams.deliver()
    refreshed = segments.refresh_time_relative()
    assert [b.segment_id for b in refreshed] == [recent.segment_id]
    run_build(steps, refreshed[0].audience_id)

    # Then the customer left the rebuilt segment, and the segment defined on it followed
    assert publisher.moves() == [
        ("SegmentExited", recent.segment_id, IN_SHARD_0),
        ("SegmentExited", followers.segment_id, IN_SHARD_0),
    ]
    assert set(store.members(followers.segment_id, CROCKFORD)) == set()


def test_a_static_segment_from_a_rule_takes_the_lakes_answer_as_its_snapshot(
    steps: AudienceSteps,
    segments: SegmentService,
    membership: MembershipService,
    store: AnalysisStore,
    streams: LakeStreams,
    clock: FixedClock,
    population: None,
) -> None:
    # Given the population in the lake
    streams.deliver()

    # When a static segment is made from the rule and its build runs
    body = SegmentIn(name="Loyal French, November", kind="static", rule=LOYAL_FRENCH)
    segment = segments.create(body, actor="marketer@example.com")
    _, results = run_build(steps, str(segment.last_audience_id))

    # Then the lake's answer is its membership
    assert set(store.members(segment.segment_id, CROCKFORD)) == {IN_SHARD_0, IN_SHARD_1, IN_SHARD_3}
    assert sum(r["entered"] for r in results) == 3

    # When a member later moves abroad, then the snapshot stays as it was
    apply_customer_event(membership, updated(IN_SHARD_1, 2, at=clock.now(), country="DE"))
    assert set(store.members(segment.segment_id, CROCKFORD)) == {IN_SHARD_0, IN_SHARD_1, IN_SHARD_3}


def test_a_failed_build_records_why(steps: AudienceSteps, segments: SegmentService, store: AnalysisStore) -> None:
    # Given a running build
    build = segments.build(saved_segment(store, "French", FRENCH).segment_id)

    # When Step Functions reports the error of a shard
    outcome = steps.fail(build.audience_id, {"Error": "QueryFailed", "Cause": "the lake could not answer"})

    # Then the build is failed with the cause
    assert outcome == {"audience_id": build.audience_id, "status": "failed"}
    failed = segments.audience(build.audience_id)
    assert (failed.status, failed.failure, failed.completed_at) == (
        "failed",
        "the lake could not answer",
        segments.clock.now(),
    )
