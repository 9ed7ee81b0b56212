"""In-memory doubles of the AWS clients the core adapters take, for tests without network."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from typing import Any

from ecrm.core.publisher import MAX_BYTES_PER_CALL, MAX_ENTRIES_PER_CALL

from tests.samples import load_sample

ERROR_MESSAGES = {
    "ThrottlingException": "Rate exceeded",
    "InternalFailure": "Internal service error",
    "ValidationException": "Detail is malformed",
    "AccessDeniedException": "Not authorized to put events on this bus",
}

# Decides the outcome of one entry: (call number from 0, index in the call, entry) -> error code or None.
Outcome = Callable[[int, int, Mapping[str, Any]], str | None]


def entry_size(entry: Mapping[str, Any]) -> int:
    """What PutEvents counts toward its 256 KB limit (plus 14 bytes for the Time field)."""
    return sum(len(str(entry.get(k, "")).encode()) for k in ("Source", "DetailType", "Detail")) + 14


class FakeEventsClient:
    """An EventBridge client that records every PutEvents call and answers per entry.

    `script` gives, per call, the entries that fail: `[{3: "ThrottlingException"}]` fails the
    fourth entry of the first call; later calls succeed. `outcome` decides each entry instead.
    The service's own limits are enforced, so a publisher that breaks them fails the test.
    """

    def __init__(self, script: list[dict[int, str]] | None = None, outcome: Outcome | None = None) -> None:
        self.script = script or []
        self.outcome = outcome
        self.calls: list[list[dict[str, Any]]] = []
        self.accepted: list[dict[str, Any]] = []
        self._event_ids = (f"eb-{n:06d}" for n in itertools.count())

    def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        if not 1 <= len(Entries) <= MAX_ENTRIES_PER_CALL:
            raise AssertionError(f"PutEvents takes 1 to 10 entries, got {len(Entries)}")
        if sum(entry_size(e) for e in Entries) > MAX_BYTES_PER_CALL:
            raise AssertionError("PutEvents request over 256 KB")
        call = len(self.calls)
        self.calls.append([dict(e) for e in Entries])
        results: list[dict[str, Any]] = []
        for index, entry in enumerate(Entries):
            code = self._code_for(call, index, entry)
            if code:
                results.append({"ErrorCode": code, "ErrorMessage": ERROR_MESSAGES.get(code, code)})
            else:
                self.accepted.append(dict(entry))
                results.append({"EventId": next(self._event_ids)})
        return {"FailedEntryCount": sum(1 for r in results if "ErrorCode" in r), "Entries": results}

    def _code_for(self, call: int, index: int, entry: Mapping[str, Any]) -> str | None:
        if self.outcome is not None:
            return self.outcome(call, index, entry)
        return self.script[call].get(index) if call < len(self.script) else None

    def accepted_details(self) -> list[dict[str, Any]]:
        """The `detail` (envelope) of every entry the bus accepted, in order."""
        return [json.loads(e["Detail"]) for e in self.accepted]


def bus_event_from_entry(entry: Mapping[str, Any], event_id: str) -> dict[str, Any]:
    """The EventBridge event a rule would deliver for an accepted PutEvents entry."""
    event = load_sample("eventbridge/ping_requested.json")
    event.update(
        {
            "id": event_id,
            "source": entry["Source"],
            "detail-type": entry["DetailType"],
            "detail": json.loads(entry["Detail"]),
        }
    )
    return event


class FakeStreamTable:
    """A DynamoDB client holding items in memory and recording a stream of their changes.

    `transact_write_items` and `put_item` write whole items, as the outbox does; each write is a
    stream record shaped as Lambda delivers it (NEW_AND_OLD_IMAGES, increasing sequence numbers).
    `fail_next` makes the next transaction fail as a crash would: nothing written, nothing streamed.
    """

    def __init__(self, stream_arn: str = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/1") -> None:
        self.stream_arn = stream_arn
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.records: list[dict[str, Any]] = []
        self.fail_next: Exception | None = None
        self._sequence = itertools.count(1000)

    def transact_write_items(self, *, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:
        if self.fail_next is not None:
            failure, self.fail_next = self.fail_next, None
            raise failure
        for action in TransactItems:
            self.put_item(**action["Put"])
        return {}

    def put_item(self, *, TableName: str, Item: dict[str, Any], **_: Any) -> dict[str, Any]:
        key = (Item["pk"]["S"], Item["sk"]["S"])
        old = self.items.get(key)
        self.items[key] = Item
        stream: dict[str, Any] = {
            "Keys": {"pk": Item["pk"], "sk": Item["sk"]},
            "NewImage": Item,
            "SequenceNumber": str(next(self._sequence)),
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if old is not None:
            stream["OldImage"] = old
        self.records.append(
            {
                "eventID": f"ev-{len(self.records)}",
                "eventName": "MODIFY" if old is not None else "INSERT",
                "eventSource": "aws:dynamodb",
                "eventVersion": "1.1",
                "awsRegion": "us-east-1",
                "dynamodb": stream,
                "eventSourceARN": self.stream_arn,
            }
        )
        return {}

    def stream_event(self, start: int = 0, end: int | None = None) -> dict[str, Any]:
        """A Lambda event of the stream records from `start` (index) to `end`."""
        return {"Records": self.records[start:end]}
