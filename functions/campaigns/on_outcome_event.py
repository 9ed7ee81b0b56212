"""What follows a campaign into its arms' counters: broadcast's message events (sent, delivered, opened...)
and orders placed (conversions within the attribution window).

A queue batch's message events are counted together (`CampaignOutcomes.record_batch`: one transaction for
their markers and each arm's sums), so this handler parses every record first and answers the records that
failed as `batchItemFailures`; each order is attributed on its own.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.broadcast.models import (
    MessageBounced,
    MessageClicked,
    MessageComplained,
    MessageDeferred,
    MessageDelivered,
    MessageEvent,
    MessageFailed,
    MessageOpened,
    MessageSent,
    MessageSuppressed,
)
from ecrm.campaigns.outcomes import CampaignOutcomes
from ecrm.campaigns.wiring import CampaignsConfig, outcomes_for
from ecrm.core.config import load_config
from ecrm.core.consumer import parse_batch
from ecrm.core.events import DomainEvent
from ecrm.core.observability import Observability
from ecrm.transactions.models import OrderPlaced

ACCEPTED: list[type[DomainEvent]] = [
    MessageSent,
    MessageDelivered,
    MessageBounced,
    MessageComplained,
    MessageOpened,
    MessageClicked,
    MessageSuppressed,
    MessageDeferred,
    MessageFailed,
    OrderPlaced,
]
config = load_config(CampaignsConfig)
obs = Observability(config)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: CampaignOutcomes | None = None) -> dict[str, Any]:
    outcomes = injected or outcomes_for(config)
    batch, failed = parse_batch(event, ACCEPTED, obs.logger)
    messages: list[tuple[str, str, MessageEvent]] = []  # (record's id, detail type, event)
    for received in batch:
        if isinstance(received.data, OrderPlaced):
            try:  # this order alone is retried
                data = received.data
                outcomes.convert(data.customer_id, data.order_id, data.total_minor, data.placed_at)
            except Exception:
                obs.logger.exception("order not attributed", extra={"message_id": received.message_id})
                failed.append(received.message_id)
        else:
            messages.append((received.message_id, received.detail_type, received.data))
    try:  # the batch's message events in shared transactions: on a failure each is retried, none counts twice
        outcomes.record_batch([(detail_type, data) for _, detail_type, data in messages])
    except Exception:
        obs.logger.exception("message events not counted", extra={"records": len(messages)})
        failed += [handle for handle, _, _ in messages]
    return {"batchItemFailures": [{"itemIdentifier": handle} for handle in failed]}
