"""What every step of the tour (and every e2e test) works with: the running cloud and its API.

A step's function gets the running cloud's `TourContext` and returns one line saying what it
showed, or raises `AssertionError` with a readable reason when something is wrong. Each engine's
module of this package lists its steps in `STEPS`; `ecrm_ops.tour.run` assembles them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ecrm_ops.http import HttpResult, http
from ecrm_ops.local_cloud import issue_token

__all__ = ["HttpResult", "Step", "TourContext", "expect", "http", "queue_drained", "wait_for"]


@dataclass
class TourContext:
    cloud: Any
    tokens: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return str(self.cloud.state.api_url)

    def token(self, *, group: str | None = None, customer_id: str | None = None) -> str:
        key = f"group:{group}" if group else f"customer:{customer_id}"
        if key not in self.tokens:
            self.tokens[key] = issue_token(group=group, customer_id=customer_id, state=self.cloud.state)
        return self.tokens[key]

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> HttpResult:
        return http(method, self.api + path, token=token, body=body, headers=headers)


@dataclass(frozen=True)
class Step:
    """One step of the tour: its title, and the function that runs it (it returns what it showed)."""

    title: str
    run: Callable[[TourContext], str]


def wait_for(
    condition: Callable[[], Any],
    *,
    timeout: float = 20,
    interval: float = 0.25,
    what: str = "",
    state: Callable[[], str] | None = None,
) -> Any:
    """Poll `condition` until it holds; a timeout says what was awaited and, with `state`, where things stood."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            where = f" ({state()})" if state is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or condition.__name__}{where}")
        time.sleep(interval)


def expect(result: HttpResult, status: int, what: str) -> HttpResult:
    if result.status != status:
        raise AssertionError(f"{what}: expected HTTP {status}, got {result.status}: {result.body}")
    return result


def queue_drained(ctx: TourContext, logical_prefix: str) -> bool:
    """Whether the queue whose logical id starts with `logical_prefix` holds nothing, visible or in flight."""
    sqs = ctx.cloud.client("sqs")
    queue = ctx.cloud.physical_id("AWS::SQS::Queue", logical_prefix)
    counts = sqs.get_queue_attributes(
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return all(v == "0" for v in counts.values())
