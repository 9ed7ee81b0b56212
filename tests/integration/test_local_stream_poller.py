"""A DynamoDB stream's poller waits for its table's writes instead of polling an idle shard.

The records still travel as Lambda delivers them: every write once, in the table's order, in
batches of at most the mapping's `BatchSize`; a read cut at GetRecords' limit is read on
without waiting for another write.

With `TumblingWindowInSeconds`, the poller runs Lambda's tumbling windows: the state carried from
one invocation of a window to the next, one final invocation per window (retried until it
succeeds), early termination over 1 MB of state. The tests stamp the records' stream time and
hand the poller a clock they move, so no test waits for a window to pass.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.dynamodb.models import table as moto_table
from moto.dynamodb.models.table import StreamShard
from moto.server import ThreadedMotoServer

from infra.local import stream_poller, stream_writes
from infra.local.clock import LocalClock
from infra.local.cloud import free_port
from infra.local.runtime import FunctionRuntime, LocalFunction
from infra.local.stream_poller import StreamPoller

REGION = "us-east-1"

RECORDING_HANDLER = """
import json, os


def handler(event, context):
    keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]
    with open(os.environ["SEEN"], "a") as seen:
        seen.write(json.dumps(keys) + "\\n")
    return {"batchItemFailures": []}
"""

# Logs each invocation (record keys, the state's keys); answers the state with the batch's keys
# added. Faults on cue: a record "stateless" is first answered without a state, a record "big"
# makes the state pass 1 MB, and with FAIL_FIRST_FINAL the first final invocation raises.
WINDOW_HANDLER = """
import json, os
from pathlib import Path


def first_time(name):
    marker = Path(os.environ["SEEN"]).with_name(name)
    if marker.exists():
        return False
    marker.touch()
    return True


def handler(event, context):
    keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]
    state = event["state"]
    logged = {**event, "Records": keys, "state": state.get("keys", []), "padded": "pad" in state}
    with open(os.environ["SEEN"], "a") as seen:
        seen.write(json.dumps(logged) + "\\n")
    if event["isFinalInvokeForWindow"] and os.environ.get("FAIL_FIRST_FINAL") and first_time("final-failed"):
        raise RuntimeError("the first final invocation fails")
    if "stateless" in keys and first_time("stateless-answered"):
        return {"batchItemFailures": []}
    answered = {"keys": state.get("keys", []) + keys}
    if "big" in keys:
        answered["pad"] = "x" * 1_000_001
    return {"state": answered, "batchItemFailures": []}
"""

WINDOW = {"start": "2020-12-09T07:04:00Z", "end": "2020-12-09T07:06:00Z"}  # a 120 s window
NEXT_WINDOW = {"start": "2020-12-09T07:06:00Z", "end": "2020-12-09T07:08:00Z"}
IN_WINDOW = datetime(2020, 12, 9, 7, 4, 5, tzinfo=UTC)
IN_NEXT_WINDOW = datetime(2020, 12, 9, 7, 6, 30, tzinfo=UTC)
AFTER_BOTH = datetime(2020, 12, 9, 7, 9, tzinfo=UTC)
Logged = list[dict[str, Any]]  # the invocations the windowed function logged, in order


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


class StreamTime:
    """The time moto stamps a stream record with (`ApproximateCreationDateTime`), set by the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.at = IN_WINDOW
        monkeypatch.setattr(moto_table, "utcnow", lambda: self.at.replace(tzinfo=None))  # moto's naive UTC


@pytest.fixture
def stream_time(monkeypatch: pytest.MonkeyPatch) -> StreamTime:
    return StreamTime(monkeypatch)


def write(dynamodb: Any, table: str, keys: list[str]) -> None:
    for key in keys:
        dynamodb.put_item(TableName=table, Item={"pk": {"S": key}})


def window_poller(
    tmp_path: Path,
    endpoint: str,
    stream_arn: str,
    *,
    batch_size: int,
    now: Callable[[], datetime],
    window_seconds: int = 120,
    environment: dict[str, str] | None = None,
) -> tuple[StreamPoller, FunctionRuntime, Path, list[str]]:
    """A poller with tumbling windows, on a function that logs each invocation; and the errors it reports."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "windowed.py").write_text(WINDOW_HANDLER)
    seen = tmp_path / "seen.jsonl"
    runtime = FunctionRuntime(endpoint, REGION, tmp_path / "logs")
    runtime.register(
        LocalFunction(
            "WindowedFn",
            "windowed",
            "arn:aws:lambda:::function:windowed",
            code,
            "windowed",
            {"SEEN": str(seen), **(environment or {})},
        )
    )
    mapping = {
        "source_arn": stream_arn,
        "function": "windowed",
        "batch_size": batch_size,
        "report_batch_item_failures": True,
        "starting_position": "TRIM_HORIZON",
        "tumbling_window_seconds": window_seconds,
    }
    errors: list[str] = []
    poller = StreamPoller(
        mapping,
        streams=client("dynamodbstreams", endpoint),
        sqs=client("sqs", endpoint),
        runtime=runtime,
        region=REGION,
        retry_delay=0,
        on_error=lambda _function, exc: errors.append(str(exc)),
        now=now,
    )
    return poller, runtime, seen, errors


def invocations(seen: Path, until: Callable[[Logged], bool]) -> Logged:
    """The invocations the windowed function logged, once `until` holds for them (20 s at most)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        logged = [json.loads(line) for line in seen.read_text().splitlines()] if seen.exists() else []
        if until(logged):
            return logged
        time.sleep(0.05)
    raise AssertionError(f"the invocations awaited did not come: {seen.read_text() if seen.exists() else ''}")


def finals(count: int) -> Callable[[Logged], bool]:
    return lambda logged: sum(i["isFinalInvokeForWindow"] for i in logged) >= count


def run_until(poller: StreamPoller, runtime: FunctionRuntime, seen: Path, until: Callable[[Logged], bool]) -> Logged:
    """Run the poller until the function logged what `until` waits for; everything it logged by its stop."""
    poller.start()
    try:
        invocations(seen, until)
    finally:
        poller.stop()
        runtime.stop()
    return invocations(seen, lambda _logged: True)


def summary(logged: Logged) -> list[tuple[list[str], list[str], bool]]:
    """Each invocation as (record keys, the keys in the state it was given, final)."""
    return [(i["Records"], i["state"], i["isFinalInvokeForWindow"]) for i in logged]


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
    monkeypatch.setattr(stream_poller, "GET_RECORDS_LIMIT", 3)
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


def test_a_window_carries_its_state_across_batches_and_ends_with_one_final_invocation(
    tmp_path: Path, endpoint: str, stream_time: StreamTime
) -> None:
    # Given five records written in one 120 s window, read in batches of two once the window has ended
    dynamodb, stream_arn = table_with_stream(endpoint, "visits")
    write(dynamodb, "visits", ["k0", "k1", "k2", "k3", "k4"])
    poller, runtime, seen, errors = window_poller(tmp_path, endpoint, stream_arn, batch_size=2, now=lambda: AFTER_BOTH)
    shard_id = client("dynamodbstreams", endpoint).describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][
        0
    ]["ShardId"]
    # When the poller runs until the window's final invocation
    logged = run_until(poller, runtime, seen, finals(1))
    # Then each batch was given the state the previous one answered, and the final one the last state
    assert summary(logged) == [
        (["k0", "k1"], [], False),
        (["k2", "k3"], ["k0", "k1"], False),
        (["k4"], ["k0", "k1", "k2", "k3"], False),
        ([], ["k0", "k1", "k2", "k3", "k4"], True),
    ]
    # And every invocation carried the aligned window, the shard and the stream
    assert all(i["window"] == WINDOW for i in logged)
    assert {i["shardId"] for i in logged} == {shard_id}
    assert {i["eventSourceARN"] for i in logged} == {stream_arn}
    assert not any(i["isWindowTerminatedEarly"] for i in logged)
    assert errors == []


def test_a_window_is_finished_before_the_next_window_s_first_record(
    tmp_path: Path, endpoint: str, stream_time: StreamTime
) -> None:
    # Given two records in one window and two in the next, all read at once (batch size 10)
    dynamodb, stream_arn = table_with_stream(endpoint, "clicks")
    write(dynamodb, "clicks", ["a", "b"])
    stream_time.at = IN_NEXT_WINDOW
    write(dynamodb, "clicks", ["c", "d"])
    poller, runtime, seen, _ = window_poller(tmp_path, endpoint, stream_arn, batch_size=10, now=lambda: AFTER_BOTH)
    # When the poller runs until both windows are final
    logged = run_until(poller, runtime, seen, finals(2))
    # Then no batch spans the two windows, and the first ends before the second's first record
    assert summary(logged) == [
        (["a", "b"], [], False),
        ([], ["a", "b"], True),
        (["c", "d"], [], False),
        ([], ["c", "d"], True),
    ]
    assert [i["window"] for i in logged] == [WINDOW, WINDOW, NEXT_WINDOW, NEXT_WINDOW]


def test_a_failed_final_invocation_is_retried_before_any_later_record(
    tmp_path: Path, endpoint: str, stream_time: StreamTime
) -> None:
    # Given a record in each of two windows, the second still open, and a function whose first final invocation fails
    dynamodb, stream_arn = table_with_stream(endpoint, "carts")
    write(dynamodb, "carts", ["a"])
    stream_time.at = IN_NEXT_WINDOW
    write(dynamodb, "carts", ["b"])
    poller, runtime, seen, errors = window_poller(
        tmp_path,
        endpoint,
        stream_arn,
        batch_size=10,
        now=lambda: IN_NEXT_WINDOW,
        environment={"FAIL_FIRST_FINAL": "1"},
    )
    # When the poller runs until the second window's record arrives
    logged = run_until(poller, runtime, seen, lambda logged: any(i["Records"] == ["b"] for i in logged))
    # Then the final invocation was retried with the same state, and the next record waited for it
    assert summary(logged) == [
        (["a"], [], False),
        ([], ["a"], True),
        ([], ["a"], True),
        (["b"], [], False),
    ]
    assert len(errors) == 1
    assert "the first final invocation fails" in errors[0]


def test_a_response_without_state_is_retried_with_the_state_before_it(
    tmp_path: Path, endpoint: str, stream_time: StreamTime
) -> None:
    # Given two records of one window in batches of one, the second first answered without a state
    dynamodb, stream_arn = table_with_stream(endpoint, "views")
    write(dynamodb, "views", ["a", "stateless"])
    poller, runtime, seen, errors = window_poller(tmp_path, endpoint, stream_arn, batch_size=1, now=lambda: AFTER_BOTH)
    # When the poller runs until the window is final
    logged = run_until(poller, runtime, seen, finals(1))
    # Then the stateless answer failed the batch, and its retry was given the state from before it
    assert summary(logged) == [
        (["a"], [], False),
        (["stateless"], ["a"], False),
        (["stateless"], ["a"], False),
        ([], ["a", "stateless"], True),
    ]
    assert len(errors) == 1
    assert "InvalidWindowState" in errors[0]


def test_moving_the_clock_past_the_window_s_end_finishes_it_without_a_new_record(tmp_path: Path, endpoint: str) -> None:
    # Given a record in a 15-minute window, stamped with real time, and a poller on the local clock
    clock = LocalClock()
    dynamodb, stream_arn = table_with_stream(endpoint, "logins")
    write(dynamodb, "logins", ["a"])
    poller, runtime, seen, _ = window_poller(
        tmp_path, endpoint, stream_arn, batch_size=10, now=clock.now, window_seconds=900
    )
    poller.start()
    try:
        invocations(seen, lambda logged: len(logged) >= 1)
        # When the clock moves past the window's end, with no other write
        clock.advance(timedelta(minutes=15))
        logged = invocations(seen, finals(1))
    finally:
        poller.stop()
        runtime.stop()
    # Then the window's final invocation came with its last state
    assert summary(logged) == [(["a"], [], False), ([], ["a"], True)]
    window = logged[0]["window"]
    assert window["start"].endswith("Z")
    assert datetime.fromisoformat(window["start"]).timestamp() % 900 == 0
    assert datetime.fromisoformat(window["end"]) - datetime.fromisoformat(window["start"]) == timedelta(minutes=15)


def test_a_state_over_1_mb_ends_the_window_early_and_its_next_records_start_afresh(
    tmp_path: Path, endpoint: str, stream_time: StreamTime
) -> None:
    # Given three records of one window in batches of one, the second making the state pass 1 MB
    dynamodb, stream_arn = table_with_stream(endpoint, "baskets")
    write(dynamodb, "baskets", ["a", "big", "c"])
    poller, runtime, seen, _ = window_poller(tmp_path, endpoint, stream_arn, batch_size=1, now=lambda: AFTER_BOTH)
    # When the poller runs until the window is final twice
    logged = run_until(poller, runtime, seen, finals(2))
    # Then the big state ended the window early, and the window's next record started from {}
    early_and_padded = [(i["isWindowTerminatedEarly"], i["padded"]) for i in logged]
    assert summary(logged) == [
        (["a"], [], False),
        (["big"], ["a"], False),
        ([], ["a", "big"], True),
        (["c"], [], False),
        ([], ["c"], True),
    ]
    assert early_and_padded == [(False, False), (False, False), (True, True), (False, False), (False, False)]
    assert all(i["window"] == WINDOW for i in logged)
