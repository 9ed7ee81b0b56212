"""Broadcast's message events as its counter reads them (stream records of message items carrying their events)
and as its consumers receive the counts (`MessageOutcomesCounted` bodies): what tests of the counter and of the
engines counting its windows (insights, campaigns) build their input from."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ecrm.broadcast.models import EVENT_OF_STATUS, MessageClicked, MessageEvent, MessageOpened, MessageOutcomesCounted
from ecrm.broadcast.outcome_counts import WindowState, events_of
from ecrm.core.events import DomainEvent, envelope_for
from ecrm.core.outbox import events_attribute
from ecrm.core.packing import pack

WINDOW_START = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
EVENT_TYPES: dict[str, type[MessageEvent]] = {
    **{cls.detail_type: cls for cls in EVENT_OF_STATUS.values()},
    "MessageOpened": MessageOpened,
    "MessageClicked": MessageClicked,
}


def message_event(
    detail_type: str,
    message_id: str,
    *,
    source: str = "campaign:cmp_1",
    step: str = "r1.A",
    channel: str | None = "email",
    customer_id: str = "cus_1",
    at: datetime = WINDOW_START,
    status: str = "sent",
    **extra: Any,
) -> MessageEvent:
    fields: dict[str, Any] = {
        "message_id": message_id,
        "customer_id": customer_id,
        "channel": channel,
        "purpose": "marketing",
        "source": source,
        "step": step,
        "status": status,
        "occurred_at": at,
        **extra,
    }
    if detail_type == "MessageDeferred":
        fields.setdefault("until", at)
    return EVENT_TYPES[detail_type].model_validate(fields)


def stream_record(
    sequence: int,
    events: Sequence[MessageEvent],
    *,
    message_id: str = "m",
    old_doc: Mapping[str, Any] | None = None,
    now: datetime = WINDOW_START,
) -> dict[str, Any]:
    """The stream record of a message item's write carrying `events`, as Lambda hands it (binary as base64)."""
    packed = events_attribute(events, correlation_id=None, now=now, packed=True)["outbox"]["B"]
    image: dict[str, Any] = {"pk": {"S": f"MSG#{message_id}"}, "sk": {"S": "MESSAGE"}}
    record: dict[str, Any] = {
        "eventID": f"e{sequence}",
        "eventName": "MODIFY",
        "dynamodb": {
            "Keys": dict(image),
            "NewImage": {**image, "outbox": {"B": base64.b64encode(packed).decode()}},
            "SequenceNumber": str(sequence),
        },
    }
    if old_doc is not None:
        doc = base64.b64encode(pack(json.dumps(old_doc).encode())).decode()
        record["dynamodb"]["OldImage"] = {**image, "doc": {"B": doc}}
    return record


def records_of(events: Iterable[MessageEvent], *, first_sequence: int = 100) -> list[dict[str, Any]]:
    """One record per event, each its own message's write, in sequence."""
    return [stream_record(first_sequence + n, [event], message_id=event.message_id) for n, event in enumerate(events)]


def counted(
    events: Iterable[MessageEvent], *, shard_id: str = "shardId-000001", window_start: datetime = WINDOW_START
) -> list[MessageOutcomesCounted]:
    """The counts broadcast's counter publishes for a window holding `events` (one record each)."""
    state = WindowState()
    state.fold(records_of(events))
    return events_of(shard_id, (window_start, window_start + timedelta(seconds=10)), state)


def bus_body(event: DomainEvent, *, event_id: str, at: datetime = WINDOW_START, correlation_id: str = "c") -> str:
    """The event as an SQS body of an EventBridge rule's delivery, with its envelope's id fixed."""
    envelope = envelope_for(event, correlation_id, at)
    envelope["metadata"]["id"] = event_id
    return json.dumps(
        {
            "id": f"eb-{event_id}",
            "source": event.source,
            "detail-type": event.detail_type,
            "time": at.isoformat(),
            "detail": envelope,
        }
    )
