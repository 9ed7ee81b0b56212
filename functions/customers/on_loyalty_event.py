"""The transactions engine's loyalty standing onto the customer as traits (tier, balance, points expiring)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core.config import load_config
from ecrm.core.consumer import BusEvent, ServiceEventConsumer
from ecrm.core.observability import Observability
from ecrm.customers.loyalty_traits import LOYALTY_EVENTS, TRANSACTIONS_SOURCE, LoyaltyTraits
from ecrm.customers.wiring import CustomersConfig, service_for

config = load_config(CustomersConfig)
obs = Observability(config)
consumer = ServiceEventConsumer(obs.logger, source=TRANSACTIONS_SOURCE, detail_types=LOYALTY_EVENTS)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: LoyaltyTraits | None = None) -> dict[str, Any]:
    traits = injected or LoyaltyTraits(service_for(config))

    def on_event(bus_event: BusEvent) -> None:
        if traits.record(bus_event.detail_type, bus_event.detail):
            obs.metrics.add_metric(name="LoyaltyTraitsRecorded", unit="Count", value=1)

    return consumer(event, context, on_event)
