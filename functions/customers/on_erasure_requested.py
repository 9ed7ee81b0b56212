"""This engine's part of an erasure request: delete what the customer store holds, then acknowledge."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core.config import load_config
from ecrm.core.consumer import EventConsumer, ReceivedEvent
from ecrm.core.observability import Observability
from ecrm.customers.models import CustomerErasureRequested
from ecrm.customers.service import CustomerService
from ecrm.customers.wiring import CustomersConfig, service_for

config = load_config(CustomersConfig)
obs = Observability(config)
consumer = EventConsumer(obs.logger, accepts=[CustomerErasureRequested])


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: CustomerService | None = None) -> dict[str, Any]:
    service = injected or service_for(config)

    def on_event(received: ReceivedEvent[Any]) -> None:
        ack = service.erase_own_data(received.data)
        service.publisher.publish_all([ack], correlation_id=received.metadata.correlation_id)

    return consumer(event, context, on_event)
