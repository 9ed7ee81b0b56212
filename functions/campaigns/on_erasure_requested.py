"""This engine's part of an erasure request: the customer's journey passes, campaign arms and conversion
markers deleted, their id taken out of uploaded lists and of the manifests of runs under way, then
acknowledged.

The acknowledgement is published after the work (a lost one is sent again by the queue's retry of the
request, which finds nothing left to change).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.campaigns.erasure import CampaignErasure
from ecrm.campaigns.wiring import CampaignsErasureConfig, erasure_for
from ecrm.core import aws
from ecrm.core.config import load_config
from ecrm.core.consumer import EventConsumer, ReceivedEvent
from ecrm.core.erasure import CustomerErasureRequested
from ecrm.core.observability import Observability
from ecrm.core.publisher import EventPublisher

config = load_config(CampaignsErasureConfig)
obs = Observability(config)
consumer = EventConsumer(obs.logger, accepts=[CustomerErasureRequested])


@cache
def publisher() -> EventPublisher:
    return EventPublisher(config.event_bus_name, aws.client("events"))


@obs.entrypoint()
def handler(
    event: dict[str, Any],
    context: LambdaContext,
    injected: tuple[CampaignErasure, EventPublisher] | None = None,
) -> dict[str, Any]:
    erasure, acks = injected or (erasure_for(config), publisher())

    def on_event(received: ReceivedEvent[Any]) -> None:
        ack = erasure.erase(received.data)
        acks.publish_all([ack], correlation_id=received.metadata.correlation_id)

    return consumer(event, context, on_event)
