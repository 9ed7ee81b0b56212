"""Publishing domain events: batches, per-entry retries and a receipt that hides nothing."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime

import pytest
from ecrm.core.publisher import (
    MAX_BYTES_PER_CALL,
    RETRYABLE_CODES,
    EventPublisher,
    EventsNotPublished,
)
from ecrm.platform.models import PingRequested
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.fakes import FakeEventsClient, entry_size

REQUESTED_AT = datetime(2026, 11, 23, 10, 15, 30, tzinfo=UTC)
PERMANENT_CODES = ["ValidationException", "AccessDeniedException"]


def _pings(count: int, message: str = "hello") -> list[PingRequested]:
    return [
        PingRequested(
            ping_id=f"png_{n:026d}",
            message=message,
            requested_by="marketer@example.com",
            requested_at=REQUESTED_AT,
        )
        for n in range(count)
    ]


def _ping_ids(entries: list[dict]) -> list[str]:
    return [json.loads(e["Detail"])["data"]["ping_id"] for e in entries]


class RecordingSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _publisher(client: FakeEventsClient, sleep: RecordingSleep | None = None) -> EventPublisher:
    return EventPublisher("ecrm", client, sleep=sleep or RecordingSleep())


def test_events_are_sent_in_batches_of_ten():
    # Given 25 events and a healthy bus
    client = FakeEventsClient()

    # When they are published
    receipt = _publisher(client).publish(_pings(25))

    # Then three calls carried them, in order, and all were published
    assert [len(call) for call in client.calls] == [10, 10, 5]
    assert _ping_ids([e for call in client.calls for e in call]) == [p.ping_id for p in _pings(25)]
    assert receipt.ok
    assert len(set(receipt.published_ids)) == 25


def test_nothing_to_publish_makes_no_call():
    # Given / When
    client = FakeEventsClient()
    receipt = _publisher(client).publish([])

    # Then
    assert client.calls == []
    assert receipt.ok
    assert receipt.published_ids == []


def test_each_entry_targets_the_bus_with_the_event_coordinates_and_correlation_id():
    # Given
    client = FakeEventsClient()

    # When
    _publisher(client).publish(_pings(3), correlation_id="cor_01JD3Z6Q5N8V4W7X2Y9A0B1C2E")

    # Then
    for entry in client.calls[0]:
        assert entry["EventBusName"] == "ecrm"
        assert entry["Source"] == "ecrm.platform"
        assert entry["DetailType"] == "PingRequested"
        assert json.loads(entry["Detail"])["metadata"]["correlation_id"] == "cor_01JD3Z6Q5N8V4W7X2Y9A0B1C2E"


def test_only_the_failed_entries_are_retried():
    # Given a bus that throttles two entries of the first call
    client = FakeEventsClient(script=[{3: "ThrottlingException", 7: "InternalFailure"}])
    sleep = RecordingSleep()

    # When ten events are published
    receipt = _publisher(client, sleep).publish(_pings(10))

    # Then the second call carries exactly those two, unchanged, after one backoff
    assert len(client.calls) == 2
    assert client.calls[1] == [client.calls[0][3], client.calls[0][7]]
    assert sleep.waits == [0.05]
    assert receipt.ok
    assert len(receipt.published_ids) == 10


def test_permanent_failures_are_reported_and_not_retried():
    # Given a bus that rejects two entries for good
    client = FakeEventsClient(script=[{1: "ValidationException", 2: "AccessDeniedException"}])
    events = _pings(10)

    # When they are published
    receipt = _publisher(client).publish(events)

    # Then no retry was made and the receipt names both failures with their events
    assert len(client.calls) == 1
    assert not receipt.ok
    assert len(receipt.published_ids) == 8
    assert [(f.event, f.error_code) for f in receipt.failed] == [
        (events[1], "ValidationException"),
        (events[2], "AccessDeniedException"),
    ]
    assert all(f.error_message for f in receipt.failed)


def test_retries_stop_after_max_attempts_and_report_what_still_failed():
    # Given a bus that throttles everything
    client = FakeEventsClient(outcome=lambda call, index, entry: "ThrottlingException")
    sleep = RecordingSleep()

    # When three events are published with three attempts
    receipt = EventPublisher("ecrm", client, max_attempts=3, sleep=sleep).publish(_pings(3))

    # Then it tried three times with exponential backoff, then gave up naming every event
    assert len(client.calls) == 3
    assert sleep.waits == [0.05, 0.1]
    assert receipt.published_ids == []
    assert [f.error_code for f in receipt.failed] == ["ThrottlingException"] * 3


def test_publish_all_raises_with_the_receipt_when_anything_failed():
    # Given a bus that denies one entry
    client = FakeEventsClient(script=[{0: "AccessDeniedException"}])

    # When / Then
    with pytest.raises(EventsNotPublished) as caught:
        _publisher(client).publish_all(_pings(2))
    assert caught.value.status == 503
    assert len(caught.value.receipt.published_ids) == 1
    assert [f.error_code for f in caught.value.receipt.failed] == ["AccessDeniedException"]


def test_publish_all_returns_the_receipt_when_everything_was_published():
    # Given / When
    receipt = _publisher(FakeEventsClient()).publish_all(_pings(2))

    # Then
    assert receipt.ok
    assert len(receipt.published_ids) == 2


def test_an_event_over_256kb_is_refused_before_anything_is_sent():
    # Given a normal event followed by one too large for PutEvents
    events = [*_pings(1), *_pings(1, message="x" * MAX_BYTES_PER_CALL)]
    client = FakeEventsClient()

    # When / Then
    with pytest.raises(ValueError, match="256 KB"):
        _publisher(client).publish(events)
    assert client.calls == []


def test_batches_are_split_by_size_as_well_as_count():
    # Given five events of about 100 KB each
    client = FakeEventsClient()

    # When they are published
    receipt = _publisher(client).publish(_pings(5, message="x" * 100_000))

    # Then no call went over 256 KB (the fake would have refused it) and all were published
    assert [len(call) for call in client.calls] == [2, 2, 1]
    assert all(sum(entry_size(e) for e in call) <= MAX_BYTES_PER_CALL for call in client.calls)
    assert receipt.ok


FAILURE_CODES = [None, None, *sorted(RETRYABLE_CODES), *PERMANENT_CODES]


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(count=st.integers(0, 60), max_attempts=st.integers(1, 4), data=st.data())
def test_every_event_is_either_published_or_reported_exactly_once(count, max_attempts, data):
    # Given a bus that fails any entry of any call with any error code
    outcomes: dict[str, list[str | None]] = defaultdict(list)

    def outcome(call: int, index: int, entry: dict) -> str | None:
        code = data.draw(st.sampled_from(FAILURE_CODES), label=f"call {call} entry {index}")
        outcomes[json.loads(entry["Detail"])["data"]["ping_id"]].append(code)
        return code

    client = FakeEventsClient(outcome=outcome)
    events = _pings(count)

    # When the events are published
    receipt = EventPublisher("ecrm", client, max_attempts=max_attempts, sleep=lambda _: None).publish(events)

    # Then nothing is dropped or doubled: each event is published once or listed as failed once
    published = Counter(_ping_ids(client.accepted))
    failed = {f.event.ping_id: f.error_code for f in receipt.failed}
    assert len(receipt.published_ids) == sum(published.values())
    assert len(failed) == len(receipt.failed)
    assert published + Counter(failed.keys()) == Counter(e.ping_id for e in events)
    assert receipt.ok == (not failed)
    # and an event is sent again only after a retryable failure, at most max_attempts times
    for ping_id, codes in outcomes.items():
        assert all(code in RETRYABLE_CODES for code in codes[:-1])
        assert len(codes) <= max_attempts
        if codes[-1] is None:
            assert ping_id in published
        else:
            assert failed[ping_id] == codes[-1]
            assert codes[-1] not in RETRYABLE_CODES or len(codes) == max_attempts
