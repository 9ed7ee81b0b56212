"""A batch's events summed per bucket, and its transaction written again after a conflict (no AWS)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from ecrm.core.counted_once import CONFLICT_ATTEMPTS
from ecrm.insights.logic import EventCount, Increments, sum_buckets
from ecrm.insights.store import InsightsStore

AT = datetime(2026, 11, 23, 10, 0, 30, tzinfo=UTC)


def sent(event_id: str, *rows: str, at: datetime = AT, expires_at: int = 100) -> EventCount:
    return EventCount(event_id, at, {row: Increments({"sent": 1}) for row in rows}, expires_at)


def test_a_batch_adds_each_bucket_once_with_the_sum_of_its_events() -> None:
    events = [
        sent("e1", "total", "channel#email"),
        sent("e2", "total", "channel#sms", expires_at=200),
        sent("e3", "total", at=AT.replace(minute=1)),
    ]
    assert sum_buckets(events, shard=2) == {
        ("LIVE#2026-11-23T10#2", "00#total"): ({"c_sent": 2}, 200),
        ("LIVE#2026-11-23T10#2", "00#channel#email"): ({"c_sent": 1}, 100),
        ("LIVE#2026-11-23T10#2", "00#channel#sms"): ({"c_sent": 1}, 200),
        ("LIVE#2026-11-23T10#2", "01#total"): ({"c_sent": 1}, 100),
    }


class ConflictingClient:
    """DynamoDB cancelling the first `conflicts` transactions because another writer held a bucket."""

    def __init__(self, conflicts: int) -> None:
        self.conflicts = conflicts
        self.written: list[list[dict[str, Any]]] = []

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:
        if self.conflicts:
            self.conflicts -= 1
            reasons = [{"Code": "None"}] * (len(TransactItems) - 1) + [{"Code": "TransactionConflict"}]
            error = {"Error": {"Code": "TransactionCanceledException"}, "CancellationReasons": reasons}
            raise ClientError(error, "TransactWriteItems")  # type: ignore[arg-type]
        self.written.append(TransactItems)
        return {}


def test_a_conflict_on_a_bucket_is_written_again_and_a_lasting_one_raises() -> None:
    # Given a conflict once, then a conflict on every attempt
    client = ConflictingClient(conflicts=1)
    store = InsightsStore(client, "t", sleep=lambda seconds: None)
    # When a batch is counted, it is written on the second attempt
    assert store.count_events([sent("e1", "total"), sent("e1", "total")], shard=0, seen_until=1) == ["e1"]
    assert len(client.written) == 1
    # And a conflict that lasts is raised (the records are retried by the queue)
    lasting = InsightsStore(ConflictingClient(conflicts=CONFLICT_ATTEMPTS), "t", sleep=lambda seconds: None)
    with pytest.raises(ClientError):
        lasting.count_events([sent("e2", "total")], shard=0, seen_until=1)
