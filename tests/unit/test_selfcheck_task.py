"""The two steps of the self-check state machine: send a ping, then verify it arrived."""

from __future__ import annotations

import json

import pytest
from ecrm.core.publisher import EventPublisher, EventsNotPublished
from ecrm.platform.store import InMemoryPingStore

from functions.platform import on_ping_requested, task_selfcheck
from tests.conftest import SAMPLE_NOW
from tests.samples import sqs_batch
from tests.unit.fakes import FakeEventsClient, bus_event_from_entry


@pytest.fixture
def bus() -> FakeEventsClient:
    return FakeEventsClient()


@pytest.fixture
def deps(bus, fixed_clock) -> task_selfcheck.Deps:
    return task_selfcheck.Deps(
        publisher=EventPublisher("ecrm", bus, sleep=lambda _: None),
        store=InMemoryPingStore(),
        clock=fixed_clock,
    )


def _deliver(bus: FakeEventsClient, deps: task_selfcheck.Deps, lambda_context) -> dict:
    """What the bus, the rule and the queue do: hand every accepted event to the consumer."""
    bodies = [json.dumps(bus_event_from_entry(entry, f"bus-{n}")) for n, entry in enumerate(bus.accepted)]
    consumer_deps = on_ping_requested.Deps(store=deps.store, clock=deps.clock)
    return on_ping_requested.handler(sqs_batch(bodies), lambda_context, consumer_deps)


def test_send_publishes_a_ping_and_returns_its_id(deps, bus, lambda_context):
    # Given / When the first step runs
    result = task_selfcheck.handler({"step": "send"}, lambda_context, deps)

    # Then it returns the ping id the next step checks, and the ping is on the bus
    assert result["ping_id"].startswith("png_")
    (detail,) = bus.accepted_details()
    assert detail["data"]["ping_id"] == result["ping_id"]
    assert detail["data"]["message"] == "self-check"
    assert detail["data"]["requested_by"] == "selfcheck"


def test_send_fails_when_the_bus_refuses(deps, fixed_clock, lambda_context):
    # Given a bus that denies the ping
    refusing = task_selfcheck.Deps(
        EventPublisher("ecrm", FakeEventsClient(script=[{0: "AccessDeniedException"}])),
        deps.store,
        fixed_clock,
    )

    # When / Then the state machine sees the step fail
    with pytest.raises(EventsNotPublished):
        task_selfcheck.handler({"step": "send"}, lambda_context, refusing)


def test_verify_raises_until_the_ping_arrives_then_returns_its_record(deps, bus, fixed_clock, lambda_context):
    # Given a ping was sent
    ping_id = task_selfcheck.handler({"step": "send"}, lambda_context, deps)["ping_id"]

    # When verify runs before the consumer recorded it
    # Then it raises the error the state machine retries
    with pytest.raises(task_selfcheck.PingNotArrived, match=ping_id):
        task_selfcheck.handler({"step": "verify", "ping_id": ping_id}, lambda_context, deps)

    # When the event is consumed 250 ms later and verify runs again
    fixed_clock.advance(milliseconds=250)
    assert _deliver(bus, deps, lambda_context) == {"batchItemFailures": []}
    result = task_selfcheck.handler({"step": "verify", "ping_id": ping_id}, lambda_context, deps)

    # Then it returns the arrival record
    assert result["ping_id"] == ping_id
    assert result["status"] == "received"
    assert result["round_trip_ms"] == 250
    assert result["requested_at"] == SAMPLE_NOW.isoformat().replace("+00:00", "Z")


def test_verify_without_a_ping_id_is_a_wiring_error(deps, lambda_context):
    # Given / When / Then
    with pytest.raises(ValueError, match="ping_id"):
        task_selfcheck.handler({"step": "verify"}, lambda_context, deps)


def test_an_unknown_step_is_rejected(deps, lambda_context):
    # Given / When / Then
    with pytest.raises(ValueError, match="step"):
        task_selfcheck.handler({"step": "celebrate"}, lambda_context, deps)
