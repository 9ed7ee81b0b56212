"""SQS's visibility timeouts and delays on the local clock instead of real time (moto counts them in wall time).

A consumer that asks SQS to hand a record back later (`ChangeMessageVisibility`: a sender's backoff, a
claim's lease waited out) or a producer that delays a message (`DelaySeconds`) names a time; in AWS it
comes when that time has passed. Locally, time passes by moving the clock: so moto's `Message` counts its
`visible_at` and `delayed_until` on the local clock once `install` plugs it in, and `advance` past a
record's timeout makes it receivable at once, as a test of a wait expects (`tests/integration/test_local_sqs_clock.py`).

Patched on moto's `Message` (each guarded by that test):
- `change_visibility` and `delay` stamp the deadline from the local clock;
- `visible` and `delayed` compare it with the local clock; a record a local queue poller has received and
  not yet settled (`in_flight`) stays invisible however far the clock moves meanwhile, as in AWS, where an
  invocation ends within its function's timeout, which the queue's visibility timeout covers.

What else moto stamps (the sent and first-receive timestamps, retention, the 12-hour limit of a visibility
change counted from the send) stays in real time, as it was: a record sent before the clock moved a day is
not expired by the move, nor refused a visibility change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from moto.core.utils import unix_time_millis
from moto.sqs.models import Message

MOTO: dict[str, Any] = {name: Message.__dict__[name] for name in ("change_visibility", "delay", "visible", "delayed")}
_clock: Callable[[], datetime] | None = None
_in_flight: set[str] = set()
_lock = threading.Lock()


def install(clock: Callable[[], datetime]) -> None:
    global _clock
    _clock = clock
    Message.change_visibility = _change_visibility  # type: ignore[method-assign]
    Message.delay = _delay  # type: ignore[method-assign]
    Message.visible = property(_visible)  # type: ignore[method-assign,assignment]
    Message.delayed = property(_delayed)  # type: ignore[method-assign,assignment]


def uninstall() -> None:
    """moto's own again (the cloud stopped: a later in-process test meets wall time)."""
    global _clock
    _clock = None
    for name, original in MOTO.items():
        setattr(Message, name, original)
    with _lock:
        _in_flight.clear()


def now_ms() -> float:
    """The local clock in moto's unit (milliseconds since the epoch); wall time while nothing is installed."""
    return _clock().timestamp() * 1000 if _clock is not None else float(unix_time_millis())


@contextmanager
def in_flight(receipt_handles: Iterable[str]) -> Iterator[None]:
    """The records of a batch a queue poller is handing to its function: invisible until it has settled them."""
    handles = set(receipt_handles)
    with _lock:
        _in_flight.update(handles)
    try:
        yield
    finally:
        with _lock:
            _in_flight.difference_update(handles)


def _change_visibility(self: Message, visibility_timeout: int) -> None:
    self.visible_at = now_ms() + int(visibility_timeout) * 1000


def _delay(self: Message, delay_seconds: int) -> None:
    self.delayed_until = now_ms() + int(delay_seconds) * 1000


def _visible(self: Message) -> bool:
    if self.receipt_handle in _in_flight:
        return False
    return now_ms() > self.visible_at


def _delayed(self: Message) -> bool:
    return now_ms() < self.delayed_until
