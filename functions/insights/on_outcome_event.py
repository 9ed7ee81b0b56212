"""Broadcast's counts of its message events (`MessageOutcomesCounted`), unsubscriptions and orders placed into
the live counters; a campaign's or a journey's send into the touches that orders are attributed by.

The batch is counted as a whole (`InsightsService.record_batch`: one transaction for its unsubscriptions), so
this handler parses every record first and answers the records that failed as `batchItemFailures`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.broadcast.models import CustomerUnsubscribed, MessageOutcomesCounted, MessageSent
from ecrm.core.config import load_config
from ecrm.core.consumer import parse_batch
from ecrm.core.events import DomainEvent
from ecrm.core.observability import Observability
from ecrm.insights.service import BatchEvent, InsightsService
from ecrm.insights.wiring import InsightsConfig, service_for
from ecrm.transactions.models import OrderPlaced

ACCEPTED: list[type[DomainEvent]] = [MessageSent, MessageOutcomesCounted, CustomerUnsubscribed, OrderPlaced]
config = load_config(InsightsConfig)
obs = Observability(config)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: InsightsService | None = None) -> dict[str, Any]:
    service = injected or service_for(config)
    batch, failed = parse_batch(event, ACCEPTED, obs.logger)
    received = [BatchEvent(e.message_id, e.metadata.id, e.detail_type, e.data) for e in batch]
    outcome = service.record_batch(received)
    for handle, error in outcome.failed.items():
        obs.logger.error("event not counted", extra={"message_id": handle, "error": repr(error)})
        failed.append(handle)
    return {"batchItemFailures": [{"itemIdentifier": handle} for handle in failed]}
