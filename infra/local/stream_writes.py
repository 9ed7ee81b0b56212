"""Wake a DynamoDB stream's poller when its table writes, instead of polling an idle shard.

Lambda reads a stream's shards four times a second; locally, four outbox relays polling every
0.2 s cost an idle cloud about 4% of a core (each poll a signed `GetRecords` through the moto
server, which also keeps every shard iterator it ever issued). moto's stream lives in this
process, so a poller can instead wait until its table's shard takes a record: `StreamShard.add`
(moto's, kept and called first) counts the records of each table and wakes the waiters.

Nothing a function sees changes: the poller still reads the shard through `GetRecords`, in
order, from its checkpoint; it only stops asking while nothing can have arrived.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.dynamodb.models.table import StreamShard

_moto_add = StreamShard.add
_changed = threading.Condition()
_writes: dict[str, int] = {}  # table ARN -> records its shard has taken since install
_installed = False


def add(self: StreamShard, old: Any, new: Any) -> None:
    """`StreamShard.add`, then a wake-up for whoever waits on the table's stream."""
    _moto_add(self, old, new)
    with _changed:
        arn = self.table.table_arn
        _writes[arn] = _writes.get(arn, 0) + 1
        _changed.notify_all()


def install() -> None:
    global _installed
    if not _installed:
        StreamShard.add = add  # type: ignore[method-assign]
        _installed = True


def installed() -> bool:
    return _installed


def table_arn(stream_arn: str) -> str:
    """The table of a stream ARN (`arn:...:table/NAME/stream/LABEL`)."""
    return stream_arn.split("/stream/", 1)[0]


def writes(table: str) -> int:
    """How many records the table's stream has taken: a mark to wait from."""
    with _changed:
        return _writes.get(table, 0)


def wait_for_write(table: str, since: int, timeout: float, stop: threading.Event | None = None) -> bool:
    """Wait until the table's stream took a record after the mark `since` (or `timeout`, or `stop`)."""
    with _changed:
        return _changed.wait_for(
            lambda: _writes.get(table, 0) != since or (stop is not None and stop.is_set()), timeout=timeout
        )


def wake_all() -> None:
    """Wake every waiter to look at its stop event (a poller being stopped)."""
    with _changed:
        _changed.notify_all()
