"""The lake feed: Firehose `PutRecordBatch` limits, per-record retries, and the record format."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from ecrm.collect.lake_records import collected_event_record
from ecrm.collect.models import CollectedEvent
from ecrm.collect.service import NoLake
from ecrm.collect.store import LAKE_MAX_BYTES, LAKE_MAX_RECORDS, FirehoseLakeWriter
from ecrm.collect.wiring import CollectConfig, lake_writer_for

NOW = datetime(2026, 11, 23, 10, 15, 31, tzinfo=UTC)


def event(n: int, **fields: Any) -> CollectedEvent:
    return CollectedEvent(
        message_id=f"m{n:05d}",
        type="track",
        source_id="src_01JDQ6V5XW3C9ZKDT8M0A4N2PB",
        source_name="shop-web",
        user_id="u1",
        event="Product Viewed",
        timestamp=NOW,
        received_at=NOW,
        **fields,
    )


def plain_record(e: CollectedEvent) -> dict[str, Any]:
    """A stand-in for the lake's record, for what does not depend on its columns: sizes and retries."""
    return e.model_dump(mode="json")


class FakeFirehose:
    """Records `PutRecordBatch` calls, enforces the service limits, fails records on request."""

    def __init__(self, fail: Any = None) -> None:
        self.fail = fail or (lambda call, index, data: None)
        self.calls: list[list[bytes]] = []
        self.delivered: list[bytes] = []

    def put_record_batch(self, *, DeliveryStreamName: str, Records: list[dict[str, bytes]]) -> dict[str, Any]:
        assert DeliveryStreamName == "ecrm-lake-collected-events"
        assert 1 <= len(Records) <= LAKE_MAX_RECORDS
        assert sum(len(r["Data"]) for r in Records) <= LAKE_MAX_BYTES
        call = len(self.calls)
        self.calls.append([r["Data"] for r in Records])
        responses = []
        for index, record in enumerate(Records):
            code = self.fail(call, index, record["Data"])
            if code:
                responses.append({"ErrorCode": code, "ErrorMessage": "slow down"})
            else:
                self.delivered.append(record["Data"])
                responses.append({"RecordId": f"r{call}-{index}"})
        return {"FailedPutCount": sum(1 for r in responses if "ErrorCode" in r), "RequestResponses": responses}


def writer(client: Any, **kwargs: Any) -> FirehoseLakeWriter:
    return FirehoseLakeWriter(client, "ecrm-lake-collected-events", plain_record, sleep=lambda _: None, **kwargs)


def test_records_are_json_lines_sent_500_at_a_time() -> None:
    # Given 1200 events
    client = FakeFirehose()
    # When they are written
    failed = writer(client).write([event(n) for n in range(1200)])
    # Then three calls carry them, and each record is one JSON document ending in a newline
    assert failed == []
    assert [len(c) for c in client.calls] == [500, 500, 200]
    first = client.delivered[0]
    assert first.endswith(b"\n")
    assert first.count(b"\n") == 1
    assert json.loads(first)["message_id"] == "m00000"


def test_a_call_never_carries_more_than_4_mib() -> None:
    # Given 300 events of about 30 KB each (9 MB in all)
    client = FakeFirehose()
    events = [event(n, properties={"blob": "x" * 30_000}) for n in range(300)]
    # When they are written, Then they go in calls under 4 MiB each (the fake enforces it), all delivered
    assert writer(client).write(events) == []
    assert len(client.calls) == 3
    assert len(client.delivered) == 300


def test_only_the_failed_records_are_retried() -> None:
    # Given a stream that throttles records 1 and 3 of the first call
    client = FakeFirehose(
        fail=lambda call, index, data: "ServiceUnavailableException" if call == 0 and index in (1, 3) else None
    )
    # When five events are written, Then the retry carries just those two and nothing is lost
    assert writer(client).write([event(n) for n in range(5)]) == []
    assert [len(c) for c in client.calls] == [5, 2]
    assert sorted(json.loads(d)["message_id"] for d in client.delivered) == [f"m{n:05d}" for n in range(5)]


def test_records_still_failing_after_the_attempts_are_returned() -> None:
    client = FakeFirehose(fail=lambda call, index, data: "ServiceUnavailableException" if b"m00002" in data else None)
    failed = writer(client, max_attempts=3).write([event(n) for n in range(4)])
    assert [e.message_id for e in failed] == ["m00002"]
    assert len(client.calls) == 3


def test_a_refused_call_returns_its_chunk_and_every_later_one_untried() -> None:
    class Down(FakeFirehose):
        def put_record_batch(self, **kwargs: Any) -> dict[str, Any]:
            if self.calls:
                raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no"}}, "PutRecordBatch")
            return super().put_record_batch(**kwargs)

    client = Down()
    failed = writer(client).write([event(n) for n in range(1100)])
    assert len(client.delivered) == 500
    assert [e.message_id for e in failed] == [f"m{n:05d}" for n in range(500, 1100)]


def test_without_a_stream_there_is_no_lake_writer() -> None:
    config = CollectConfig(event_bus_name="ecrm", collect_table_name="collect")
    assert isinstance(lake_writer_for(config), NoLake)
    assert NoLake().write([event(1)]) == []


def test_the_lake_gets_the_lakes_own_record_of_each_event() -> None:
    # Given the writer the function builds for a configured stream
    config = CollectConfig(
        event_bus_name="ecrm", collect_table_name="collect", lake_events_stream_name="ecrm-lake-collected-events"
    )
    built = lake_writer_for(config)
    assert isinstance(built, FirehoseLakeWriter)
    client = FakeFirehose()
    built.client = client
    # When an event is written, Then the stream receives exactly the lake's record of it, as one JSON line
    collected = event(7, properties={"price": 9.5}, context={"ip": "203.0.113.9"})
    assert built.write([collected]) == []
    assert json.loads(client.delivered[0]) == collected_event_record(collected)
