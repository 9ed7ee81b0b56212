"""The transactional outbox: a state change's events written in the same DynamoDB transaction.

A use case that must never change state without telling other engines (a consent withdrawn, two
customers merged, an erasure) adds `Outbox.put(...)` to its `TransactWriteItems`: the state and its
events are saved together or not at all. The relay (`ecrm.core.outbox_relay`) publishes them from
the table's stream, at least once (ADR 11).

Key design, in the engine's own table: one outbox item per aggregate, `<aggregate pk>` / `OUTBOX`,
overwritten by each transaction that changes the aggregate. DynamoDB Streams keeps the records of
one item in the order of its modifications, so the relay sees each transaction's events (the item's
new image) in the order the aggregate changed; and the events of one transaction are a list in one
item, so their order is kept too. Each modification is its own stream record: a later transaction
overwriting the item loses nothing.

Each event is stored as its finished EventBridge entry: the envelope's `metadata.id` is fixed when
the state changes, so every publication of it (a relay retry, a replayed batch) carries the same
event id, which is what consumers deduplicate by. The item expires (`expires_at`, the table's TTL)
after `retention`, longer than the stream's 24 hours, so the table does not grow with history.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ecrm.core.events import DomainEvent, envelope_for
from ecrm.core.packing import pack, unpack

OUTBOX_SORT_KEY = "OUTBOX"
OUTBOX_ATTRIBUTE = "outbox"
DEFAULT_RETENTION = timedelta(days=2)
MAX_ENTRY_BYTES = 256 * 1024  # PutEvents' limit per entry (and per call)
MAX_OUTBOX_BYTES = 350 * 1024  # under DynamoDB's 400 KB item limit, with room for the keys


@dataclass(frozen=True)
class OutboxMessage:
    """One event as the relay puts it on the bus."""

    event_id: str
    source: str
    detail_type: str
    detail: str  # the envelope, JSON
    time: str  # ISO 8601, when the state changed

    @property
    def size(self) -> int:
        """What PutEvents counts toward its 256 KB limit (plus 14 bytes for the Time field)."""
        return len(self.source.encode()) + len(self.detail_type.encode()) + len(self.detail.encode()) + 14

    def as_json(self) -> dict[str, str]:
        return {
            "id": self.event_id,
            "source": self.source,
            "detail_type": self.detail_type,
            "detail": self.detail,
            "time": self.time,
        }


def message_for(event: DomainEvent, *, correlation_id: str | None, now: datetime) -> OutboxMessage:
    """The finished bus entry of `event`, with its event id fixed now."""
    envelope = envelope_for(event, correlation_id, now)
    message = OutboxMessage(
        event_id=envelope["metadata"]["id"],
        source=event.source,
        detail_type=event.detail_type,
        detail=json.dumps(envelope, separators=(",", ":")),
        time=now.isoformat(),
    )
    if message.size > MAX_ENTRY_BYTES:
        raise ValueError(f"{event.detail_type} is {message.size} bytes, over the 256 KB PutEvents entry limit")
    return message


class Outbox:
    """Builds the outbox write of a transaction, in an engine table (`pk`/`sk`, TTL `expires_at`)."""

    def __init__(self, table_name: str, *, retention: timedelta = DEFAULT_RETENTION) -> None:
        self.table = table_name
        self.retention = retention

    def put(
        self, partition_key: str, events: Sequence[DomainEvent], *, correlation_id: str | None, now: datetime
    ) -> dict[str, Any]:
        """A `TransactWriteItems` action writing `events` as the outbox of the aggregate at `partition_key`."""
        expires = int((now + self.retention).timestamp())
        return {
            "Put": {
                "TableName": self.table,
                "Item": {
                    "pk": {"S": partition_key},
                    "sk": {"S": OUTBOX_SORT_KEY},
                    **events_attribute(events, correlation_id=correlation_id, now=now),
                    "written_at": {"S": now.isoformat()},
                    "expires_at": {"N": str(expires)},
                },
            }
        }


def events_attribute(
    events: Sequence[DomainEvent], *, correlation_id: str | None, now: datetime, packed: bool = False
) -> dict[str, dict[str, Any]]:
    """`events` as the outbox attribute of an item (DynamoDB JSON), its own outbox item's or the aggregate's own.

    An aggregate held in one item can carry its transition's events in that item (ADR 11, "Events in the item
    they describe"): the change and its events are then one plain conditional write, not a transaction of two
    items, and the relay publishes them from the item's stream record as from an outbox item's. A write of
    the item without events leaves the attribute out, so the relay's filter passes it by. `packed` stores
    them compressed (a binary attribute, `ecrm.core.packing`: zlib with a dictionary of the envelope's
    vocabulary): an envelope's JSON, escaped inside the list's, shrinks to about a quarter, which keeps a
    small aggregate's item with its events under the 1 KB a write unit pays for.
    """
    if not events:
        raise ValueError("an outbox write needs at least one event")
    messages = [message_for(e, correlation_id=correlation_id, now=now) for e in events]
    body = json.dumps([m.as_json() for m in messages], separators=(",", ":"))
    if len(body.encode()) > MAX_OUTBOX_BYTES:
        raise ValueError(f"{len(messages)} events are {len(body.encode())} bytes, over one outbox item")
    if packed:
        return {OUTBOX_ATTRIBUTE: {"B": pack(body.encode())}}
    return {OUTBOX_ATTRIBUTE: {"S": body}}


def messages_in(image: Mapping[str, Any]) -> list[OutboxMessage]:
    """The events of an item's image (DynamoDB JSON, as in a stream record), packed or not; [] if it has none."""
    value = image.get(OUTBOX_ATTRIBUTE) or {}
    body = value.get("S")
    if body is None and "B" in value:  # packed: bytes from boto3, base64 in a Lambda event's JSON
        packed = value["B"]
        body = unpack(base64.b64decode(packed) if isinstance(packed, str) else bytes(packed)).decode()
    if body is None:
        return []
    return [
        OutboxMessage(
            event_id=m["id"], source=m["source"], detail_type=m["detail_type"], detail=m["detail"], time=m["time"]
        )
        for m in json.loads(body)
    ]
