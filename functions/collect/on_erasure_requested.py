"""The collection engine's part of an erasure request: the customer's rows leave the lake, then it acknowledges.

The queue delays each request past the lake stream's buffering, so calls accepted before the
request are in S3 when their rows are looked for (`ecrm.collect.erasure`).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.collect.erasure import CollectErasure
from ecrm.collect.wiring import CollectErasureConfig, erasure_for
from ecrm.core.config import load_config
from ecrm.core.consumer import EventConsumer, ReceivedEvent
from ecrm.core.erasure import CustomerErasureRequested
from ecrm.core.observability import Observability

config = load_config(CollectErasureConfig)
obs = Observability(config)
consumer = EventConsumer(obs.logger, accepts=[CustomerErasureRequested])


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: CollectErasure | None = None) -> dict[str, Any]:
    erasure = injected or erasure_for(config)

    def on_event(received: ReceivedEvent[Any]) -> None:
        erased = erasure.erase(received.data)
        obs.logger.info("lake rows erased", extra={"request_id": received.data.request_id, "rows": erased})
        erasure.acknowledge(received.data, correlation_id=received.metadata.correlation_id)

    return consumer(event, context, on_event)
