"""Order events into the lake's `order_lines` table: purchases, returns and cancellations as signed rows."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core import aws
from ecrm.core.config import load_config
from ecrm.core.consumer import EventConsumer, ReceivedEvent
from ecrm.core.lake import FirehoseLakeWriter
from ecrm.core.observability import Observability
from ecrm.transactions.lake_records import order_rows
from ecrm.transactions.models import OrderPlaced, OrderReturned, OrderStatusChanged
from ecrm.transactions.wiring import TransactionsConfig

config = load_config(TransactionsConfig)
obs = Observability(config)
consumer = EventConsumer(obs.logger, accepts=[OrderPlaced, OrderReturned, OrderStatusChanged])


class LakeRefused(Exception):
    """Firehose kept refusing rows: the record is retried, then parked in the DLQ."""


@cache
def lake_writer() -> FirehoseLakeWriter[dict[str, Any]]:
    return FirehoseLakeWriter(aws.client("firehose"), config.lake_order_lines_stream_name, lambda row: row)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: Any = None) -> dict[str, Any]:
    writer = injected or lake_writer()

    def on_event(received: ReceivedEvent[Any]) -> None:
        rows = order_rows(received.data, event_id=received.metadata.id)
        if rows and writer.write(rows):
            raise LakeRefused(received.metadata.id)

    return consumer(event, context, on_event)
