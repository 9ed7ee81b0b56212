"""Broadcast's message events counted once where they are written: from the table's stream, in tumbling windows.

Every message event is published by the outbox relay from the message item that carries it (ADR 11). The counters
of other engines (insights' live view, a campaign's arms) used to count each event again, paying a marker per
event per counter to count it exactly once (two write units each, in a transaction). Here each event is counted
once, by broadcast, from the same stream records, and the counts travel as one `MessageOutcomesCounted` per window
of each shard: what a counter then pays is a marker per window, not per message (ADR 12, "Outcomes counted at the
source").

How it stays exactly once, with Lambda's tumbling windows (`TumblingWindowInSeconds` on the mapping):
- Lambda hands each invocation the window's state as the previous invocation answered it, and the records of one
  shard in order. The state holds the counts and the last sequence number folded in: a record at or before it
  (Lambda may process a record again after an error, out of order) is not counted again. A failed invocation's
  state is dropped by Lambda, so its retry folds the same records into the state before it.
- At the window's end Lambda invokes once more (`isFinalInvokeForWindow`) with the final state: its counts are
  written as one item, `OUTCOMES#<shard>` / `<window start>#<first sequence>`, on the condition that it does not
  exist, carrying its events (packed) for the relay. A retried final invocation finds the item and writes nothing.
- A window whose state outgrew Lambda's 1 MB ends early and goes on with a fresh state: the parts are separate
  items (the first sequence differs), and a fresh state first reads how far the window's parts already counted.
- A record that cannot be read is reported (a partial batch response): what was folded before it stays in the
  state, Lambda hands it again, and after its retries its position goes to the on-failure queue.

Each batch's message events are also the lake's `message_outcomes` rows (`ecrm.broadcast.lake_rows`), written
before the batch is folded: rows Firehose refuses fail the invocation, and Lambda hands the batch again with the
state before it (a row written twice is one row to its readers, who keep one per event id).

What is counted: each message event of a record's new image (the events the write added), per minute of its
`occurred_at`, channel, source and step. A campaign's or a journey's messages keep their source; a journey's
step loses its pass (`<step id>.<entry>` -> `<step id>`), so keyed passes do not multiply the rows; every other
source is counted by its kind alone. A click counts as an event, and as a message on the message's first click
(the old image had none): a campaign's report counts clicking recipients, insights counts clicks.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from botocore.exceptions import ClientError

from ecrm.broadcast.lake_rows import message_outcome_row
from ecrm.broadcast.models import (
    MessageBounced,
    MessageClicked,
    MessageComplained,
    MessageDeferred,
    MessageDelivered,
    MessageEvent,
    MessageFailed,
    MessageOpened,
    MessageOutcomesCounted,
    MessageRequested,
    MessageSent,
    MessageSuppressed,
    OutcomeCount,
)
from ecrm.core.clock import Clock
from ecrm.core.outbox import OutboxMessage, events_attribute
from ecrm.core.outbox_relay import outbox_messages
from ecrm.core.packing import unpack

COUNTED: tuple[type[MessageEvent], ...] = (
    MessageRequested,
    MessageDeferred,
    MessageSuppressed,
    MessageSent,
    MessageDelivered,
    MessageBounced,
    MessageComplained,
    MessageOpened,
    MessageClicked,
    MessageFailed,
)
COUNTED_TYPES = frozenset(event.detail_type for event in COUNTED)
EVENT_TYPES: dict[str, type[MessageEvent]] = {event.detail_type: event for event in COUNTED}
PK_PREFIX = "OUTCOMES#"
MAX_COUNTS_PER_EVENT = 500  # a few hundred bytes each: an event stays far under PutEvents' 256 KB
RETENTION = timedelta(days=2)  # the item only has to outlive its relay, as an outbox item does
SEQUENCE_DIGITS = 40  # DynamoDB stream sequence numbers are at most 40 digits: padded, they sort as numbers


def counted_source(source: str, step: str) -> tuple[str, str]:
    """(source, step) as counted: a campaign's as they are, a journey's step without its pass, others by kind."""
    kind, _, _ = source.partition(":")
    if kind == "campaign":
        return source, step
    if kind == "journey":
        step_id, dot, _pass = step.rpartition(".")
        return source, step_id if dot else step
    return kind, ""


def minute_of(at: str) -> str:
    moment = datetime.fromisoformat(at)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.replace(second=0, microsecond=0).isoformat()


def _sequence(record: Mapping[str, Any]) -> int:
    return int(record["dynamodb"]["SequenceNumber"])


def _counted_messages(record: Mapping[str, Any]) -> list[OutboxMessage]:
    """The message events a record's write added (its new image's events, when they changed)."""
    found = outbox_messages(record)
    return [m for m in (found[1] if found else []) if m.detail_type in COUNTED_TYPES]


def _clicked_before(record: Mapping[str, Any]) -> bool:
    """The message had a click before this write: its old image's doc holds `clicked_at`."""
    doc = ((record.get("dynamodb") or {}).get("OldImage") or {}).get("doc") or {}
    if "S" in doc:
        text = doc["S"]
    elif "B" in doc:
        packed = doc["B"]
        text = unpack(base64.b64decode(packed) if isinstance(packed, str) else bytes(packed)).decode()
    else:
        return False
    return "clicked_at" in json.loads(text)


@dataclass
class WindowState:
    """What a window has counted so far, as Lambda carries it from one invocation to the next (JSON)."""

    first: str | None = None  # the first record folded in (a sequence number)
    last: str | None = None  # the last record folded in, or how far earlier parts of the window counted
    floor_read: bool = False  # a fresh state read the window's earlier parts already
    counts: dict[str, list[int]] = field(default_factory=dict)  # JSON key of the row -> [events, messages]

    @classmethod
    def from_json(cls, state: Mapping[str, Any] | None) -> WindowState:
        state = state or {}
        return cls(
            first=state.get("first"),
            last=state.get("last"),
            floor_read=bool(state.get("floor_read")),
            counts={key: [int(n) for n in value] for key, value in (state.get("counts") or {}).items()},
        )

    def to_json(self) -> dict[str, Any]:
        return {"first": self.first, "last": self.last, "floor_read": self.floor_read, "counts": self.counts}

    def fold(self, records: Iterable[Mapping[str, Any]]) -> str | None:
        """Count the message events of records not folded in before, in order; the sequence number of the first
        record that could not be read (it and those after it are left for Lambda to hand again), or None."""
        for record in records:
            sequence = _sequence(record)
            if self.last is not None and sequence <= int(self.last):
                continue  # processed again by Lambda after an error: counted already
            try:
                keys = [
                    (self._key(message.detail_type, message.detail), message.detail_type)
                    for message in _counted_messages(record)
                ]
                first = not _clicked_before(record)
            except (ValueError, KeyError, TypeError, zlib.error):
                return str(sequence)
            for key, detail_type in keys:
                events, messages = self.counts.get(key, [0, 0])
                once = detail_type != MessageClicked.detail_type or first
                self.counts[key] = [events + 1, messages + int(once)]
            self.first = self.first or str(sequence)
            self.last = str(sequence)
        return None

    @staticmethod
    def _key(detail_type: str, detail: str) -> str:
        data = json.loads(detail)["data"]
        source, step = counted_source(str(data.get("source") or ""), str(data.get("step") or ""))
        row = [minute_of(data["occurred_at"]), detail_type, data.get("channel"), source, step]
        return json.dumps(row, separators=(",", ":"))

    def outcome_counts(self) -> list[OutcomeCount]:
        found = []
        for key, (events, messages) in sorted(self.counts.items()):
            minute, event, channel, source, step = json.loads(key)
            found.append(
                OutcomeCount(
                    minute=minute,
                    event=event,
                    channel=channel,
                    source=source,
                    step=step,
                    events=events,
                    messages=messages,
                )
            )
        return found


def events_of(shard_id: str, window: tuple[datetime, datetime], state: WindowState) -> list[MessageOutcomesCounted]:
    """The window's counts as events, in parts of at most `MAX_COUNTS_PER_EVENT` counts."""
    counts = state.outcome_counts()
    chunks = [counts[i : i + MAX_COUNTS_PER_EVENT] for i in range(0, len(counts), MAX_COUNTS_PER_EVENT)]
    return [
        MessageOutcomesCounted(
            shard_id=shard_id,
            window_start=window[0],
            window_end=window[1],
            first_sequence=state.first or "",
            last_sequence=state.last or "",
            part=n,
            parts=len(chunks),
            counts=chunk,
        )
        for n, chunk in enumerate(chunks, start=1)
    ]


class OutcomeCountStore:
    """The windows' count items in broadcast's table (`pk`, `sk`, TTL `expires_at`)."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name

    def counted_until(self, shard_id: str, window_start: datetime) -> str | None:
        """The last record the window's parts written so far counted, None when none was written."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :window)",
            "ExpressionAttributeValues": {
                ":pk": {"S": f"{PK_PREFIX}{shard_id}"},
                ":window": {"S": f"{window_start.isoformat()}#"},
            },
            "ProjectionExpression": "last_sequence",
            "ConsistentRead": True,
        }
        last: int | None = None
        while True:
            page = self.client.query(**request)
            for item in page.get("Items", []):
                sequence = int(item["last_sequence"]["S"])
                last = sequence if last is None else max(last, sequence)
            if "LastEvaluatedKey" not in page:
                return None if last is None else str(last)
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def write(self, events: Sequence[MessageOutcomesCounted], *, now: datetime) -> bool:
        """Write a window's counts with their events, once; False when a retried final invocation wrote them."""
        first = events[0]
        item = {
            "pk": {"S": f"{PK_PREFIX}{first.shard_id}"},
            "sk": {"S": f"{first.window_start.isoformat()}#{first.first_sequence.zfill(SEQUENCE_DIGITS)}"},
            "last_sequence": {"S": first.last_sequence},
            "expires_at": {"N": str(int((now + RETENTION).timestamp()))},
            **events_attribute(events, correlation_id=None, now=now, packed=True),
        }
        try:
            self.client.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True


def parse_window(window: Mapping[str, Any]) -> tuple[datetime, datetime]:
    return (
        datetime.fromisoformat(str(window["start"]).replace("Z", "+00:00")),
        datetime.fromisoformat(str(window["end"]).replace("Z", "+00:00")),
    )


class LakeWriter(Protocol):
    def write(self, events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Write the rows; answers those that could still not be written."""
        ...


class LakeRefused(Exception):
    """Firehose kept refusing rows: the invocation fails, and Lambda hands the batch again with the state before."""


def lake_rows(records: Iterable[Mapping[str, Any]], after: str | None) -> list[dict[str, Any]]:
    """The `message_outcomes` rows of the message events of records after `after` (one a record cannot give is
    left to the fold, which reports its record)."""
    rows = []
    for record in records:
        if after is not None and _sequence(record) <= int(after):
            continue
        try:
            messages = _counted_messages(record)
            for message in messages:
                event = EVENT_TYPES[message.detail_type].model_validate(json.loads(message.detail)["data"])
                rows.append(message_outcome_row(message.event_id, message.detail_type, event))
        except (ValueError, KeyError, TypeError, zlib.error):
            break
    return rows


class OutcomeCounter:
    """One invocation of the counting mapping: the batch's rows into the lake and its counts into the window's
    state, or the final state written."""

    def __init__(self, store: OutcomeCountStore, clock: Clock, lake: LakeWriter | None = None) -> None:
        self.store = store
        self.clock = clock
        self.lake = lake

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        shard_id, window = event.get("shardId"), event.get("window")
        if not shard_id or not window:
            raise ValueError("counting needs the mapping's tumbling window: no window or shard in the event")
        bounds = parse_window(window)
        state = WindowState.from_json(event.get("state"))
        if event.get("isFinalInvokeForWindow"):
            if state.counts:
                self.store.write(events_of(str(shard_id), bounds, state), now=self.clock.now())
            return {"state": {}}
        if state.first is None and not state.floor_read:
            # A fresh state: the window's start, or its next part after an early end (what was written stays).
            state.last = self.store.counted_until(str(shard_id), bounds[0])
            state.floor_read = True
        records = event.get("Records") or []
        if self.lake is not None:
            rows = lake_rows(records, state.last)
            if rows and self.lake.write(rows):
                raise LakeRefused(f"Firehose refused rows of {len(rows)}: the batch is handed again")
        failed = state.fold(records)
        failures = [{"itemIdentifier": failed}] if failed else []
        return {"state": state.to_json(), "batchItemFailures": failures}
