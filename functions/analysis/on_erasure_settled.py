"""Segmentation's lake part of an erasure request: the customers' rows leave the lake, then it acknowledges.

The queue delays each request past the lake streams' buffering, so the rows written before the
request are in S3 when they are looked for (`ecrm.analysis.erasure`). It also waits for the
projection consumer's part (`on_erasure_requested`), which writes a tombstone row for each customer:
a rewrite that ran before that tombstone landed would leave it behind. Where the delay is long (the
cloud) that part is long done; where it is not (the local cloud), the wait is a few seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.analysis.erasure import AnalysisLakeErasure
from ecrm.analysis.store import AnalysisStore
from ecrm.analysis.wiring import AnalysisConfig, lake_erasure_for
from ecrm.core import aws
from ecrm.core.config import load_config
from ecrm.core.consumer import EventConsumer, ReceivedEvent
from ecrm.core.erasure import CustomerErasureRequested
from ecrm.core.errors import ServiceUnavailable
from ecrm.core.observability import Observability

config = load_config(AnalysisConfig)
obs = Observability(config)
consumer = EventConsumer(obs.logger, accepts=[CustomerErasureRequested])
PREPARED_WAIT_SECONDS = 120.0
PREPARED_POLL_SECONDS = 1.0


class ErasureNotPrepared(ServiceUnavailable):
    """The projection consumer has not finished its part: the message is retried later."""


@dataclass(frozen=True)
class Deps:
    erasure: AnalysisLakeErasure
    prepared: Callable[[str], bool]
    sleep: Callable[[float], None] = time.sleep


def default_deps() -> Deps:
    store = AnalysisStore(aws.client("dynamodb"), config.analysis_table_name)
    return Deps(lake_erasure_for(config), store.erasure_prepared)


def wait_until_prepared(deps: Deps, request_id: str, *, wait_seconds: float = PREPARED_WAIT_SECONDS) -> None:
    waited = 0.0
    while not deps.prepared(request_id):
        if waited >= wait_seconds:
            raise ErasureNotPrepared(f"erasure {request_id}: the projection consumer has not finished its part")
        deps.sleep(PREPARED_POLL_SECONDS)
        waited += PREPARED_POLL_SECONDS


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: Deps | None = None) -> dict[str, Any]:
    deps = injected or default_deps()

    def on_event(received: ReceivedEvent[Any]) -> None:
        wait_until_prepared(deps, received.data.request_id)
        erased = deps.erasure.erase(received.data)
        obs.logger.info("lake rows erased", extra={"request_id": received.data.request_id, "rows": erased})
        deps.erasure.acknowledge(received.data, correlation_id=received.metadata.correlation_id)

    return consumer(event, context, on_event)
