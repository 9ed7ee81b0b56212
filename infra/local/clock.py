"""The local cloud's one clock: real time plus an offset that only moves forward.

Everything in the local cloud that waits for a time reads this clock: the EventBridge rule
schedules and the EventBridge Scheduler emulation (as *sources* of due times), Step Functions
Wait states, task timeouts and heartbeats (as *waiters*, `infra.local.stepfunctions_clock`), and
every function, through `ecrm.core.clock` (the runtime sends the offset with each invocation).

`advance(delta)` walks time forward to each due time in turn (a schedule's next occurrence, a
waiter's deadline), runs what is due there and waits for what it started to settle (a released
Wait's execution reaching its next wait or its end, a started execution likewise), then goes on:
after `advance(3 days)` a daily schedule has fired three times in order, a Wait of one day
followed by another has passed both. Between advances a ticker fires what real time makes due.
Firing is serialized, so an occurrence fires exactly once whoever reaches it first.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

DURATION = re.compile(r"(\d+)([smhd])")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """`3d`, `90m`, `1d12h`, `2h30m15s` as a timedelta (units s, m, h, d)."""
    compact = text.strip().replace(" ", "").lower()
    parts = DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"{text!r} is not a duration: use a number and a unit s, m, h or d, e.g. 3d or 1d12h")
    return sum((timedelta(**{UNITS[unit]: int(n)}) for n, unit in parts), timedelta(0))


class DueSource(Protocol):
    """Something that fires at times of the local clock (a scheduler)."""

    def next_due(self, now: datetime) -> datetime | None: ...

    def run_due(self, now: datetime) -> list[str]:
        """Fire everything due at or before `now`, in order; returns the executions started (to settle)."""
        ...


@dataclass(eq=False)
class _Waiter:
    deadline: datetime
    key: str
    wake: threading.Event = field(default_factory=threading.Event)


def _real_now() -> datetime:
    return datetime.now(UTC)


class LocalClock:
    def __init__(
        self,
        *,
        real: Callable[[], datetime] = _real_now,
        settle_timeout: float = 10.0,
        tick: float = 1.0,
        on_error: Callable[[str, Exception], None] | None = None,
    ) -> None:
        self._real = real
        self._offset = timedelta(0)
        self._changed = threading.Condition()
        self._firing = threading.RLock()  # one advance or tick at a time: each occurrence fires once
        self._waiters: set[_Waiter] = set()
        self._sources: list[DueSource] = []
        self.settle_timeout = settle_timeout
        self.tick = tick
        self.on_error = on_error
        # Whether an execution (by ARN) is still running; the local cloud asks Step Functions.
        self.execution_running: Callable[[str], bool] = lambda _arn: False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- reading ----------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self._real() + self._offset

    @property
    def offset(self) -> timedelta:
        return self._offset

    # -- moving -----------------------------------------------------------------------------------
    def advance(self, delta: timedelta) -> datetime:
        """Move forward by `delta`, firing and releasing everything due on the way, in order."""
        if delta < timedelta(0):
            raise ValueError("the local clock only moves forward")
        with self._firing:
            target = self._offset + delta
            reached: datetime | None = None
            while True:
                due = self._next_due()
                if due is None or due - self._real() > target or (reached is not None and due <= reached):
                    break  # nothing more before the target (or something due would not run: go on past it)
                reached = due
                self._set_offset(max(self._offset, min(due - self._real(), target)))
                self._run_due()
            self._set_offset(target)
            self._run_due()
        return self.now()

    def move_to(self, at: datetime) -> datetime:
        """Move forward to `at` (aware); a time in the past is refused."""
        delta = at - self.now()
        if delta < timedelta(0):
            raise ValueError(f"{at.isoformat()} is in the local clock's past ({self.now().isoformat()})")
        return self.advance(delta)

    def _set_offset(self, offset: timedelta) -> None:
        with self._changed:
            self._offset = offset
            self._changed.notify_all()

    # -- sources ----------------------------------------------------------------------------------
    def add_source(self, source: DueSource) -> None:
        self._sources.append(source)

    def start(self) -> None:
        """Fire what real time makes due, every `tick` seconds."""
        self._thread = threading.Thread(target=self._ticking, daemon=True, name="local-clock")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def ticking(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _ticking(self) -> None:
        while not self._stop.wait(self.tick):
            with self._firing:
                self._run_due(settle=False)

    def _next_due(self) -> datetime | None:
        now = self.now()
        times = []
        for source in self._sources:
            try:
                due = source.next_due(now)
            except Exception as exc:
                self._report("clock", exc)
                continue
            if due is not None:
                times.append(due)
        with self._changed:
            times.extend(w.deadline for w in self._waiters)
        return min(times, default=None)

    def _run_due(self, *, settle: bool = True) -> None:
        now = self.now()
        started: list[str] = []
        for source in self._sources:
            try:
                started.extend(source.run_due(now))
            except Exception as exc:
                self._report("clock", exc)
        with self._changed:
            released = [w for w in self._waiters if w.deadline <= now]
            for waiter in released:
                waiter.wake.set()
        if settle:
            self._settle({*started, *(w.key for w in released if w.key)}, released)

    def _settle(self, executions: set[str], released: list[_Waiter]) -> None:
        """Wait (a bounded real time) until released waiters have left and each execution waits again or ended."""
        deadline = time.monotonic() + self.settle_timeout
        with self._changed:
            while time.monotonic() < deadline:
                waiting = {w.key for w in self._waiters if w.deadline > self.now()}
                left = not any(w in self._waiters for w in released)
                if left and all(key in waiting or not self.execution_running(key) for key in executions):
                    return
                self._changed.wait(0.05)

    # -- waiting ----------------------------------------------------------------------------------
    def wait(
        self,
        seconds: float,
        *,
        key: str = "",
        done: threading.Event | None = None,
        abandoned: Callable[[], bool] = lambda: False,
    ) -> bool:
        """Block until `done` is set (True), `seconds` of local time pass or `abandoned()` (False).

        Never sleeps more than the local time left: an `advance` past the deadline wakes it at once.
        `key` names the execution waiting, so `advance` knows when it has moved on.
        """
        return self.wait_until(self.now() + timedelta(seconds=seconds), key=key, done=done, abandoned=abandoned)

    def wait_until(
        self,
        deadline: datetime,
        *,
        key: str = "",
        done: threading.Event | None = None,
        abandoned: Callable[[], bool] = lambda: False,
    ) -> bool:
        waiter = _Waiter(deadline, key)
        with self._changed:
            self._waiters.add(waiter)
            self._changed.notify_all()
        try:
            while True:
                if done is not None and done.is_set():
                    return True
                remaining = (deadline - self.now()).total_seconds()
                if remaining <= 0 or abandoned():
                    return False
                # A done event cannot be waited on together with the clock: it is polled in short slices.
                if done is not None:
                    done.wait(min(remaining, 0.05))
                else:
                    waiter.wake.wait(min(remaining, 0.5))
                    waiter.wake.clear()
        finally:
            with self._changed:
                self._waiters.discard(waiter)
                self._changed.notify_all()

    def is_waiting(self, key: str) -> bool:
        """Whether the execution `key` waits on the clock now."""
        with self._changed:
            return any(w.key == key for w in self._waiters)

    def until_waiting(self, key: str, timeout: float = 30.0) -> bool:
        """Block (at most `timeout` real seconds) until the execution `key` waits on the clock.

        For tests and the CLI: advancing before an execution reaches its Wait would leave the Wait
        counting from the later time.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while not any(w.key == key for w in self._waiters):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.5))
            return True

    def _report(self, where: str, exc: Exception) -> None:
        if self.on_error:
            self.on_error(where, exc)
