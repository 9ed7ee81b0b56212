"""The counter of broadcast's message events on moto: real messages written by the engine, their table's real
stream records, the handler invoked as Lambda's tumbling windows invoke it. Each window's counts are written
once, with their events for the relay, however often Lambda retries (the fault tests); each event is a row of
the lake's `message_outcomes`, and rows Firehose refuses fail the invocation before anything is counted."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from ecrm.broadcast.models import MessageOutcomesCounted
from ecrm.broadcast.outcome_counts import LakeRefused, OutcomeCounter, OutcomeCountStore
from ecrm.core.outbox_relay import outbox_messages
from moto.core import DEFAULT_ACCOUNT_ID as ACCOUNT
from moto.dynamodb.models import dynamodb_backends

from functions.broadcast import count_outcomes
from tests.integration.broadcast.conftest import REGION, TABLE, Engine

SHARD = "shardId-00000001"


class MemoryLake:
    """The lake writer's interface: rows kept; `refuse` makes every write fail, as Firehose refusing would."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.refuse = False

    def write(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.refuse:
            return list(events)
        self.rows.extend(events)
        return []


def message_records(engine: Engine) -> list[dict[str, Any]]:
    """The stream's records of message items carrying events, in order (what the mapping's filters pass), from
    moto's shard of the table (its records as its GetRecords answers them)."""
    table = dynamodb_backends[ACCOUNT][REGION].tables[TABLE]
    records = [record.to_json() for record in table.stream_shard.items]
    return [r for r in records if r["dynamodb"]["Keys"]["pk"]["S"].startswith("MSG#") and outbox_messages(r)]


def invoke(counter: OutcomeCounter, records: list[dict[str, Any]], state: dict[str, Any], **flags: Any) -> Any:
    start = counter.clock.now().replace(second=0, microsecond=0)
    window = {"start": f"{start:%Y-%m-%dT%H:%M:%S}Z", "end": f"{start + timedelta(seconds=10):%Y-%m-%dT%H:%M:%S}Z"}
    event = {"Records": records, "window": window, "state": state, "shardId": SHARD, **flags}
    return count_outcomes.handler(event, _Context(), counter)


class _Context:
    function_name = "count-outcomes"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:count-outcomes"
    aws_request_id = "req-1"


def windows_written(engine: Engine) -> list[MessageOutcomesCounted]:
    items = engine.client.scan(TableName=TABLE)["Items"]
    found = []
    for item in items:
        if item["pk"]["S"].startswith("OUTCOMES#"):
            keys = {"pk": item["pk"], "sk": item["sk"]}
            record = {"eventName": "INSERT", "dynamodb": {"Keys": keys, "NewImage": item, "SequenceNumber": "1"}}
            _, messages = outbox_messages(record) or ("", [])
            found += [MessageOutcomesCounted.model_validate(json.loads(m.detail)["data"]) for m in messages]
    return found


def test_a_window_of_real_messages_is_written_once_however_often_lambda_retries(engine: Engine) -> None:
    # Given three marketing emails requested and sent through the engine, one also delivered
    ids = [engine.request(f"c{n}", key=f"k{n}") for n in range(3)]
    engine.run(*ids)
    counter = OutcomeCounter(OutcomeCountStore(engine.client, TABLE), engine.clock)
    records = message_records(engine)

    # When Lambda folds them in two batches, the second retried after a failure (the state before it again)
    first = invoke(counter, records[:4], {})
    retried_batch = records[4:]
    invoke(counter, retried_batch, first["state"])  # its answer lost: Lambda keeps the state before it
    second = invoke(counter, retried_batch, first["state"])
    # and hands the first records once more (processed again after an error)
    again = invoke(counter, records[:2], second["state"])
    # Then the window ends: the final invocation writes the counts, and a retried final invocation nothing more
    final = invoke(counter, [], again["state"], isFinalInvokeForWindow=True)
    assert final == {"state": {}}
    invoke(counter, [], again["state"], isFinalInvokeForWindow=True)

    (window,) = windows_written(engine)
    totals: dict[str, int] = {}
    for count in window.counts:
        totals[count.event] = totals.get(count.event, 0) + count.events
    published = [e.detail_type for e in engine.store.published]
    assert totals == {t: published.count(t) for t in set(published)}
    assert totals["MessageRequested"] == 3
    assert (window.shard_id, window.first_sequence) == (SHARD, records[0]["dynamodb"]["SequenceNumber"])


def test_a_window_ended_early_goes_on_after_what_its_first_part_counted(engine: Engine) -> None:
    ids = [engine.request(f"c{n}", key=f"k{n}") for n in range(2)]
    engine.run(*ids)
    counter = OutcomeCounter(OutcomeCountStore(engine.client, TABLE), engine.clock)
    records = message_records(engine)
    # Given a first part of the window folded and written (its state outgrew Lambda's limit)
    part = invoke(counter, records[:3], {})
    invoke(counter, [], part["state"], isFinalInvokeForWindow=True, isWindowTerminatedEarly=True)
    # When the window goes on with a fresh state, handed the last record of that part again
    rest = invoke(counter, records[2:], {})
    invoke(counter, [], rest["state"], isFinalInvokeForWindow=True)
    # Then the two parts add up to each event once
    written = windows_written(engine)
    assert len(written) == 2
    total = sum(c.events for w in written for c in w.counts)
    assert total == len(engine.store.published)


def test_an_invocation_without_a_window_is_refused(engine: Engine) -> None:
    counter = OutcomeCounter(OutcomeCountStore(engine.client, TABLE), engine.clock)
    with pytest.raises(ValueError, match="tumbling window"):
        counter.handle({"Records": []})


def test_each_event_is_a_lake_row_and_rows_refused_fail_the_batch_before_it_counts(engine: Engine) -> None:
    ids = [engine.request(f"c{n}", key=f"k{n}") for n in range(2)]
    engine.run(*ids)
    lake = MemoryLake()
    counter = OutcomeCounter(OutcomeCountStore(engine.client, TABLE), engine.clock, lake)
    records = message_records(engine)
    # Given Firehose refusing rows: the invocation fails (Lambda keeps the state before it)
    lake.refuse = True
    with pytest.raises(LakeRefused):
        counter.handle(_window_event(counter, records, {}))
    # When Firehose is back, the batch is handed again, then the window ends
    lake.refuse = False
    state = counter.handle(_window_event(counter, records, {}))["state"]
    counter.handle(_window_event(counter, [], state) | {"isFinalInvokeForWindow": True})
    # Then each published event is one row, sliceable by source and step, with ids and codes only
    published = engine.store.published
    assert sorted(r["event_type"] for r in lake.rows) == sorted(e.detail_type for e in published)
    row = next(r for r in lake.rows if r["event_type"] == "MessageRequested")
    assert (row["source_kind"], row["status"], row["customer_id"]) == ("api", "requested", "c0")
    assert not {"address", "content", "data"} & set(row)
    # And the window counted each event once
    (window,) = windows_written(engine)
    assert sum(c.events for c in window.counts) == len(published)


def _window_event(counter: OutcomeCounter, records: list[dict[str, Any]], state: dict[str, Any]) -> dict[str, Any]:
    start = counter.clock.now().replace(second=0, microsecond=0)
    window = {"start": f"{start:%Y-%m-%dT%H:%M:%S}Z", "end": f"{start + timedelta(seconds=10):%Y-%m-%dT%H:%M:%S}Z"}
    return {"Records": records, "window": window, "state": state, "shardId": SHARD}
