"""The PingRequested consumer, driven with the sample SQS batches and an in-memory store."""

from __future__ import annotations

import json

import pytest
from ecrm.core.clock import FixedClock
from ecrm.platform.store import InMemoryPingStore

from functions.platform import on_ping_requested
from tests.samples import load_sample, with_sqs_body

FIRST_PING = "png_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"
SECOND_PING = "png_01JD3Z6Q5N8V4W7X2Y9A0B1C2F"
POISON_MESSAGE_ID = "3b4c5d6e-7f80-4912-8c9d-8e7f6a5b4c32"


@pytest.fixture
def deps(fixed_clock) -> on_ping_requested.Deps:
    return on_ping_requested.Deps(store=InMemoryPingStore(), clock=fixed_clock)


@pytest.fixture
def consume(deps, lambda_context):
    return lambda event: on_ping_requested.handler(event, lambda_context, deps)


def _body(event: dict, index: int) -> dict:
    return json.loads(event["Records"][index]["body"])


def test_a_good_batch_records_every_ping(consume, deps):
    # Given two valid PingRequested records
    event = load_sample("sqs/ping_requested_batch.json")

    # When the batch is consumed
    response = consume(event)

    # Then no record failed and both pings are recorded with their round trip
    assert response == {"batchItemFailures": []}
    assert set(deps.store.items) == {FIRST_PING, SECOND_PING}
    first = deps.store.items[FIRST_PING]
    assert first.message == "hello"
    assert first.requested_by == "marketer@example.com"
    assert first.round_trip_ms == 880  # requested 10:15:30.120, received 10:15:31 by the fixed clock


def test_a_poison_record_fails_alone(consume, deps):
    # Given a batch whose second record has no ping_id
    event = load_sample("sqs/ping_requested_poison_batch.json")

    # When
    response = consume(event)

    # Then only that record goes back to the queue, and the first is recorded
    assert response == {"batchItemFailures": [{"itemIdentifier": POISON_MESSAGE_ID}]}
    assert set(deps.store.items) == {FIRST_PING}


def test_a_redelivered_record_is_recorded_once(consume, deps, fixed_clock: FixedClock):
    # Given a batch that was consumed already
    consume(load_sample("sqs/ping_requested_batch.json"))
    first_record = deps.store.items[FIRST_PING]

    # When SQS delivers it again later
    fixed_clock.advance(minutes=5)
    event = load_sample("sqs/ping_requested_batch.json")
    for record in event["Records"]:
        record["attributes"]["ApproximateReceiveCount"] = "2"
    response = consume(event)

    # Then it succeeds without recording anything twice or changing the first record
    assert response == {"batchItemFailures": []}
    assert len(deps.store.items) == 2
    assert deps.store.items[FIRST_PING] == first_record


def test_an_unexpected_detail_type_fails_only_that_record(consume, deps):
    # Given a batch whose second record is an event this queue should not receive
    event = load_sample("sqs/ping_requested_batch.json")
    stray = _body(event, 1)
    stray["detail-type"] = "PingForgotten"
    with_sqs_body(event, 1, stray)

    # When
    response = consume(event)

    # Then it is kept for the dead-letter queue, and the other one is recorded
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert set(deps.store.items) == {FIRST_PING}


def test_an_event_from_another_source_fails_only_that_record(consume, deps):
    # Given a PingRequested from a source that does not own it
    event = load_sample("sqs/ping_requested_batch.json")
    stray = _body(event, 0)
    stray["source"] = "ecrm.customers"
    with_sqs_body(event, 0, stray)

    # When
    response = consume(event)

    # Then
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert set(deps.store.items) == {SECOND_PING}


def test_a_body_that_is_not_json_fails_only_that_record(consume, deps):
    # Given a record whose body was mangled
    event = load_sample("sqs/ping_requested_batch.json")
    event["Records"][0]["body"] = "not json"

    # When
    response = consume(event)

    # Then
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert set(deps.store.items) == {SECOND_PING}


def test_a_store_outage_fails_the_records_it_hit(lambda_context, fixed_clock):
    # Given a store that fails on the second ping
    class FlakyStore(InMemoryPingStore):
        def save(self, record):
            if record.ping_id == SECOND_PING:
                raise ConnectionError("table unavailable")
            return super().save(record)

    deps = on_ping_requested.Deps(store=FlakyStore(), clock=fixed_clock)
    event = load_sample("sqs/ping_requested_batch.json")

    # When
    response = on_ping_requested.handler(event, lambda_context, deps)

    # Then that record is retried by SQS; the first is done
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert set(deps.store.items) == {FIRST_PING}
