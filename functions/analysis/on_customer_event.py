"""Customer store, order, loyalty and message events into segmentation: keep the projection, re-evaluate affected
segments in real time."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.analysis.customer_events import apply_customer_event
from ecrm.analysis.membership import MembershipService
from ecrm.analysis.message_behaviour import MESSAGE_EVENTS
from ecrm.analysis.models import TraitsComputed
from ecrm.analysis.wiring import AnalysisConfig, flush_lake, membership_for
from ecrm.core.config import load_config
from ecrm.core.consumer import EventConsumer, ReceivedEvent
from ecrm.core.observability import Observability
from ecrm.customers.models import ConsentChanged, CustomerCreated, CustomersMerged, CustomerUpdated, InteractionRecorded
from ecrm.transactions.models import LOYALTY_EVENTS, OrderPlaced, OrderReturned, OrderStatusChanged

config = load_config(AnalysisConfig)
obs = Observability(config)
consumer = EventConsumer(
    obs.logger,
    accepts=[
        CustomerCreated,
        CustomerUpdated,
        CustomersMerged,
        ConsentChanged,
        InteractionRecorded,
        TraitsComputed,
        OrderPlaced,
        OrderReturned,
        OrderStatusChanged,
        *LOYALTY_EVENTS,
        *MESSAGE_EVENTS,
    ],
)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: MembershipService | None = None) -> dict[str, Any]:
    service = injected or membership_for(config)
    if service.segments is not None:
        service.segments.revalidate()  # a segment created since the last invocation is evaluated from now on

    def on_event(received: ReceivedEvent[Any]) -> None:
        apply_customer_event(
            service, received.data, correlation_id=received.metadata.correlation_id, event_id=received.metadata.id
        )

    try:
        return consumer(event, context, on_event)
    finally:
        flush_lake(service)
