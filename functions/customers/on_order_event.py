"""The transactions engine's order changes onto the customer's timeline (one interaction each, once)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core.config import load_config
from ecrm.core.consumer import BusEvent, ServiceEventConsumer
from ecrm.core.observability import Observability
from ecrm.customers.order_timeline import ORDER_EVENTS, TRANSACTIONS_SOURCE, OrderTimeline
from ecrm.customers.wiring import CustomersConfig, service_for

config = load_config(CustomersConfig)
obs = Observability(config)
consumer = ServiceEventConsumer(obs.logger, source=TRANSACTIONS_SOURCE, detail_types=ORDER_EVENTS)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: OrderTimeline | None = None) -> dict[str, Any]:
    timeline = injected or OrderTimeline(service_for(config))

    def on_event(bus_event: BusEvent) -> None:
        if timeline.record(bus_event.detail_type, bus_event.detail):
            obs.metrics.add_metric(name="OrderInteractionsRecorded", unit="Count", value=1)

    return consumer(event, context, on_event)
