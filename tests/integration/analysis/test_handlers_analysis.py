"""The analysis engine's Lambda handlers with injected services on moto: the API, the consumers, the build steps."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from ecrm.analysis.audiences import AudienceSteps
from ecrm.analysis.customer_events import apply_customer_event
from ecrm.analysis.membership import MembershipService
from ecrm.analysis.segments import SegmentService
from ecrm.analysis.store import AnalysisStore
from ecrm.core.events import DomainEvent
from ecrm.core.lake import ORDER_LINES
from ecrm.core.publisher import EventPublisher
from ecrm.customers.models import CustomerErasureRequested, InteractionRecorded
from ecrm.platform.models import PingRequested
from ecrm.transactions.lake_records import order_rows
from ecrm.transactions.models import OrderLineIn, OrderPlaced, OrderReturned, OrderStatusChanged, ReturnedLine

from functions.analysis import (
    api,
    job_refresh_segments,
    on_customer_event,
    on_erasure_requested,
    on_erasure_settled,
    task_audience,
)
from tests.integration.analysis.conftest import (
    LAKE_BUCKET,
    NOW,
    LakeStreams,
    RecordingPublisher,
    RecordingStarter,
    created,
    order,
    put_parquet,
    read_s3,
    saved_segment,
    seed,
)
from tests.samples import api_request, sqs_batch
from tests.unit.fakes import FakeEventsClient, bus_event_from_entry

FRENCH_LOYAL = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"
FRENCH_ONCE = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2F"
GERMAN_BROWSER = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2G"
GERMAN_ONCE = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2H"
FRENCH = {"attribute": "country", "op": "eq", "value": "FR"}
UNKNOWN_SEGMENT = "seg_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"

Call = Callable[[dict[str, Any]], tuple[int, Any]]
# The handlers take their collaborators as a third argument; their decorated type only shows the first two.
API: Callable[..., dict[str, Any]] = api.handler
ON_CUSTOMER_EVENT: Callable[..., dict[str, Any]] = on_customer_event.handler
ON_ERASURE_REQUESTED: Callable[..., dict[str, Any]] = on_erasure_requested.handler
TASK_AUDIENCE: Callable[..., dict[str, Any]] = task_audience.handler
JOB_REFRESH_SEGMENTS: Callable[..., dict[str, Any]] = job_refresh_segments.handler


def sqs_event_of(events: list[DomainEvent]) -> dict[str, Any]:
    """The SQS batch a queue subscribed to the bus hands the consumer for these published events."""
    bus = FakeEventsClient()
    EventPublisher("ecrm", bus, sleep=lambda _: None).publish_all(events, correlation_id="cor_handlers")
    return sqs_batch([json.dumps(bus_event_from_entry(e, f"bus-{n}")) for n, e in enumerate(bus.accepted)])


# -- the API --------------------------------------------------------------------------------------------------------
@pytest.fixture
def call(segments: SegmentService, lambda_context: Any) -> Call:
    deps = api.Deps(segments)

    def invoke(event: dict[str, Any]) -> tuple[int, Any]:
        response = API(event, lambda_context, deps)
        return response["statusCode"], json.loads(response["body"]) if response.get("body") else None

    return invoke


def test_a_marketer_saves_a_segment_reads_it_and_builds_it(call: Call) -> None:
    # When a marketer saves a dynamic segment
    status, saved = call(api_request("POST", "/segments", body={"name": "French", "rule": FRENCH}))

    # Then it is created (201), in words, with a membership build started
    assert status == 201
    assert (saved["rule_text"], saved["member_count"]) == ("country is FR", 0)
    assert saved["last_audience_id"].startswith("aud_")

    # When it is read, listed, built, and its build read
    segment_id = saved["segment_id"]
    path = {"segment_id": segment_id}
    status, read = call(api_request("GET", "/segments/{segment_id}", path_parameters=path, groups="agent"))
    assert (status, read) == (200, saved)
    status, listed = call(api_request("GET", "/segments"))
    assert (status, [s["segment_id"] for s in listed["items"]]) == (200, [segment_id])
    status, build = call(api_request("POST", "/segments/{segment_id}/build", path_parameters=path))
    assert (status, build["purpose"], build["status"]) == (202, "audience", "running")
    status, audience = call(
        api_request("GET", "/audiences/{audience_id}", path_parameters={"audience_id": build["audience_id"]})
    )
    assert (status, audience["segment_id"]) == (200, segment_id)


def test_a_group_not_allowed_to_edit_segments_gets_403(call: Call, store: AnalysisStore) -> None:
    # When a support agent tries to save a segment, preview a rule or query OLAP
    answers = [
        call(api_request("POST", "/segments", body={"name": "French", "rule": FRENCH}, groups="agent")),
        call(api_request("POST", "/segments/preview", body={"rule": FRENCH}, groups="agent")),
        call(api_request("POST", "/analysis/olap", body={"measures": ["orders"]}, groups="agent")),
    ]

    # Then each is forbidden, and nothing was saved
    assert [status for status, _ in answers] == [403, 403, 403]
    assert store.list_segments() == []


def test_a_rule_wrong_against_the_catalogue_is_a_422_listing_each_part(call: Call) -> None:
    # When a segment refers to an unknown attribute and to a segment that does not exist
    rule = {"all": [{"attribute": "shoe_size", "op": "eq", "value": "42"}, {"in_segment": UNKNOWN_SEGMENT}]}
    status, problem = call(api_request("POST", "/segments", body={"name": "Odd", "rule": rule}))

    # Then it is a 422 invalid-rule naming both parts
    assert (status, problem["type"].rsplit("/", 1)[-1]) == (422, "invalid-rule")
    assert [e["path"] for e in problem["errors"]] == ["rule.all[0].attribute", "rule.all[1].in_segment"]


def test_a_rule_of_the_wrong_shape_is_a_422_from_the_request_model(call: Call) -> None:
    # When a rule uses an operator that does not exist
    body = {"name": "Odd", "rule": {"attribute": "country", "op": "like", "value": "F%"}}
    status, problem = call(api_request("POST", "/segments", body=body))

    # Then the request model refuses it, naming the field, before any catalogue check
    assert (status, problem["type"].rsplit("/", 1)[-1]) == (422, "validation-error")
    assert [e["field"] for e in problem["errors"]] == ["rule.attribute.op"]


def test_unknown_and_unbuildable_segments(call: Call) -> None:
    # When an unknown segment is read, then it is not found
    status, _ = call(api_request("GET", "/segments/{segment_id}", path_parameters={"segment_id": UNKNOWN_SEGMENT}))
    assert status == 404

    # When a static list is built, then there is nothing to build
    _, saved = call(
        api_request("POST", "/segments", body={"name": "List", "kind": "static", "members": [FRENCH_LOYAL]})
    )
    status, problem = call(
        api_request("POST", "/segments/{segment_id}/build", path_parameters={"segment_id": saved["segment_id"]})
    )
    assert (status, problem["type"].rsplit("/", 1)[-1]) == (409, "not-buildable")


@pytest.fixture
def shoppers(membership: MembershipService, streams: LakeStreams) -> None:
    """Two French customers (two orders, one order) and two German ones (a page view only, one order)."""
    seed(membership, FRENCH_LOYAL, country="FR", orders=[3, 40])
    seed(membership, FRENCH_ONCE, country="FR", orders=[5])
    seed(membership, GERMAN_BROWSER, country="DE")
    seed(membership, GERMAN_ONCE, country="DE", orders=[1])
    viewed = InteractionRecorded(
        customer_id=GERMAN_BROWSER,
        interaction_id="int_view",
        type="page_viewed",
        channel="web",
        record_source="web",
        occurred_at=NOW,
        properties={"product_id": "sku_1"},
    )
    apply_customer_event(membership, viewed)
    streams.deliver()


def test_preview_and_olap_answer_from_the_lake(call: Call, shoppers: None) -> None:
    # When a marketer previews French customers
    status, preview = call(api_request("POST", "/segments/preview", body={"rule": FRENCH, "sample": 1}))

    # Then the lake counts two and samples the first
    assert (status, preview["count"], preview["sample"]) == (200, 2, [FRENCH_LOYAL])

    # When an analyst asks for orders, revenue, average order value and conversion by country
    body = {"measures": ["orders", "revenue", "average_order_value", "conversion_rate"], "dimensions": ["country"]}
    status, olap = call(api_request("POST", "/analysis/olap", body=body, groups="analyst"))

    # Then every measure is typed (counts whole, ratios not truncated), most orders first
    assert status == 200
    assert olap["columns"] == ["country", "orders", "revenue", "average_order_value", "conversion_rate"]
    assert olap["rows"] == [
        {"country": "FR", "orders": 3, "revenue": 120.0, "average_order_value": 40.0, "conversion_rate": 1.0},
        {"country": "DE", "orders": 1, "revenue": 40.0, "average_order_value": 40.0, "conversion_rate": 0.5},
    ]


def test_olap_counts_the_transactions_engines_orders_net_of_returns(
    call: Call, shoppers: None, streams: LakeStreams
) -> None:
    # Given the German browser's orders as the transactions engine writes them to the lake's order lines: one of
    # 100 + 30 whose 30 came back, and one of 55 cancelled
    lines = [
        OrderLineIn(sku="shoe-1", name="Shoe", category="shoes", quantity=1, unit_price_minor=10_000),
        OrderLineIn(sku="bag-1", name="Bag", category="bags", quantity=1, unit_price_minor=3_000),
    ]
    rows = order_rows(
        OrderPlaced(
            order_id="ord_kept",
            customer_id=GERMAN_BROWSER,
            currency="EUR",
            channel="web",
            lines=lines,
            total_minor=13_000,
            placed_at=NOW,
        ),
        event_id="evt_placed",
    )
    rows += order_rows(
        OrderReturned(
            order_id="ord_kept",
            customer_id=GERMAN_BROWSER,
            return_id="ret_1",
            lines=[ReturnedLine(sku="bag-1", category="bags", quantity=1, unit_price_minor=3_000)],
            refund_minor=3_000,
            currency="EUR",
            fully_returned=False,
            returned_at=NOW,
        ),
        event_id="evt_returned",
    )
    cancelled_lines = [OrderLineIn(sku="hat-1", name="Hat", quantity=1, unit_price_minor=5_500)]
    rows += order_rows(
        OrderPlaced(
            order_id="ord_gone",
            customer_id=GERMAN_BROWSER,
            currency="EUR",
            channel="web",
            lines=cancelled_lines,
            total_minor=5_500,
            placed_at=NOW,
        ),
        event_id="evt_placed_2",
    )
    rows += order_rows(
        OrderStatusChanged(
            order_id="ord_gone",
            customer_id=GERMAN_BROWSER,
            previous_status="paid",
            status="cancelled",
            refund_minor=5_500,
            currency="EUR",
            changed_at=NOW,
        ),
        event_id="evt_cancelled",
    )
    put_parquet(streams.s3, ORDER_LINES, rows, day="2026-11-23", name="orders")

    # When an analyst asks for orders and revenue by country
    body = {"measures": ["orders", "revenue", "customers", "conversion_rate"], "dimensions": ["country"]}
    status, olap = call(api_request("POST", "/analysis/olap", body=body, groups="analyst"))

    # Then Germany gains one order of 100 (the bag's refund taken off, the cancelled order nowhere)
    assert status == 200
    assert olap["rows"] == [
        {"country": "FR", "orders": 3, "revenue": 120.0, "customers": 2, "conversion_rate": 1.0},
        {"country": "DE", "orders": 2, "revenue": 140.0, "customers": 2, "conversion_rate": 1.0},
    ]


# -- the customer events consumer -----------------------------------------------------------------------------------
def test_the_consumer_applies_customer_events_and_fails_only_what_it_cannot_apply(
    membership: MembershipService,
    store: AnalysisStore,
    publisher: RecordingPublisher,
    lambda_context: Any,
) -> None:
    # Given a segment of French buyers
    buyers = saved_segment(store, "French buyers", {"all": [FRENCH, {"event": "order_completed"}]})

    # When a batch brings a French customer's creation and order, and an event this queue does not take
    stray = PingRequested(ping_id="png_01JD3Z6Q5N8V4W7X2Y9A0B1C2D", message="x", requested_by="t", requested_at=NOW)
    event = sqs_event_of([created(FRENCH_LOYAL, country="FR"), order(FRENCH_LOYAL, "int_1"), stray])
    response = ON_CUSTOMER_EVENT(event, lambda_context, membership)

    # Then the customer entered the segment, and only the stray record goes back to the queue
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][2]["messageId"]}]}
    assert publisher.moves() == [("SegmentEntered", buyers.segment_id, FRENCH_LOYAL)]

    # When the same batch is delivered again, then nothing more is published
    ON_CUSTOMER_EVENT(event, lambda_context, membership)
    assert publisher.moves() == [("SegmentEntered", buyers.segment_id, FRENCH_LOYAL)]


def test_the_consumer_returns_an_event_the_lake_refused(
    membership: MembershipService, streams: LakeStreams, lambda_context: Any
) -> None:
    # Given a lake stream refusing rows
    streams.behaviour.refuse = True

    # When an order is consumed, then its record goes back to the queue for a retry
    event = sqs_event_of([created(FRENCH_LOYAL, country="FR"), order(FRENCH_LOYAL, "int_1")])
    response = ON_CUSTOMER_EVENT(event, lambda_context, membership)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}


# -- the erasure consumer -------------------------------------------------------------------------------------------
def test_an_erasure_request_forgets_the_customers_and_is_acknowledged(
    membership: MembershipService,
    store: AnalysisStore,
    publisher: RecordingPublisher,
    streams: LakeStreams,
    lambda_context: Any,
) -> None:
    # Given two French customers in a segment
    french = saved_segment(store, "French", FRENCH)
    seed(membership, FRENCH_LOYAL, country="FR")
    seed(membership, FRENCH_ONCE, country="FR")
    publisher.clear()

    # When the erasure of both ids is requested
    request = CustomerErasureRequested(
        request_id="era_1", customer_id=FRENCH_LOYAL, customer_ids=[FRENCH_LOYAL, FRENCH_ONCE], requested_at=NOW
    )
    response = ON_ERASURE_REQUESTED(sqs_event_of([request]), lambda_context, membership)

    # Then both left the segment and the lake has their tombstones; the acknowledgement waits for the lake part
    assert response == {"batchItemFailures": []}
    assert sorted(publisher.moves()) == [
        ("SegmentExited", french.segment_id, c) for c in sorted([FRENCH_LOYAL, FRENCH_ONCE])
    ]
    assert store.get_segment(french.segment_id).member_count == 0
    assert {r["customer_id"] for r in streams.profiles.rows if r["deleted"]} == {FRENCH_LOYAL, FRENCH_ONCE}
    assert publisher.of("CustomerDataErased") == []
    # And the lake eraser may now run: the tombstones it must delete are written
    assert store.erasure_prepared("era_1")
    assert not store.erasure_prepared("era_2")


class RecordingLakeErasure:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def erase(self, request: CustomerErasureRequested) -> int:
        self.calls.append(f"erase {request.request_id}")
        return 0

    def acknowledge(self, request: CustomerErasureRequested, *, correlation_id: str | None = None) -> None:
        self.calls.append(f"acknowledge {request.request_id}")


def test_the_lake_eraser_waits_for_the_projection_consumers_tombstones(lambda_context: Any) -> None:
    # Given an erasure whose projection part finishes only on the third look
    request = CustomerErasureRequested(
        request_id="era_1", customer_id=FRENCH_LOYAL, customer_ids=[FRENCH_LOYAL], requested_at=NOW
    )
    answers, slept = iter([False, False, True]), []
    erasure = RecordingLakeErasure()
    deps = on_erasure_settled.Deps(erasure, lambda _: next(answers), slept.append)  # type: ignore[arg-type]
    # When the lake eraser receives it
    response = on_erasure_settled.handler(sqs_event_of([request]), lambda_context, deps)
    # Then it waited, then erased and acknowledged
    assert response == {"batchItemFailures": []}
    assert (len(slept), erasure.calls) == (2, ["erase era_1", "acknowledge era_1"])


def test_a_lake_eraser_that_waited_too_long_erases_nothing_and_is_retried(lambda_context: Any) -> None:
    request = CustomerErasureRequested(
        request_id="era_1", customer_id=FRENCH_LOYAL, customer_ids=[FRENCH_LOYAL], requested_at=NOW
    )
    erasure = RecordingLakeErasure()
    deps = on_erasure_settled.Deps(erasure, lambda _: False, lambda _: None)  # type: ignore[arg-type]
    with pytest.raises(BatchProcessingError):  # the whole batch failed: the message comes back later
        on_erasure_settled.handler(sqs_event_of([request]), lambda_context, deps)
    assert erasure.calls == []


# -- the audience build steps ---------------------------------------------------------------------------------------
def test_the_build_steps_run_as_the_state_machine_calls_them(
    segments: SegmentService,
    membership: MembershipService,
    store: AnalysisStore,
    streams: LakeStreams,
    lambda_context: Any,
    shoppers: None,
) -> None:
    # Given a build of the French segment
    steps = AudienceSteps(segments=segments, membership=membership, s3=streams.s3, bucket=LAKE_BUCKET)
    build = segments.build(saved_segment(store, "French", FRENCH).segment_id)

    def step(**event: Any) -> dict[str, Any]:
        return TASK_AUDIENCE(event, lambda_context, steps)

    # When the state machine plans, maps the shards and finishes
    plan = step(action="plan", audience_id=build.audience_id)
    results = [step(action="shard", **item) for item in plan["shards"]]
    finished = step(action="finish", audience_id=build.audience_id, results=results)

    # Then the manifest counts the French customers, whose ids are in the parts
    assert finished["count"] == 2
    manifest = json.loads(read_s3(streams.s3, finished["manifest"]))
    ids = [line for part in manifest["parts"] for line in read_s3(streams.s3, part["location"]).decode().split()]
    assert sorted(i.strip('"') for i in ids if i != '"customer_id"') == [FRENCH_LOYAL, FRENCH_ONCE]

    # When a failure is reported, then the build says why; an unknown step is a wiring bug
    assert step(action="fail", audience_id=build.audience_id, error={"Cause": "boom"})["status"] == "failed"
    assert segments.audience(build.audience_id).failure == "boom"
    with pytest.raises(ValueError, match="unknown audience step"):
        step(action="sing", audience_id=build.audience_id)


def test_the_schedule_rebuilds_the_segments_that_change_with_time(
    segments: SegmentService, store: AnalysisStore, starter: RecordingStarter, lambda_context: Any
) -> None:
    # Given a segment on a country and one on orders in the last 30 days
    saved_segment(store, "French", FRENCH)
    recent = saved_segment(store, "Recent buyers", {"event": "order_completed", "window": {"last_days": 30}})

    # When the scheduled job runs
    response = JOB_REFRESH_SEGMENTS({}, lambda_context, segments)

    # Then only the time-relative segment gets a membership build
    (started,) = response["started"]
    assert segments.audience(started).segment_id == recent.segment_id
    assert [name for name, _ in starter.started] == [started]
