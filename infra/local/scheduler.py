"""EventBridge rules with a `ScheduleExpression`, fired from the local clock (moto stores them only).

The rules come from the template (`Provisioned.schedules`). `rate(...)` fires every period from the
start of the local cloud, `cron(...)` (AWS's six fields, UTC, `infra.local.schedule_expressions`)
at its matching minutes, while the rule is enabled (`DisableRule` and `EnableRule` through the API are
honoured). `LocalClock` drives `run_due`, serialized with every other firing; a clock
advanced past several occurrences of one rule fires it once, at the latest (`run_due` says why). A target is a
function (invoked with a Scheduled Event, or the target's `Input`), a state machine (an execution
started with it) or a queue; `fire` runs one rule's targets now.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from moto.events.models import events_backends

from infra.local import schedule_expressions
from infra.local.clock import LocalClock
from infra.local.runtime import FunctionRuntime
from infra.local.schedule_expressions import Cron, Rate

FREQUENT = timedelta(days=1)  # rules firing more often are caught up, not walked, when the clock jumps


def next_fire(expression: str, after: datetime, anchor: datetime | None = None) -> datetime | None:
    """A rule's first occurrence strictly after `after` (`rate` counts from `anchor`, default `after`)."""
    parsed = schedule_expressions.parse(expression)
    if isinstance(parsed, Rate):
        return parsed.next_after(anchor or after, after)
    if isinstance(parsed, Cron):
        return parsed.next_after(after)
    raise schedule_expressions.UnsupportedExpression(f"{expression}: EventBridge rules take rate() or cron()")


class LocalScheduler:
    def __init__(
        self,
        schedules: list[dict[str, Any]],
        *,
        runtime: FunctionRuntime,
        stepfunctions: Any,
        account: str,
        region: str,
        clock: LocalClock | None = None,
        sqs: Any = None,
        on_error: Callable[[str, Exception], None] | None = None,
    ) -> None:
        self.schedules = {s["name"]: s for s in schedules}
        self.runtime = runtime
        self.sfn = stepfunctions
        self.sqs = sqs
        self.account = account
        self.region = region
        # Without the cloud's clock, a clock of its own that `start` ticks (nobody advances it).
        self._own_clock = clock is None
        self.clock = clock or LocalClock(on_error=on_error)
        if self._own_clock:
            self.clock.add_source(self)
        self.on_error = on_error
        self.fired: dict[str, int] = {}
        self._frequency: dict[str, bool] = {}
        self.started = self.clock.now()
        self.due: dict[str, datetime] = {}
        for name, schedule in self.schedules.items():
            try:
                due = next_fire(schedule["expression"], self.started)
            except ValueError as exc:
                self._report(name, exc)
                continue
            if due is not None:
                self.due[name] = due

    def start(self) -> None:
        if self._own_clock:
            self.clock.start()

    def stop(self) -> None:
        if self._own_clock:
            self.clock.stop()

    # -- driven by the local clock ------------------------------------------------------------------
    def next_due(self, now: datetime) -> datetime | None:
        """The next time an advance of the clock must stop at: rules that run more often than daily are left
        out, so two days ahead are not walked an hour (or a minute) at a time, each stop running every hourly
        job; they catch up at each stop (`run_due`)."""
        return min((d for n, d in self.due.items() if self._enabled(n) and not self._frequent(n)), default=None)

    def _frequent(self, name: str) -> bool:
        if name not in self._frequency:
            expression = self.schedules[name]["expression"]
            first = next_fire(expression, self.started, anchor=self.started)
            second = next_fire(expression, first, anchor=self.started) if first else None
            self._frequency[name] = bool(first and second and second - first < FREQUENT)
        return self._frequency[name]

    def run_due(self, now: datetime) -> list[str]:
        """Fire each rule due by `now` once, at its latest occurrence not after `now`, in time order.

        A clock moved past several occurrences of one rule (a day ahead passes 1,440 of a job that runs
        every minute) fires it once, not once per occurrence: every scheduled job of the platform works
        on what is due by its event's time, so the skipped occurrences would find nothing the last one
        does not. AWS fires every occurrence, but its clock never jumps.
        """
        started: list[str] = []
        latest: list[tuple[datetime, str]] = []
        for name, due in list(self.due.items()):
            if due > now:
                continue
            occurrence: datetime | None = due
            while occurrence is not None and occurrence <= now:
                due, occurrence = (
                    occurrence,
                    next_fire(self.schedules[name]["expression"], occurrence, anchor=self.started),
                )
            if occurrence is None:
                del self.due[name]
            else:
                self.due[name] = occurrence
            if self._enabled(name):  # a disabled rule's occurrences pass without a firing, as in AWS
                latest.append((due, name))
        for due, name in sorted(latest):
            try:
                started.extend(self.fire(name, at=due))
            except Exception as exc:
                self._report(name, exc)
        return [s for s in started if s.startswith("arn:aws:states:")]

    def _enabled(self, name: str) -> bool:
        """The rule's state as EventBridge holds it now, as in AWS: `DisableRule` stops a schedule and
        `EnableRule` starts it again (the template's state until then, and for a rule moto does not hold)."""
        schedule = self.schedules[name]
        try:
            bus = events_backends[self.account][self.region].event_buses[schedule.get("bus", "default")]
            state = bus.rules[name].state
        except KeyError:
            state = schedule["state"]
        return bool(state == "ENABLED")

    # -- firing ---------------------------------------------------------------------------------------
    def fire(self, name: str, at: datetime | None = None) -> list[str]:
        """Run the rule's targets now; returns what was started (function names, execution ARNs, queues)."""
        schedule = self.schedules[name]
        when = at or self.clock.now()
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.account,
            "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [f"arn:aws:events:{self.region}:{self.account}:rule/{name}"],
            "detail": {},
        }
        started = []
        self.fired[name] = self.fired.get(name, 0) + 1
        for target in schedule["targets"]:
            payload = json.loads(target["Input"]) if "Input" in target else event
            arn = target["Arn"]
            if ":states:" in arn:
                execution = self.sfn.start_execution(
                    stateMachineArn=arn, name=f"{name[:40]}-{uuid.uuid4()}", input=json.dumps(payload)
                )
                started.append(execution["executionArn"])
            elif ":lambda:" in arn:
                function = arn.rsplit(":", 1)[1] if arn.count(":") == 6 else arn.split(":")[6]
                self.runtime.invoke(function, payload)
                started.append(function)
            elif ":sqs:" in arn and self.sqs is not None:
                url = self.sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[1])["QueueUrl"]
                self.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(payload))
                started.append(url)
            else:
                raise NotImplementedError(f"schedule target {arn} is not supported locally")
        return started

    def _report(self, name: str, exc: Exception) -> None:
        if self.on_error:
            self.on_error(f"schedule {name}", exc)
