"""Collects every engine's erasure acknowledgement; the last one completes the request."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core.config import load_config
from ecrm.core.consumer import EventConsumer, ReceivedEvent
from ecrm.core.events import load_all_event_models, registered_events
from ecrm.core.observability import Observability
from ecrm.customers.models import CustomerDataErased
from ecrm.customers.service import CustomerService
from ecrm.customers.wiring import CustomersConfig, service_for

config = load_config(CustomersConfig)
load_all_event_models()  # every engine's acknowledgement model, whatever engines this deployment has
obs = Observability(config)
# Every engine acknowledges with its own CustomerDataErased (same shape, its own source).
consumer = EventConsumer(
    obs.logger,
    accepts=[m for (_, t), m in registered_events().items() if t == "CustomerDataErased"] or [CustomerDataErased],
)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: CustomerService | None = None) -> dict[str, Any]:
    service = injected or service_for(config)

    def on_event(received: ReceivedEvent[Any]) -> None:
        service.acknowledge_erasure(received.data, correlation_id=received.metadata.correlation_id)

    return consumer(event, context, on_event)
