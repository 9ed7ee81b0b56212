"""Broadcast's message events into the campaign arms' counters (the report's sent, delivered, opened...)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.broadcast.models import (
    MessageBounced,
    MessageClicked,
    MessageComplained,
    MessageDeferred,
    MessageDelivered,
    MessageFailed,
    MessageOpened,
    MessageSent,
    MessageSuppressed,
)
from ecrm.campaigns.outcomes import CampaignOutcomes
from ecrm.campaigns.wiring import CampaignsConfig, outcomes_for
from ecrm.core.config import load_config
from ecrm.core.consumer import EventConsumer, ReceivedEvent
from ecrm.core.events import DomainEvent
from ecrm.core.observability import Observability

ACCEPTED: list[type[DomainEvent]] = [
    MessageSent,
    MessageDelivered,
    MessageBounced,
    MessageComplained,
    MessageOpened,
    MessageClicked,
    MessageSuppressed,
    MessageDeferred,
    MessageFailed,
]
config = load_config(CampaignsConfig)
obs = Observability(config)
consumer = EventConsumer(obs.logger, accepts=ACCEPTED)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: CampaignOutcomes | None = None) -> dict[str, Any]:
    outcomes = injected or outcomes_for(config)

    def on_event(received: ReceivedEvent[Any]) -> None:
        outcomes.record(received.detail_type, received.data)

    return consumer(event, context, on_event)
