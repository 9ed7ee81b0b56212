"""Collected events (the Segment spec) onto customers: identity stitching and the timeline."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.collect.models import EVENT_FOR_TYPE
from ecrm.core.config import load_config
from ecrm.core.consumer import EventConsumer, ReceivedEvent
from ecrm.core.observability import Observability
from ecrm.customers.stitching import Stitcher
from ecrm.customers.wiring import CustomersConfig, service_for

config = load_config(CustomersConfig)
obs = Observability(config)
consumer = EventConsumer(obs.logger, accepts=EVENT_FOR_TYPE.values())


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: Stitcher | None = None) -> dict[str, Any]:
    stitcher = injected or Stitcher(service_for(config))

    def on_event(received: ReceivedEvent[Any]) -> None:
        outcome = stitcher.apply(received.data.message, correlation_id=received.metadata.correlation_id)
        if outcome.stitched:
            obs.metrics.add_metric(name="AnonymousEventsStitched", unit="Count", value=outcome.stitched)

    return consumer(event, context, on_event)
