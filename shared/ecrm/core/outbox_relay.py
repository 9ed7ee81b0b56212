"""The outbox relay: publishes outbox items from a DynamoDB stream, at least once, in order per aggregate.

Lambda delivers a shard's records in order and checkpoints after a batch; a partial batch response
(`batchItemFailures` with a record's `SequenceNumber`) moves the checkpoint to just before the
lowest one reported, and Lambda retries everything from there (ADR 11). The relay therefore:

- reads the events of each outbox record (inserts and modifications of `<pk>` / `OUTBOX`, or of an
  aggregate's own item carrying its change's events in its `outbox` attribute; other records of the
  table are not its business and count as done);
- puts them on the bus in stream order, in `PutEvents` calls of up to 10 entries and 256 KB that
  never hold two events of one aggregate, so no event reaches the bus before an earlier event of its
  aggregate was accepted;
- retries entries that failed with a retryable code (throttling, internal errors) a few times;
- stops at the first call that still failed and reports the first record not wholly published.
  Everything before it is done; everything from it on is retried, so some events are published
  twice (same event id: consumers deduplicate) and none is skipped.

A record it cannot read (not an outbox item as this code writes them) raises: the batch fails as a
whole, Lambda bisects it to isolate the record and, after its retries, sends the batch's position to
the on-failure destination.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ecrm.core.outbox import OUTBOX_SORT_KEY, OutboxMessage, messages_in
from ecrm.core.publisher import MAX_BYTES_PER_CALL, MAX_ENTRIES_PER_CALL, RETRYABLE_CODES

RELAYED_EVENT_NAMES = frozenset({"INSERT", "MODIFY"})


@dataclass(frozen=True)
class _Pending:
    record_index: int
    aggregate: str
    message: OutboxMessage


@dataclass
class RelayResult:
    """What one batch did: events put on the bus, and the first record to retry (None: all done)."""

    published: list[str] = field(default_factory=list)  # event ids, in the order the bus accepted them
    failed_codes: list[str] = field(default_factory=list)
    retry_from: str | None = None  # a stream record's SequenceNumber

    def response(self) -> dict[str, Any]:
        """Lambda's partial batch response for a stream source."""
        return {"batchItemFailures": [{"itemIdentifier": self.retry_from}] if self.retry_from else []}


def outbox_messages(record: Mapping[str, Any]) -> tuple[str, list[OutboxMessage]] | None:
    """(aggregate partition key, its events) of a stream record, or None if it carries no outbox write."""
    if record.get("eventName") not in RELAYED_EVENT_NAMES:
        return None  # a REMOVE: the TTL or an erasure cleaning an outbox item that was already relayed
    stream = record.get("dynamodb") or {}
    keys = stream.get("Keys") or {}
    new_image = stream.get("NewImage")
    is_outbox_item = (keys.get("sk") or {}).get("S") == OUTBOX_SORT_KEY
    if new_image is None:
        if is_outbox_item:
            raise ValueError(f"stream record {stream.get('SequenceNumber')} has no new image: the view must include it")
        return None
    messages = messages_in(new_image)
    if not messages:
        if is_outbox_item:
            raise ValueError(f"outbox record {stream.get('SequenceNumber')} holds no events")
        return None  # an item carrying events only when its change has some: this one had none
    old = messages_in(stream.get("OldImage") or {})
    if old and [m.event_id for m in old] == [m.event_id for m in messages]:
        return None  # the events did not change (only, say, the expiry): nothing new to publish
    return keys["pk"]["S"], messages


class OutboxRelay:
    def __init__(
        self,
        bus_name: str,
        events_client: Any,
        *,
        max_attempts: int = 3,
        backoff_seconds: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
        logger: Any = None,
    ) -> None:
        self.bus_name = bus_name
        self.client = events_client
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep
        self.logger = logger

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The body of a stream-consumer Lambda: relay the batch, answer with the partial batch response."""
        result = self.relay(event.get("Records") or [])
        if self.logger is not None:
            self.logger.info(
                "outbox relayed",
                extra={
                    "records": len(event.get("Records") or []),
                    "published": len(result.published),
                    "retry_from": result.retry_from,
                    "failed_codes": sorted(set(result.failed_codes)),
                },
            )
        return result.response()

    def relay(self, records: Sequence[Mapping[str, Any]]) -> RelayResult:
        pending: list[_Pending] = []
        for index, record in enumerate(records):
            found = outbox_messages(record)
            if found is not None:
                aggregate, messages = found
                pending += [_Pending(index, aggregate, m) for m in messages]
        result = RelayResult()
        calls = _calls(pending)
        for number, call in enumerate(calls):
            failed = self._put(call, result)
            if failed:
                unpublished = failed + [p for later in calls[number + 1 :] for p in later]
                first = min(p.record_index for p in unpublished)
                result.retry_from = records[first]["dynamodb"]["SequenceNumber"]
                break
        return result

    def _put(self, call: list[_Pending], result: RelayResult) -> list[_Pending]:
        """Put one call's entries, retrying retryable failures; returns the entries that still failed."""
        pending = call
        for attempt in range(1, self.max_attempts + 1):
            response = self.client.put_events(Entries=[self._entry(p.message) for p in pending])
            retry: list[_Pending] = []
            codes: list[str] = []
            for entry, outcome in zip(pending, response["Entries"], strict=True):
                if outcome.get("EventId") and not outcome.get("ErrorCode"):
                    result.published.append(entry.message.event_id)
                else:
                    retry.append(entry)
                    codes.append(outcome.get("ErrorCode") or "Unknown")
            if not retry:
                return []
            if attempt == self.max_attempts or any(c not in RETRYABLE_CODES for c in codes):
                result.failed_codes += codes
                return retry
            pending = retry
            self.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        return pending

    def _entry(self, message: OutboxMessage) -> dict[str, Any]:
        return {
            "EventBusName": self.bus_name,
            "Source": message.source,
            "DetailType": message.detail_type,
            "Detail": message.detail,
            "Time": datetime.fromisoformat(message.time),
        }


def _calls(pending: list[_Pending]) -> list[list[_Pending]]:
    """Consecutive slices of `pending` that fit one PutEvents call and hold one event per aggregate."""
    calls: list[list[_Pending]] = []
    current: list[_Pending] = []
    aggregates: set[str] = set()
    size = 0
    for item in pending:
        full = len(current) == MAX_ENTRIES_PER_CALL or size + item.message.size > MAX_BYTES_PER_CALL
        if current and (full or item.aggregate in aggregates):
            calls.append(current)
            current, aggregates, size = [], set(), 0
        current.append(item)
        aggregates.add(item.aggregate)
        size += item.message.size
    if current:
        calls.append(current)
    return calls
