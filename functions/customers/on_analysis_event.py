"""Segment memberships and computed traits from the analysis engine, shown on the customer's profile."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.analysis.models import SegmentEntered, SegmentExited, TraitsComputed
from ecrm.core.config import load_config
from ecrm.core.consumer import EventConsumer, ReceivedEvent
from ecrm.core.observability import Observability
from ecrm.customers.service import CustomerService
from ecrm.customers.wiring import CustomersConfig, service_for

config = load_config(CustomersConfig)
obs = Observability(config)
consumer = EventConsumer(obs.logger, accepts=[SegmentEntered, SegmentExited, TraitsComputed])


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: CustomerService | None = None) -> dict[str, Any]:
    service = injected or service_for(config)

    def on_event(received: ReceivedEvent[Any]) -> None:
        data = received.data
        if isinstance(data, SegmentEntered):
            service.record_analysis(data.customer_id, entered=[data.segment_id])
        elif isinstance(data, SegmentExited):
            service.record_analysis(data.customer_id, exited=[data.segment_id])
        else:
            for scored in data.customers:
                service.record_analysis(scored.customer_id, traits=dict(scored.traits))

    return consumer(event, context, on_event)
