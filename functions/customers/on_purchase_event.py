"""The transactions engine's brokered-purchase outcomes onto the customer's timeline (one interaction each, once)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core.config import load_config
from ecrm.core.consumer import BusEvent, ServiceEventConsumer
from ecrm.core.observability import Observability
from ecrm.customers.purchase_timeline import INTERACTION_TYPES, TRANSACTIONS_SOURCE, PurchaseTimeline
from ecrm.customers.wiring import CustomersConfig, service_for

config = load_config(CustomersConfig)
obs = Observability(config)
consumer = ServiceEventConsumer(obs.logger, source=TRANSACTIONS_SOURCE, detail_types=INTERACTION_TYPES)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: PurchaseTimeline | None = None) -> dict[str, Any]:
    timeline = injected or PurchaseTimeline(service_for(config))

    def on_event(bus_event: BusEvent) -> None:
        if timeline.record(bus_event.detail_type, bus_event.detail):
            obs.metrics.add_metric(name="PurchaseInteractionsRecorded", unit="Count", value=1)

    return consumer(event, context, on_event)
