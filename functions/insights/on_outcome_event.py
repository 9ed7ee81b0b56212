"""Broadcast's message events, unsubscriptions and orders placed into the live counters; message events also
into the lake's `message_outcomes` table (first, so a retry after a failed count writes the row again, never
loses it: readers keep one row per `event_id`)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.broadcast.models import (
    CustomerUnsubscribed,
    MessageBounced,
    MessageClicked,
    MessageComplained,
    MessageDeferred,
    MessageDelivered,
    MessageEvent,
    MessageFailed,
    MessageOpened,
    MessageRequested,
    MessageSent,
    MessageSuppressed,
)
from ecrm.core.config import load_config
from ecrm.core.consumer import EventConsumer, ReceivedEvent
from ecrm.core.events import DomainEvent
from ecrm.core.lake import FirehoseLakeWriter
from ecrm.core.observability import Observability
from ecrm.insights.lake_records import message_outcome_row
from ecrm.insights.service import InsightsService
from ecrm.insights.wiring import InsightsConfig, lake_writer_for, service_for
from ecrm.transactions.models import OrderPlaced

MESSAGE_EVENTS: list[type[MessageEvent]] = [
    MessageRequested,
    MessageSuppressed,
    MessageDeferred,
    MessageSent,
    MessageFailed,
    MessageDelivered,
    MessageBounced,
    MessageComplained,
    MessageOpened,
    MessageClicked,
]
ACCEPTED: list[type[DomainEvent]] = [*MESSAGE_EVENTS, CustomerUnsubscribed, OrderPlaced]
config = load_config(InsightsConfig)
obs = Observability(config)
consumer = EventConsumer(obs.logger, accepts=ACCEPTED)


class LakeRefused(Exception):
    """Firehose kept refusing the row: the record is retried, then parked in the DLQ."""


@obs.entrypoint()
def handler(
    event: dict[str, Any],
    context: LambdaContext,
    injected: InsightsService | None = None,
    lake: FirehoseLakeWriter[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    service = injected or service_for(config)
    writer = lake if lake is not None else (None if injected else lake_writer_for(config))

    def on_event(received: ReceivedEvent[Any]) -> None:
        data, event_id = received.data, received.metadata.id
        if isinstance(data, OrderPlaced):
            service.record_order(event_id, data)
        elif isinstance(data, CustomerUnsubscribed):
            service.record_unsubscribe(event_id, data)
        else:
            if writer is not None and writer.write([message_outcome_row(event_id, received.detail_type, data)]):
                raise LakeRefused(event_id)
            service.record_message(event_id, received.detail_type, data)

    return consumer(event, context, on_event)
