"""This engine's part of an erasure request: the customer's touches (what they were sent, for attributing their
orders) deleted, then acknowledged.

The acknowledgement is published after the work (a lost one is sent again by the queue's retry of the
request, which finds nothing left to change).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core import aws
from ecrm.core.config import load_config
from ecrm.core.consumer import EventConsumer, ReceivedEvent
from ecrm.core.erasure import CustomerErasureRequested
from ecrm.core.observability import Observability
from ecrm.core.publisher import EventPublisher
from ecrm.insights.erasure import InsightsErasure
from ecrm.insights.wiring import InsightsErasureConfig, erasure_for

config = load_config(InsightsErasureConfig)
obs = Observability(config)
consumer = EventConsumer(obs.logger, accepts=[CustomerErasureRequested])


@cache
def publisher() -> EventPublisher:
    return EventPublisher(config.event_bus_name, aws.client("events"))


@obs.entrypoint()
def handler(
    event: dict[str, Any],
    context: LambdaContext,
    injected: tuple[InsightsErasure, EventPublisher] | None = None,
) -> dict[str, Any]:
    erasure, acks = injected or (erasure_for(config), publisher())

    def on_event(received: ReceivedEvent[Any]) -> None:
        ack = erasure.erase(received.data)
        acks.publish_all([ack], correlation_id=received.metadata.correlation_id)

    return consumer(event, context, on_event)
