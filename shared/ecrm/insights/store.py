"""Live counters in the insights table: minute buckets, the events counted, and the touches conversions need.

Key design (table `pk`/`sk`, TTL `expires_at`):
- `LIVE#<yyyy-mm-ddTHH>#<shard>` / `<MM>#<row>`: one minute of one row (`total`, `channel#<channel>`,
  `campaign#<id>#<variant>`, `journey#<id>#<step>`), counters `c_<name>` and revenue `r_<currency>` added
  with atomic `ADD`. A window reads every shard of every hour it touches with one Query each (a `BETWEEN` on
  the minutes), so 24 hours over 4 shards is 100 Queries, an hour 8.
- `SEEN#<event id>` / `SEEN`: an event counted, written in the same transaction as its ADDs on the condition
  that it does not exist: a redelivered or replayed event adds nothing (TTL after the longest redrive). For
  broadcast's counts of a window, the id names the window's event and minute (`<event id>#<minute>#<part>`). A
  batch's unsubscriptions share one transaction (`count_events`): their markers, then one ADD per bucket for
  the sum of the batch, so the markers are what an event costs (2 write units) and the buckets are shared.
- `TOUCH#<customer>` / `<row>`: the customer was sent a message of that campaign variant or journey step
  (`channel`, `sent_at`; `converted_at` once an order was attributed to it): what an order is attributed by.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from ecrm.core.counted_once import count_once
from ecrm.insights.logic import EventCount, Increments, bucket_key, sum_buckets

SEEN_SK = "SEEN"
# A transaction holds at most 100 actions: 25 events' markers and up to 3 buckets each.
MAX_EVENTS_PER_TRANSACTION = 25


class CountRaced(Exception):
    """Another order of the customer converted a touch first: the record is retried and reads again."""


@dataclass(frozen=True)
class Touch:
    row: str
    channel: str | None
    sent_at: datetime
    converted: bool


def _marker_cancelled(exc: ClientError) -> bool:
    """The transaction failed on its first action, the event's marker: the event was counted before."""
    if exc.response["Error"]["Code"] != "TransactionCanceledException":
        return False
    reasons = exc.response.get("CancellationReasons") or []
    return bool(reasons) and reasons[0].get("Code") == "ConditionalCheckFailed"


class InsightsStore:
    def __init__(self, client: Any, table: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.table = table
        self.sleep = sleep

    def count_events(self, events: Sequence[EventCount], shard: int, *, seen_until: int) -> list[str]:
        """Count each event once, the batch's increments summed per bucket; answers the ids counted now.

        One transaction per `MAX_EVENTS_PER_TRANSACTION` events writes each event's marker (on the condition
        that it is new) and one ADD per bucket: all of it lands or none does. When markers already exist (a
        redelivered or replayed event), the transaction is written again without those events, so a duplicate
        adds nothing and the others count. A raise leaves the chunk that failed, and those after it, uncounted.
        """
        counted: list[str] = []
        unique = list({e.event_id: e for e in events}.values())
        for start in range(0, len(unique), MAX_EVENTS_PER_TRANSACTION):
            counted += self._count_chunk(unique[start : start + MAX_EVENTS_PER_TRANSACTION], shard, seen_until)
        return counted

    def _count_chunk(self, events: list[EventCount], shard: int, seen_until: int) -> list[str]:
        def increments(chunk: Sequence[EventCount]) -> list[dict[str, Any]]:
            buckets = sum_buckets(chunk, shard).items()
            return [self._add(pk, sk, attributes, expires_at) for (pk, sk), (attributes, expires_at) in buckets]

        counted = count_once(
            self.client,
            events,
            marker=lambda e: self._marker(e.event_id, seen_until),
            increments=increments,
            sleep=self.sleep,
        )
        return [e.event_id for e in counted]

    def _marker(self, event_id: str, seen_until: int) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table,
                "Item": {
                    "pk": {"S": f"SEEN#{event_id}"},
                    "sk": {"S": SEEN_SK},
                    "expires_at": {"N": str(seen_until)},
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _add(self, pk: str, sk: str, attributes: Mapping[str, int], expires_at: int) -> dict[str, Any]:
        names = {f"#a{i}": name for i, name in enumerate(attributes)}
        values: dict[str, Any] = {f":v{i}": {"N": str(n)} for i, n in enumerate(attributes.values())}
        values[":expires"] = {"N": str(expires_at)}
        adds = ", ".join(f"#a{i} :v{i}" for i in range(len(attributes)))
        return {
            "Update": {
                "TableName": self.table,
                "Key": {"pk": {"S": pk}, "sk": {"S": sk}},
                "UpdateExpression": f"ADD {adds} SET expires_at = :expires",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    def count(
        self,
        event_id: str,
        at: datetime,
        shard: int,
        increments: Mapping[str, Increments],
        *,
        expires_at: int,
        seen_until: int,
        converted_touches: Sequence[tuple[str, str]] = (),
    ) -> bool:
        """Add each row's increments to its bucket of `at`'s minute, once per event; False when counted before.

        `converted_touches` ((customer, row) pairs) are marked converted in the same transaction, each on the
        condition that it was not yet: two orders racing to convert one touch count it once.
        """
        actions: list[dict[str, Any]] = [self._marker(event_id, seen_until)]
        for customer_id, row in converted_touches:
            actions.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": {"pk": {"S": f"TOUCH#{customer_id}"}, "sk": {"S": row}},
                        "UpdateExpression": "SET converted_at = :at",
                        "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(converted_at)",
                        "ExpressionAttributeValues": {":at": {"S": at.isoformat()}},
                    }
                }
            )
        for row, increment in increments.items():
            attributes = increment.attributes()
            if attributes:
                actions.append(self._add(*bucket_key(at, row, shard), attributes, expires_at))
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if _marker_cancelled(exc):
                return False
            codes = [r.get("Code") for r in exc.response.get("CancellationReasons") or []]
            if "ConditionalCheckFailed" in codes:
                raise CountRaced(event_id) from exc
            raise
        return True

    def touch(self, customer_id: str, row: str, channel: str | None, sent_at: datetime, *, expires_at: int) -> None:
        """Remember the customer was sent `row`'s message; a later send of the same row keeps its conversion."""
        values: dict[str, Any] = {
            ":at": {"S": sent_at.isoformat()},
            ":expires": {"N": str(expires_at)},
            ":ch": {"S": channel or ""},
        }
        self.client.update_item(
            TableName=self.table,
            Key={"pk": {"S": f"TOUCH#{customer_id}"}, "sk": {"S": row}},
            UpdateExpression="SET sent_at = :at, expires_at = :expires, #ch = :ch",
            ExpressionAttributeNames={"#ch": "channel"},
            ExpressionAttributeValues=values,
        )

    def touches(self, customer_id: str) -> list[Touch]:
        found: list[Touch] = []
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"TOUCH#{customer_id}"}},
            "ConsistentRead": True,
        }
        while True:
            page = self.client.query(**request)
            for item in page.get("Items", []):
                found.append(
                    Touch(
                        row=item["sk"]["S"],
                        channel=item.get("channel", {}).get("S") or None,
                        sent_at=datetime.fromisoformat(item["sent_at"]["S"]),
                        converted="converted_at" in item,
                    )
                )
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def forget_touches(self, customer_id: str) -> int:
        """Delete what the customer was sent (an erasure's part here); how many touches went."""
        rows = [touch.row for touch in self.touches(customer_id)]
        for start in range(0, len(rows), 25):
            pending: dict[str, Any] = {
                self.table: [
                    {"DeleteRequest": {"Key": {"pk": {"S": f"TOUCH#{customer_id}"}, "sk": {"S": row}}}}
                    for row in rows[start : start + 25]
                ]
            }
            for _ in range(8):
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
            else:
                raise RuntimeError("the touches of an erased customer were not all deleted: retried")
        return len(rows)

    def buckets(self, hour: str, shard: int, first_minute: str, last_minute: str) -> list[tuple[str, dict[str, int]]]:
        """(row, counters) of every bucket of one hour's shard between two minutes, both included."""
        found: list[tuple[str, dict[str, int]]] = []
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :last",
            "ExpressionAttributeValues": {
                ":pk": {"S": f"LIVE#{hour}#{shard}"},
                ":first": {"S": f"{first_minute}#"},
                ":last": {"S": f"{last_minute}#~"},
            },
        }
        while True:
            page = self.client.query(**request)
            for item in page.get("Items", []):
                row = item["sk"]["S"].partition("#")[2]
                counters = {
                    name: int(value["N"])
                    for name, value in item.items()
                    if name not in ("pk", "sk", "expires_at") and "N" in value
                }
                found.append((row, counters))
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
