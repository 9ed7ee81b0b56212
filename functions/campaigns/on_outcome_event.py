"""What follows a campaign into its arms' counters: broadcast's counts of its message events, one
`MessageOutcomesCounted` per window of its stream (`CampaignOutcomes.record_counts`), and orders placed
(conversions within the attribution window). Each record is counted on its own: one that fails is retried
alone and counts once.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.broadcast.models import MessageOutcomesCounted
from ecrm.campaigns.outcomes import CampaignOutcomes
from ecrm.campaigns.wiring import CampaignsConfig, outcomes_for
from ecrm.core.config import load_config
from ecrm.core.consumer import parse_batch
from ecrm.core.events import DomainEvent
from ecrm.core.observability import Observability
from ecrm.transactions.models import OrderPlaced

ACCEPTED: list[type[DomainEvent]] = [MessageOutcomesCounted, OrderPlaced]
config = load_config(CampaignsConfig)
obs = Observability(config)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: CampaignOutcomes | None = None) -> dict[str, Any]:
    outcomes = injected or outcomes_for(config)
    batch, failed = parse_batch(event, ACCEPTED, obs.logger)
    for received in batch:
        data = received.data
        try:  # this record alone is retried
            if isinstance(data, OrderPlaced):
                outcomes.convert(data.customer_id, data.order_id, data.total_minor, data.placed_at)
            elif isinstance(data, MessageOutcomesCounted):
                outcomes.record_counts(received.metadata.id, data)
        except Exception:
            obs.logger.exception("not counted", extra={"message_id": received.message_id})
            failed.append(received.message_id)
    return {"batchItemFailures": [{"itemIdentifier": handle} for handle in failed]}
