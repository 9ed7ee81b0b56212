"""Publishing domain events to the EventBridge bus.

`PutEvents` takes at most 10 entries and 256 KB per call and can fail per entry (throttling,
internal errors) while the call itself succeeds. The publisher batches, retries only the entries
that failed, and returns a receipt naming whatever still failed, so nothing is silently dropped:
`publish_all` turns a non-empty failure list into `EventsNotPublished` for callers that must not
go on without their events.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ecrm.core.clock import Clock, SystemClock
from ecrm.core.errors import ServiceUnavailable
from ecrm.core.events import DomainEvent, envelope_for

MAX_ENTRIES_PER_CALL = 10
MAX_BYTES_PER_CALL = 256 * 1024
RETRYABLE_CODES = {"ThrottlingException", "InternalFailure", "InternalException", "Unknown"}


@dataclass(frozen=True)
class FailedEntry:
    event: DomainEvent
    error_code: str
    error_message: str


@dataclass
class PublishReceipt:
    published_ids: list[str] = field(default_factory=list)
    failed: list[FailedEntry] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


class EventsNotPublished(ServiceUnavailable):
    def __init__(self, receipt: PublishReceipt) -> None:
        codes = sorted({f.error_code for f in receipt.failed})
        super().__init__(f"{len(receipt.failed)} event(s) could not be published ({', '.join(codes)})")
        self.receipt = receipt


@dataclass(frozen=True)
class _Entry:
    event: DomainEvent
    request: dict[str, Any]
    size: int


class EventPublisher:
    """Puts domain events on the bus in batches of up to 10 entries (and 256 KB)."""

    def __init__(
        self,
        bus_name: str,
        events_client: Any,
        *,
        max_attempts: int = 3,
        backoff_seconds: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
        clock: Clock | None = None,
    ) -> None:
        self.bus_name = bus_name
        self.client = events_client
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep
        self.clock = clock or SystemClock()

    def publish(self, events: Sequence[DomainEvent], *, correlation_id: str | None = None) -> PublishReceipt:
        receipt = PublishReceipt()
        pending = [self._entry(e, correlation_id) for e in events]
        for attempt in range(1, self.max_attempts + 1):
            retry: list[tuple[_Entry, str, str]] = []
            for batch in _batches(pending):
                response = self.client.put_events(Entries=[e.request for e in batch])
                for entry, result in zip(batch, response["Entries"], strict=True):
                    if "EventId" in result and not result.get("ErrorCode"):
                        receipt.published_ids.append(result["EventId"])
                    else:
                        retry.append((entry, result.get("ErrorCode", "Unknown"), result.get("ErrorMessage", "")))
            retryable = [r for r in retry if r[1] in RETRYABLE_CODES]
            permanent = [r for r in retry if r[1] not in RETRYABLE_CODES]
            receipt.failed.extend(FailedEntry(e.event, code, msg) for e, code, msg in permanent)
            if not retryable:
                return receipt
            if attempt == self.max_attempts:
                receipt.failed.extend(FailedEntry(e.event, code, msg) for e, code, msg in retryable)
                return receipt
            pending = [e for e, _, _ in retryable]
            self.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        return receipt

    def publish_all(self, events: Sequence[DomainEvent], *, correlation_id: str | None = None) -> PublishReceipt:
        receipt = self.publish(events, correlation_id=correlation_id)
        if not receipt.ok:
            raise EventsNotPublished(receipt)
        return receipt

    def _entry(self, event: DomainEvent, correlation_id: str | None) -> _Entry:
        detail = json.dumps(envelope_for(event, correlation_id, self.clock.now()), separators=(",", ":"))
        request = {
            "EventBusName": self.bus_name,
            "Source": event.source,
            "DetailType": event.detail_type,
            "Detail": detail,
        }
        # PutEvents counts Source, DetailType, Detail and EventBusName bytes toward the 256 KB cap.
        size = sum(len(str(v).encode()) for v in request.values()) + 14  # + Time
        if size > MAX_BYTES_PER_CALL:
            raise ValueError(f"{event.detail_type} is {size} bytes, over the 256 KB PutEvents entry limit")
        return _Entry(event, request, size)


def _batches(entries: list[_Entry]) -> list[list[_Entry]]:
    batches: list[list[_Entry]] = []
    current: list[_Entry] = []
    current_size = 0
    for entry in entries:
        if current and (len(current) == MAX_ENTRIES_PER_CALL or current_size + entry.size > MAX_BYTES_PER_CALL):
            batches.append(current)
            current, current_size = [], 0
        current.append(entry)
        current_size += entry.size
    if current:
        batches.append(current)
    return batches
