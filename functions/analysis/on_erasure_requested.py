"""Segmentation's first part of an erasure request: forget the customers (projection, behaviour, memberships).

A tombstone row (`deleted`) goes to the lake, so no query selects them meanwhile; their lake rows
are deleted and the request acknowledged once the lake streams' buffering has passed
(`on_erasure_settled`).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.analysis.membership import MembershipService
from ecrm.analysis.wiring import AnalysisConfig, flush_lake, membership_for
from ecrm.core.config import load_config
from ecrm.core.consumer import EventConsumer, ReceivedEvent
from ecrm.core.erasure import CustomerErasureRequested
from ecrm.core.observability import Observability

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
        flush_lake(service)  # the tombstones are in the lake before the lake eraser may look for rows
        service.store.mark_erasure_prepared(request.request_id, now=service.clock.now())

    try:
        return consumer(event, context, on_event)
    finally:
        flush_lake(service)
