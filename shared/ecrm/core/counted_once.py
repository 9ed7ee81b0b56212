"""Counting a queue batch's events exactly once, in one DynamoDB transaction per chunk of events.

A consumer that counts events (insights' live counters, a campaign's arm counters) must count each event once
however often it is delivered (a redelivered batch, a relay's replay), and should not pay a transaction per
event: one transaction holds each event's marker, written on the condition that it is new, and the counters'
increments summed over the chunk (one `ADD` per counter item, not per event). It lands whole or not at all:
a crash or a redelivery counts each event once. When markers already exist (events counted before), the
transaction is written again without those events; a `TransactionConflict` (another consumer adding to the
same counter) is written again a few times with jitter, then raised for the queue to retry the records.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from botocore.exceptions import ClientError

CONFLICT_ATTEMPTS = 4
MAX_ITEMS_PER_TRANSACTION = 100  # DynamoDB's limit on a TransactWriteItems

T = TypeVar("T")


def cancellation_codes(exc: ClientError) -> list[str | None]:
    """Each action's reason of a cancelled transaction, in the actions' order ([] for another error)."""
    if exc.response["Error"]["Code"] != "TransactionCanceledException":
        return []
    return [r.get("Code") for r in exc.response.get("CancellationReasons") or []]


def count_once(
    client: Any,
    events: Sequence[T],
    *,
    marker: Callable[[T], dict[str, Any]],
    increments: Callable[[Sequence[T]], list[dict[str, Any]]],
    sleep: Callable[[float], None],
) -> list[T]:
    """Write `events`' markers and their summed `increments` in one transaction; answers the events counted now.

    `marker(event)` is a conditional `Put` that fails when the event was counted before; `increments(events)`
    the `Update` actions adding what the given events count. The caller keeps a chunk within
    `MAX_ITEMS_PER_TRANSACTION` actions.
    """
    pending = list(events)
    conflicts = 0
    while pending:
        actions = [marker(e) for e in pending] + increments(pending)
        if len(actions) > MAX_ITEMS_PER_TRANSACTION:
            raise ValueError(f"{len(actions)} actions are over one transaction's {MAX_ITEMS_PER_TRANSACTION}")
        try:
            client.transact_write_items(TransactItems=actions)
            return pending
        except ClientError as exc:
            codes = cancellation_codes(exc)
            seen = {i for i, code in enumerate(codes[: len(pending)]) if code == "ConditionalCheckFailed"}
            if seen:
                pending = [e for i, e in enumerate(pending) if i not in seen]
            elif "TransactionConflict" in codes and conflicts < CONFLICT_ATTEMPTS - 1:
                conflicts += 1
                sleep(random.uniform(0.02, 0.1) * 2**conflicts)  # noqa: S311 (jitter, not a secret)
            else:
                raise
    return []
