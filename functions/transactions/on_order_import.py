"""Orders an import of the customer store handed over (`OrderImportRequested`): each placed once, at its own date.

The key is the import's source and the order's reference there, kept for good: a redelivered event replays
the order. A placement that fails (the table throttled, or the same reference with another content, which
the import reports itself and so should never arrive) fails its record: the queue retries it, then keeps it
in its dead-letter queue for a redrive (`ecrm redrive QUEUE`).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core.config import load_config
from ecrm.core.consumer import EventConsumer, ReceivedEvent
from ecrm.core.observability import Observability
from ecrm.customers.models import OrderImportRequested
from ecrm.transactions.order_service import OrderService
from ecrm.transactions.wiring import TransactionsConfig, order_service_for

config = load_config(TransactionsConfig)
obs = Observability(config)
consumer = EventConsumer(obs.logger, accepts=[OrderImportRequested])


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: OrderService | None = None) -> dict[str, Any]:
    service = injected or order_service_for(config)

    def on_event(received: ReceivedEvent[OrderImportRequested]) -> None:
        requested = received.data
        placement = service.place_imported(
            requested.order,
            source=requested.record_source,
            order_ref=requested.order_ref,
            placed_at=requested.placed_at,
            status=requested.status,
            earns_points=requested.earns_points,
            correlation_id=received.metadata.correlation_id,
        )
        obs.logger.info(
            "imported order placed" if placement.created else "imported order replayed",
            extra={"import_id": requested.import_id, "order_id": placement.order.order_id},
        )

    return consumer(event, context, on_event)
