"""Segmentation's part of an erasure request: forget the customers (projection, behaviour, memberships), acknowledge.

The lake keeps a tombstone row (`deleted`), so no query selects them again; their older rows
hold only catalogued attributes and behaviour, and leave the lake with its retention.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.analysis.membership import MembershipService
from ecrm.analysis.models import AnalysisDataErased
from ecrm.analysis.wiring import AnalysisConfig, flush_lake, membership_for
from ecrm.core.config import load_config
from ecrm.core.consumer import EventConsumer, ReceivedEvent
from ecrm.core.observability import Observability
from ecrm.customers.models import CustomerErasureRequested

ENGINE = "analysis"
config = load_config(AnalysisConfig)
obs = Observability(config)
consumer = EventConsumer(obs.logger, accepts=[CustomerErasureRequested])


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: MembershipService | None = None) -> dict[str, Any]:
    service = injected or membership_for(config)

    def on_event(received: ReceivedEvent[Any]) -> None:
        request = received.data
        for customer_id in dict.fromkeys([request.customer_id, *request.customer_ids]):
            service.remove(customer_id, status="erased", trigger="erasure")
        ack = AnalysisDataErased(request_id=request.request_id, engine=ENGINE, erased_at=service.clock.now())
        service.publisher.publish_all([ack], correlation_id=received.metadata.correlation_id)

    try:
        return consumer(event, context, on_event)
    finally:
        flush_lake(service)
