"""Saving, checking and previewing segments: moto's DynamoDB, and the lake on moto's Athena run by DuckDB."""

from __future__ import annotations

from typing import Any

import pytest
from ecrm.analysis.membership import MembershipService
from ecrm.analysis.models import PreviewIn, SegmentIn
from ecrm.analysis.segments import InvalidRule, NotBuildable, SegmentService
from ecrm.analysis.store import AnalysisStore
from ecrm.core.errors import NotFound

from tests.integration.analysis.conftest import LakeStreams, RecordingStarter, saved_segment, seed

# Customers by what they are in the lake of the preview tests.
LOYAL = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"
ONCE = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2F"
GERMAN = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2G"
ERASED = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2H"
MOST_LOYAL = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2J"
FRENCH = {"attribute": "country", "op": "eq", "value": "FR"}
TWO_ORDERS = {"event": "order_completed", "window": {"last_days": 90}, "count": {"op": "gte", "value": 2}}
MARKETER = "marketer@example.com"


def segment_in(**body: Any) -> SegmentIn:
    return SegmentIn.model_validate({"name": "A segment", **body})


def problem_paths(error: pytest.ExceptionInfo[InvalidRule]) -> dict[str, str]:
    return {e["path"]: e["message"] for e in error.value.extensions["errors"]}


# -- saving ---------------------------------------------------------------------------------------------------------
def test_a_rule_is_checked_against_the_catalogue_and_every_problem_is_named_by_its_path(
    segments: SegmentService, store: AnalysisStore, starter: RecordingStarter
) -> None:
    # Given a rule with an unknown attribute, an operator that does not apply, and a fractional count
    rule = {
        "all": [
            FRENCH,
            {"attribute": "shoe_size", "op": "eq", "value": "42"},
            {"not": {"trait": "churn_risk", "op": "contains", "value": "x"}},
            {"event": "order_completed", "count": {"op": "gte", "value": 1.5}},
        ]
    }

    # When it is saved
    with pytest.raises(InvalidRule) as refused:
        segments.create(segment_in(rule=rule), actor=MARKETER)

    # Then the problem is a 422 naming each part, and nothing was saved or started
    assert (refused.value.status, refused.value.code) == (422, "invalid-rule")
    paths = problem_paths(refused)
    assert set(paths) == {"rule.all[1].attribute", "rule.all[2].not.op", "rule.all[3].count.value"}
    assert "unknown attribute 'shoe_size'" in paths["rule.all[1].attribute"]
    assert "country" in paths["rule.all[1].attribute"]  # the known ones are listed
    assert store.list_segments() == []
    assert starter.started == []


def test_a_reference_to_an_unknown_segment_is_refused_with_its_path(
    segments: SegmentService, store: AnalysisStore
) -> None:
    # Given a saved segment and a rule referencing it and a segment that does not exist
    french = saved_segment(store, "French", FRENCH)
    rule = {"any": [{"in_segment": french.segment_id}, {"not": {"in_segment": "seg_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"}}]}

    # When it is saved, then only the unknown reference is a problem
    with pytest.raises(InvalidRule) as refused:
        segments.create(segment_in(rule=rule), actor=MARKETER)
    assert problem_paths(refused) == {
        "rule.any[1].not.in_segment": "segment seg_01JD3Z6Q5N8V4W7X2Y9A0B1C2D does not exist"
    }


def test_a_dynamic_segment_is_saved_with_its_rule_in_words_and_starts_a_membership_build(
    segments: SegmentService, store: AnalysisStore, starter: RecordingStarter
) -> None:
    # Given a rule on a country and on recent orders
    body = segment_in(name="Recent French buyers", rule={"all": [FRENCH, TWO_ORDERS]})

    # When it is saved
    segment = segments.create(body, actor=MARKETER)

    # Then it is stored as given, readable, marked as changing with time, and its members are being built
    assert segment.segment_id.startswith("seg_")
    assert (segment.kind, segment.created_by, segment.member_count) == ("dynamic", MARKETER, 0)
    assert segment.rule == {"all": [FRENCH, TWO_ORDERS]}
    assert segment.rule_text == "(country is FR and order completed at least 2 times in the last 90 days)"
    assert segment.time_relative
    assert segments.get(segment.segment_id) == segment
    assert starter.started == [(segment.last_audience_id, {"audience_id": segment.last_audience_id})]
    build = segments.audience(str(segment.last_audience_id))
    assert (build.segment_id, build.purpose, build.status, build.shards) == (
        segment.segment_id,
        "membership",
        "running",
        2,
    )


def test_a_static_list_records_its_members_and_builds_nothing(
    segments: SegmentService, store: AnalysisStore, starter: RecordingStarter
) -> None:
    # Given a list of customers, one given twice
    body = segment_in(name="Fair visitors", kind="static", members=[LOYAL, ONCE, LOYAL])

    # When it is saved
    segment = segments.create(body, actor=MARKETER)

    # Then each is a member once, the count says so, and no build was started
    assert set(store.members(segment.segment_id, "DF")) == {LOYAL, ONCE}
    assert segment.member_count == 2
    assert (segment.rule, segment.last_audience_id) == (None, None)
    assert starter.started == []
    # and a list has no audience to build from the lake
    with pytest.raises(NotBuildable):
        segments.build(segment.segment_id)


def test_building_starts_an_audience_build_and_the_schedule_refreshes_only_time_relative_segments(
    segments: SegmentService, store: AnalysisStore, starter: RecordingStarter
) -> None:
    # Given a segment on a country (no time) and one on recent orders
    french = segments.create(segment_in(name="French", rule=FRENCH), actor=MARKETER)
    recent = segments.create(segment_in(name="Recent", rule=TWO_ORDERS), actor=MARKETER)
    starter.started.clear()

    # When the French audience is built, then an audience build runs and the segment points at it
    build = segments.build(french.segment_id)
    assert (build.purpose, build.status) == ("audience", "running")
    assert segments.get(french.segment_id).last_audience_id == build.audience_id

    # When the schedule refreshes time-relative segments, then only the one on recent orders is rebuilt
    refreshed = segments.refresh_time_relative()
    assert [(b.segment_id, b.purpose) for b in refreshed] == [(recent.segment_id, "membership")]
    assert [name for name, _ in starter.started] == [build.audience_id, refreshed[0].audience_id]
    # and an unknown segment is not found
    with pytest.raises(NotFound):
        segments.build("seg_01JD3Z6Q5N8V4W7X2Y9A0B1C2D")


# -- previewing on the lake -----------------------------------------------------------------------------------------
@pytest.fixture
def population(membership: MembershipService, streams: LakeStreams) -> None:
    """Customers as the real-time path wrote them to the lake (then delivered by the streams).

    LOYAL and MOST_LOYAL: French with two or three recent orders. ONCE: French, one order (delivered
    twice to the lake). GERMAN: German, two orders. ERASED: French, two orders, erased.
    """
    seed(membership, LOYAL, country="FR", orders=[3, 40])
    seed(membership, ONCE, country="FR", orders=[5])
    seed(membership, GERMAN, country="DE", orders=[1, 2])
    seed(membership, ERASED, country="FR", orders=[1, 2])
    seed(membership, MOST_LOYAL, country="FR", orders=[10, 20, 400])
    membership.remove(ERASED, status="erased", trigger="erasure")
    streams.behaviour.rows += [dict(r) for r in streams.behaviour.rows if r["customer_id"] == ONCE]
    streams.deliver()


def test_a_preview_counts_and_samples_the_rule_on_the_lake(segments: SegmentService, population: None) -> None:
    # When French customers with two orders in 90 days are previewed
    preview = segments.preview(PreviewIn.model_validate({"rule": {"all": [FRENCH, TWO_ORDERS]}, "sample": 10}))

    # Then the lake finds the two loyal ones; not the one-order customer (seen twice), the German or the erased one
    assert preview.count == 2
    assert preview.sample == [LOYAL, MOST_LOYAL]
    assert preview.rule_text == "(country is FR and order completed at least 2 times in the last 90 days)"
    assert preview.evaluated_at == segments.clock.now()
    assert (preview.data_scanned_bytes or 0) > 0


def test_a_preview_without_a_sample_only_counts(segments: SegmentService, population: None) -> None:
    # When every customer with an order is counted, without a sample
    preview = segments.preview(PreviewIn.model_validate({"rule": {"event": "order_completed"}, "sample": 0}))

    # Then the four live customers count, and no id is returned
    assert (preview.count, preview.sample) == (4, [])


def test_a_bad_rule_is_refused_before_the_lake_is_asked(segments: SegmentService, lake: Any) -> None:
    # Given a rule on an unknown trait
    body = PreviewIn.model_validate({"rule": {"trait": "shoe_size", "op": "gt", "value": 40}})

    # When it is previewed, then it is refused with its path and no query ran
    with pytest.raises(InvalidRule) as refused:
        segments.preview(body)
    assert list(problem_paths(refused)) == ["rule.trait"]
    assert lake.client.list_query_executions()["QueryExecutionIds"] == []
