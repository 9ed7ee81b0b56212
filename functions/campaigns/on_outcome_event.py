"""What follows a campaign into its arms' counters: broadcast's message events (sent, delivered, opened...)
and orders placed (conversions within the attribution window)."""

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
from ecrm.transactions.models import OrderPlaced

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
    OrderPlaced,
]
config = load_config(CampaignsConfig)
obs = Observability(config)
consumer = EventConsumer(obs.logger, accepts=ACCEPTED)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: CampaignOutcomes | None = None) -> dict[str, Any]:
    outcomes = injected or outcomes_for(config)

    def on_event(received: ReceivedEvent[Any]) -> None:
        data = received.data
        if isinstance(data, OrderPlaced):
            outcomes.convert(data.customer_id, data.order_id, data.total_minor, data.placed_at)
        else:
            outcomes.record(received.detail_type, data)

    return consumer(event, context, on_event)
