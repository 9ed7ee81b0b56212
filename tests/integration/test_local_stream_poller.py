"""A DynamoDB stream's poller waits for its table's writes instead of polling an idle shard.

The records still travel as Lambda delivers them: every write once, in the table's order, in
batches of at most the mapping's `BatchSize`; a read cut at GetRecords' limit is read on
without waiting for another write.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.dynamodb.models.table import StreamShard
from moto.server import ThreadedMotoServer

from infra.local import pollers, stream_writes
from infra.local.cloud import free_port
from infra.local.pollers import StreamPoller
from infra.local.runtime import FunctionRuntime, LocalFunction

REGION = "us-east-1"

RECORDING_HANDLER = """
import json, os


def handler(event, context):
    keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]
    with open(os.environ["SEEN"], "a") as seen:
        seen.write(json.dumps(keys) + "\\n")
    return {"batchItemFailures": []}
"""


@pytest.fixture
def endpoint() -> Iterator[str]:
    stream_writes.install()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def table_with_stream(endpoint: str, name: str) -> tuple[Any, str]:
    dynamodb = client("dynamodb", endpoint)
    created = dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return dynamodb, created["TableDescription"]["LatestStreamArn"]


def recording_poller(
    tmp_path: Path, endpoint: str, stream_arn: str, *, batch_size: int, filters: list[Any] | None = None
) -> tuple[StreamPoller, FunctionRuntime, Path, list[str]]:
    code = tmp_path / "code"
    code.mkdir()
    (code / "recording.py").write_text(RECORDING_HANDLER)
    seen = tmp_path / "seen.jsonl"
    runtime = FunctionRuntime(endpoint, REGION, tmp_path / "logs")
    runtime.register(
        LocalFunction(
            "RecordingFn", "recording", "arn:aws:lambda:::function:recording", code, "recording", {"SEEN": str(seen)}
        )
    )
    streams = client("dynamodbstreams", endpoint)
    reads: list[str] = []
    streams.meta.events.register("before-call.dynamodbstreams.GetRecords", lambda **_: reads.append("GetRecords"))
    mapping = {
        "source_arn": stream_arn,
        "function": "recording",
        "batch_size": batch_size,
        "report_batch_item_failures": True,
        "starting_position": "TRIM_HORIZON",
        "filters": filters or [],
    }
    poller = StreamPoller(mapping, streams=streams, sqs=client("sqs", endpoint), runtime=runtime, region=REGION)
    return poller, runtime, seen, reads


def delivered(seen: Path, count: int) -> list[list[str]]:
    """The batches the function received, once `count` records have arrived (20 s at most)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        batches = [json.loads(line) for line in seen.read_text().splitlines()] if seen.exists() else []
        if sum(len(b) for b in batches) >= count:
            return batches
        time.sleep(0.05)
    raise AssertionError(f"{count} records did not arrive: {seen.read_text() if seen.exists() else ''}")


def test_moto_s_stream_shard_add_is_the_one_wrapped() -> None:
    # A moto upgrade that renames or reshapes `StreamShard.add` fails here, not as a silent poller.
    moto_add = stream_writes._moto_add
    assert list(inspect.signature(moto_add).parameters) == ["self", "old", "new"]
    assert "self.items.append(StreamRecord(" in inspect.getsource(moto_add)
    stream_writes.install()
    assert StreamShard.add is stream_writes.add


def test_a_write_wakes_the_waiter_of_its_table_only(endpoint: str) -> None:
    # Given two tables with streams, and a mark taken on the first
    dynamodb, first = table_with_stream(endpoint, "first")
    _, second = table_with_stream(endpoint, "second")
    first_table, second_table = stream_writes.table_arn(first), stream_writes.table_arn(second)
    mark = stream_writes.writes(first_table)
    # When the second table writes, nothing wakes the first's waiter
    dynamodb.put_item(TableName="second", Item={"pk": {"S": "b"}})
    assert not stream_writes.wait_for_write(first_table, mark, timeout=0.2)
    assert stream_writes.writes(second_table) >= 1
    # Then a write of the first table wakes it
    dynamodb.put_item(TableName="first", Item={"pk": {"S": "a"}})
    assert stream_writes.wait_for_write(first_table, mark, timeout=5)
    assert stream_writes.writes(first_table) == mark + 1


def test_every_write_arrives_once_in_order_in_batches_of_the_mapping_s_size(tmp_path: Path, endpoint: str) -> None:
    # Given a stream poller started on a table that is idle, with a batch size of 4
    dynamodb, stream_arn = table_with_stream(endpoint, "orders")
    poller, runtime, seen, reads = recording_poller(tmp_path, endpoint, stream_arn, batch_size=4)
    poller.start()
    try:
        # When the table takes ten writes, after the poller found the shard empty
        while not reads:
            time.sleep(0.01)
        keys = [f"k{n:02}" for n in range(10)]
        for key in keys:
            dynamodb.put_item(TableName="orders", Item={"pk": {"S": key}})
        batches = delivered(seen, len(keys))
    finally:
        poller.stop()
        runtime.stop()
    # Then each record reached the function once, in the table's order, no batch over the size
    assert [k for batch in batches for k in batch] == keys
    assert all(1 <= len(batch) <= 4 for batch in batches)
    assert poller.alive is False


def test_a_read_cut_at_the_limit_is_read_on_without_another_write(
    tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a poller whose filter drops the first records, and GetRecords cut at 3 records
    monkeypatch.setattr(pollers, "GET_RECORDS_LIMIT", 3)
    dynamodb, stream_arn = table_with_stream(endpoint, "mixed")
    for n in range(7):
        dynamodb.put_item(TableName="mixed", Item={"pk": {"S": f"skip{n}"}})
    dynamodb.put_item(TableName="mixed", Item={"pk": {"S": "keep"}})
    only_kept = [{"dynamodb": {"Keys": {"pk": {"S": ["keep"]}}}}]
    poller, runtime, seen, reads = recording_poller(tmp_path, endpoint, stream_arn, batch_size=10, filters=only_kept)
    # When the poller starts with no write to come
    poller.start()
    try:
        batches = delivered(seen, 1)
    finally:
        poller.stop()
        runtime.stop()
    # Then it read through the dropped records to the one its filter keeps
    assert batches == [["keep"]]
    assert len(reads) >= 3
