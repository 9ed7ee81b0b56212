"""Customer store and segmentation events into personalization's projection; erasure requests acknowledged.

One queue takes them all (`customer_events.CONSUMED_EVENTS`): profile snapshots, consents, interactions
(the item history), merges, segment moves, computed traits, and `CustomerErasureRequested`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core.config import load_config
from ecrm.core.consumer import EventConsumer, ReceivedEvent
from ecrm.core.observability import Observability
from ecrm.personalization.customer_events import CONSUMED_EVENTS, ProjectionService
from ecrm.personalization.wiring import PersonalizationConfig, projection_for

config = load_config(PersonalizationConfig)
obs = Observability(config)
consumer = EventConsumer(obs.logger, accepts=CONSUMED_EVENTS)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: ProjectionService | None = None) -> dict[str, Any]:
    service = injected or projection_for(config)

    def on_event(received: ReceivedEvent[Any]) -> None:
        service.apply(received.data, correlation_id=received.metadata.correlation_id)

    return consumer(event, context, on_event)
