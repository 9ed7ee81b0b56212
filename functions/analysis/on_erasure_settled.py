"""Segmentation's lake part of an erasure request: the customers' rows leave the lake, then it acknowledges.

The queue delays each request past the lake streams' buffering, so the rows written before the
request, and the tombstone the projection consumer wrote, are in S3 when they are looked for
(`ecrm.analysis.erasure`).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.analysis.erasure import AnalysisLakeErasure
from ecrm.analysis.wiring import AnalysisConfig, lake_erasure_for
from ecrm.core.config import load_config
from ecrm.core.consumer import EventConsumer, ReceivedEvent
from ecrm.core.observability import Observability
from ecrm.customers.models import CustomerErasureRequested

config = load_config(AnalysisConfig)
obs = Observability(config)
consumer = EventConsumer(obs.logger, accepts=[CustomerErasureRequested])


@obs.entrypoint()
def handler(
    event: dict[str, Any], context: LambdaContext, injected: AnalysisLakeErasure | None = None
) -> dict[str, Any]:
    erasure = injected or lake_erasure_for(config)

    def on_event(received: ReceivedEvent[Any]) -> None:
        erased = erasure.erase(received.data)
        obs.logger.info("lake rows erased", extra={"request_id": received.data.request_id, "rows": erased})
        erasure.acknowledge(received.data, correlation_id=received.metadata.correlation_id)

    return consumer(event, context, on_event)
