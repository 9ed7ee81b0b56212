"""Schedules, fired by a local clock (moto stores EventBridge schedules but never fires them).

`rate(...)` fires every period from the start of the local cloud; `cron(...)` (AWS's six fields)
fires at the matching minutes. A target is a function (invoked with a Scheduled Event) or a state
machine (an execution started with the event as input); `fire` runs one rule's targets now.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter

from infra.local.runtime import FunctionRuntime

RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")


def next_fire(expression: str, after: datetime) -> datetime:
    rate = RATE.match(expression)
    if rate:
        amount, unit = int(rate.group(1)), rate.group(2).rstrip("s")
        return after + timedelta(**{unit + "s": amount})
    cron = re.match(r"^cron\((.+)\)$", expression)
    if not cron:
        raise ValueError(f"unsupported schedule expression {expression!r}")
    minute, hour, day, month, weekday, *_year = cron.group(1).split()
    day = "*" if day == "?" else day
    weekday = "*" if weekday == "?" else weekday
    return croniter(f"{minute} {hour} {day} {month} {weekday}", after).get_next(datetime)


class LocalScheduler:
    def __init__(
        self,
        schedules: list[dict[str, Any]],
        *,
        runtime: FunctionRuntime,
        stepfunctions: Any,
        account: str,
        region: str,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_error: Callable[[str, Exception], None] | None = None,
    ) -> None:
        self.schedules = {s["name"]: s for s in schedules}
        self.runtime = runtime
        self.sfn = stepfunctions
        self.account = account
        self.region = region
        self.now = now
        self.on_error = on_error
        self.fired: dict[str, int] = {}
        start = now()
        self.due = {name: next_fire(s["expression"], start) for name, s in self.schedules.items()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="scheduler")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(1):
            current = self.now()
            for name, due in list(self.due.items()):
                if current >= due and self.schedules[name]["state"] == "ENABLED":
                    self.due[name] = next_fire(self.schedules[name]["expression"], current)
                    try:
                        self.fire(name)
                    except Exception as exc:
                        if self.on_error:
                            self.on_error(name, exc)

    def fire(self, name: str) -> list[str]:
        """Run the rule's targets now; returns what was started (function names, execution ARNs)."""
        schedule = self.schedules[name]
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.account,
            "time": self.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
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
            else:
                raise NotImplementedError(f"schedule target {arn} is not supported locally")
        return started
