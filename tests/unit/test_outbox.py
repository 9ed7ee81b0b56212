"""The transactional outbox and its relay, with an in-memory table stream and a fake bus (ADR 11)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from ecrm.core.outbox import Outbox, events_attribute, messages_in
from ecrm.core.outbox_relay import OutboxRelay
from ecrm.platform.models import PingRequested

from tests.unit.fakes import FakeEventsClient, FakeStreamTable

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def ping(message: str) -> PingRequested:
    return PingRequested(ping_id=f"png_{message}", message=message, requested_by="tester", requested_at=NOW)


def write(table: FakeStreamTable, aggregate: str, *messages: str, state: str = "v") -> None:
    """One transaction: the aggregate's state and its events in its outbox."""
    outbox = Outbox("t").put(aggregate, [ping(m) for m in messages], correlation_id="cor_1", now=NOW)
    table.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": "t", "Item": {"pk": {"S": aggregate}, "sk": {"S": "STATE"}, "v": {"S": state}}}},
            outbox,
        ]
    )


def messages_on_bus(bus: FakeEventsClient) -> list[str]:
    return [d["data"]["message"] for d in bus.accepted_details()]


def run_like_lambda(
    relay: OutboxRelay, table: FakeStreamTable, batch_size: int = 100, max_invocations: int = 20
) -> int:
    """Lambda's stream poller: batches from the checkpoint; a partial batch response moves it to the first failure."""
    checkpoint, invocations = 0, 0
    while checkpoint < len(table.records) and invocations < max_invocations:
        invocations += 1
        batch = table.records[checkpoint : checkpoint + batch_size]
        try:
            response = relay.handle({"Records": batch})
        except Exception:  # a failed invocation: Lambda retries the batch whole
            continue
        failures = [f["itemIdentifier"] for f in response["batchItemFailures"]]
        sequence = [r["dynamodb"]["SequenceNumber"] for r in batch]
        checkpoint += min(sequence.index(f) for f in failures) if failures else len(batch)
    return invocations


def test_an_outbox_write_holds_finished_entries_with_fixed_event_ids_and_expires() -> None:
    # Given two events of one change
    action = Outbox("customers").put("CUST#c1", [ping("a"), ping("b")], correlation_id="cor_9", now=NOW)
    item = action["Put"]["Item"]
    # Then the item is the aggregate's outbox, expiring two days after the change
    assert (item["pk"]["S"], item["sk"]["S"]) == ("CUST#c1", "OUTBOX")
    assert int(item["expires_at"]["N"]) == int(NOW.timestamp()) + 2 * 86400
    # And each event is a bus entry whose envelope carries its id, version, correlation and time
    first, second = messages_in(item)
    detail = json.loads(first.detail)
    assert detail["metadata"]["id"] == first.event_id != second.event_id
    assert detail["metadata"]["correlation_id"] == "cor_9"
    assert detail["metadata"]["occurred_at"].startswith("2026-11-23T10:00:00")
    assert (first.source, first.detail_type, detail["data"]["message"]) == ("ecrm.platform", "PingRequested", "a")


def test_an_event_the_bus_could_never_take_is_refused_when_written() -> None:
    with pytest.raises(ValueError, match="256 KB"):
        Outbox("t").put("CUST#c1", [ping("x" * 300_000)], correlation_id=None, now=NOW)


def test_the_relay_publishes_every_event_once_in_stream_order() -> None:
    # Given three changes of two customers
    table, bus = FakeStreamTable(), FakeEventsClient()
    write(table, "CUST#a", "a1", "a2")
    write(table, "CUST#b", "b1")
    write(table, "CUST#a", "a3")
    # When the relay gets the stream's batch
    response = OutboxRelay("ecrm", bus).handle(table.stream_event())
    # Then every event is on the bus once, each customer's in the order of its changes, and the batch is done
    assert response == {"batchItemFailures": []}
    published = messages_on_bus(bus)
    assert sorted(published) == ["a1", "a2", "a3", "b1"]
    assert [m for m in published if m.startswith("a")] == ["a1", "a2", "a3"]
    assert all(e["EventBusName"] == "ecrm" for e in bus.accepted)


def test_no_put_events_call_holds_two_events_of_one_customer() -> None:
    table, bus = FakeStreamTable(), FakeEventsClient()
    write(table, "CUST#a", "a1", "a2", "a3")
    write(table, "CUST#b", "b1", "b2")
    OutboxRelay("ecrm", bus).handle(table.stream_event())
    for call in bus.calls:
        customers = [json.loads(e["Detail"])["data"]["message"][0] for e in call]
        assert len(customers) == len(set(customers))
    assert [len(call) for call in bus.calls] == [1, 1, 2, 1]  # a1 | a2 | a3 b1 | b2: stream order, one per customer
    assert messages_on_bus(bus) == ["a1", "a2", "a3", "b1", "b2"]


def test_put_events_failing_on_the_first_try_is_retried_and_nothing_is_lost() -> None:
    # Given a consent withdrawal in the outbox and a bus that throttles the first call
    table = FakeStreamTable()
    write(table, "CUST#a", "withdrawn")
    bus = FakeEventsClient(script=[{0: "ThrottlingException"}])
    # When the relay runs
    response = OutboxRelay("ecrm", bus, sleep=lambda _: None).handle(table.stream_event())
    # Then the retried entry is on the bus and the batch is done
    assert response == {"batchItemFailures": []}
    assert messages_on_bus(bus) == ["withdrawn"]


def test_a_failure_stops_at_the_first_unpublished_record_and_the_retry_publishes_from_there() -> None:
    # Given four changes, and a bus that refuses b2 until the relay's own attempts are spent
    table = FakeStreamTable()
    write(table, "CUST#a", "a1")
    write(table, "CUST#b", "b1")
    write(table, "CUST#b", "b2")
    write(table, "CUST#a", "a2")
    refusals = {"b2": 3}

    def outcome(call: int, index: int, entry: Mapping[str, Any]) -> str | None:
        message = json.loads(entry["Detail"])["data"]["message"]
        if refusals.get(message, 0) > 0:
            refusals[message] -= 1
            return "InternalFailure"
        return None

    bus = FakeEventsClient(outcome=outcome)
    relay = OutboxRelay("ecrm", bus, sleep=lambda _: None)
    # When the first invocation runs
    first = relay.handle(table.stream_event())
    # Then it names b2's outbox record (the 6th: each change streams its state and its outbox) as the checkpoint
    b2_record = 5
    assert first == {"batchItemFailures": [{"itemIdentifier": table.records[b2_record]["dynamodb"]["SequenceNumber"]}]}
    assert "b2" not in messages_on_bus(bus)
    # When Lambda retries from that record
    assert relay.handle(table.stream_event(b2_record)) == {"batchItemFailures": []}
    # Then every event was published, each customer's in order; a2 may have gone twice (same event id)
    published = messages_on_bus(bus)
    assert set(published) == {"a1", "a2", "b1", "b2"}
    for customer in "ab":
        firsts = list(dict.fromkeys(m for m in published if m.startswith(customer)))
        assert firsts == [f"{customer}1", f"{customer}2"]
    ids = [d["metadata"]["id"] for d in bus.accepted_details()]
    by_message: dict[str, set[str]] = {}
    for detail in bus.accepted_details():
        by_message.setdefault(detail["data"]["message"], set()).add(detail["metadata"]["id"])
    assert all(len(i) == 1 for i in by_message.values()), "a re-published event keeps its event id"
    assert len(set(ids)) == 4


def test_a_crash_after_the_write_loses_nothing_the_stream_is_read_again() -> None:
    # Given a change committed with its event, and a relay whose first invocation dies (network, timeout)
    table = FakeStreamTable()
    write(table, "CUST#a", "withdrawn")
    calls = {"n": 0}

    class DyingBus(FakeEventsClient):
        def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            calls["n"] += 1
            if calls["n"] == 1:
                raise ConnectionError("the relay died mid-publish")
            return super().put_events(Entries=Entries)

    bus = DyingBus()
    # When Lambda retries the batch from its checkpoint
    invocations = run_like_lambda(OutboxRelay("ecrm", bus), table)
    # Then the event is on the bus
    assert invocations == 2
    assert messages_on_bus(bus) == ["withdrawn"]


def test_a_crash_before_the_commit_leaves_neither_the_state_nor_the_event() -> None:
    table = FakeStreamTable()
    table.fail_next = ConnectionError("died before the commit")
    with pytest.raises(ConnectionError):
        write(table, "CUST#a", "withdrawn")
    assert table.items == {}
    assert table.records == []


def test_duplicate_delivery_of_a_batch_publishes_the_same_event_ids() -> None:
    table, bus = FakeStreamTable(), FakeEventsClient()
    write(table, "CUST#a", "a1")
    relay = OutboxRelay("ecrm", bus)
    relay.handle(table.stream_event())
    relay.handle(table.stream_event())
    first, again = bus.accepted_details()
    assert first["metadata"]["id"] == again["metadata"]["id"]
    assert first == again


def test_records_that_are_not_outbox_writes_are_skipped() -> None:
    # Given the state item's own record, an outbox item removed by its TTL, and one rewritten without new events
    table, bus = FakeStreamTable(), FakeEventsClient()
    write(table, "CUST#a", "a1")
    removed = dict(table.records[1], eventName="REMOVE")
    removed["dynamodb"] = {k: v for k, v in removed["dynamodb"].items() if k != "NewImage"}
    touched = json.loads(json.dumps(table.records[1]))
    touched["eventName"] = "MODIFY"
    touched["dynamodb"]["OldImage"] = touched["dynamodb"]["NewImage"]
    # When the relay gets them
    response = OutboxRelay("ecrm", bus).handle({"Records": [table.records[0], removed, touched]})
    # Then nothing is published and the batch is done
    assert response == {"batchItemFailures": []}
    assert bus.accepted == []


def test_an_outbox_record_without_its_new_image_fails_the_batch() -> None:
    table = FakeStreamTable()
    write(table, "CUST#a", "a1")
    broken = json.loads(json.dumps(table.records[1]))
    del broken["dynamodb"]["NewImage"]
    with pytest.raises(ValueError, match="new image"):
        OutboxRelay("ecrm", FakeEventsClient()).handle({"Records": [broken]})


def as_lambda_delivers(record: dict[str, Any]) -> dict[str, Any]:
    """A stream record as JSON in a Lambda event: binary attributes base64-encoded."""

    def encode(value: Any) -> Any:
        if isinstance(value, bytes):
            return base64.b64encode(value).decode()
        if isinstance(value, dict):
            return {k: encode(v) for k, v in value.items()}
        return value

    return dict(json.loads(json.dumps(encode(record))))


@pytest.mark.parametrize("packed", [False, True])
def test_events_in_the_item_they_describe_are_published_from_its_record(packed: bool) -> None:
    # Given an aggregate held in one item, written three times: with an event, without, with two more
    table, bus = FakeStreamTable(), FakeEventsClient()

    def save(version: int, *messages: str) -> None:
        item = {"pk": {"S": "MSG#m1"}, "sk": {"S": "MESSAGE"}, "version": {"N": str(version)}}
        if messages:
            item |= events_attribute([ping(m) for m in messages], correlation_id="cor_1", now=NOW, packed=packed)
        table.put_item(TableName="t", Item=item)

    save(1, "requested")
    save(2)
    save(3, "sent", "delivered")
    if packed:  # compressed, and what a write unit pays for is smaller than the JSON
        stored = table.items[("MSG#m1", "MESSAGE")]["outbox"]["B"]
        assert len(stored) < len(json.dumps([m.as_json() for m in messages_in(table.items[("MSG#m1", "MESSAGE")])]))
    # When the relay reads the item's records as Lambda delivers them (twice: a redelivered batch)
    records = [as_lambda_delivers(r) for r in table.records]
    OutboxRelay("ecrm", bus).handle({"Records": records})
    OutboxRelay("ecrm", bus).handle({"Records": records})
    # Then each event is published in the order of its changes, with one id however often it is read
    assert messages_on_bus(bus) == ["requested", "sent", "delivered"] * 2
    ids = [d["metadata"]["id"] for d in bus.accepted_details()]
    assert ids[:3] == ids[3:]


def test_an_item_write_without_events_is_not_an_error_but_an_outbox_item_without_them_is() -> None:
    table = FakeStreamTable()
    table.put_item(TableName="t", Item={"pk": {"S": "MSG#m1"}, "sk": {"S": "MESSAGE"}})
    assert OutboxRelay("ecrm", FakeEventsClient()).handle({"Records": table.records}) == {"batchItemFailures": []}
    table.put_item(TableName="t", Item={"pk": {"S": "MSG#m1"}, "sk": {"S": "OUTBOX"}})
    with pytest.raises(ValueError, match="holds no events"):
        OutboxRelay("ecrm", FakeEventsClient()).handle({"Records": table.records[1:]})
