"""Reading a moto table's stream and relaying its outbox, as the relay function does in the cloud."""

from __future__ import annotations

import json
from typing import Any

from ecrm.core.events import DomainEvent, registered_events
from ecrm.core.outbox_relay import OutboxRelay

from tests.unit.fakes import FakeEventsClient


class StreamTail:
    """The records a table's stream got since the last read, shaped as Lambda delivers them."""

    def __init__(self, dynamodb: Any, streams: Any, table: str) -> None:
        self.streams = streams
        self.stream_arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self.after: str | None = None

    def read(self) -> list[dict[str, Any]]:
        shard = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
        position = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": self.after}
            if self.after
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        iterator = self.streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=shard, **position)
        records = self.streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"]
        if records:
            self.after = records[-1]["dynamodb"]["SequenceNumber"]
        return [{**r, "eventSourceARN": self.stream_arn} for r in records]


def domain_events(entries: list[dict[str, Any]]) -> list[DomainEvent]:
    """The domain events of accepted PutEvents entries, as their models."""
    models = registered_events()
    return [models[(e["Source"], e["DetailType"])].model_validate(json.loads(e["Detail"])["data"]) for e in entries]


class OutboxDrain:
    """Relays whatever the stream got since the last drain to a fake bus; returns the new events."""

    def __init__(self, tail: StreamTail, bus: FakeEventsClient | None = None) -> None:
        self.tail = tail
        self.bus = bus or FakeEventsClient()
        self.relay = OutboxRelay("ecrm", self.bus, sleep=lambda _: None)

    def drain(self) -> list[DomainEvent]:
        before = len(self.bus.accepted)
        records = self.tail.read()
        result = self.relay.relay(records)
        assert result.retry_from is None, "the fake bus refused an event"
        return domain_events(self.bus.accepted[before:])
