"""Order events into the lake's `order_lines` table: purchases, returns and cancellations as signed rows, for the
customer the order belongs to now; a merge of customers rewrites the merged customers' orders as the
survivor's (`OrderLakeRows`)."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core import aws
from ecrm.core.config import load_config
from ecrm.core.consumer import EventConsumer, ReceivedEvent
from ecrm.core.lake import FirehoseLakeWriter
from ecrm.core.observability import Observability
from ecrm.customers.models import CustomersMerged
from ecrm.transactions.models import OrderPlaced, OrderReturned, OrderStatusChanged
from ecrm.transactions.order_lake import OrderLakeRows
from ecrm.transactions.wiring import TransactionsConfig, order_lake_rows_for

config = load_config(TransactionsConfig)
obs = Observability(config)
consumer = EventConsumer(obs.logger, accepts=[OrderPlaced, OrderReturned, OrderStatusChanged, CustomersMerged])


class LakeRefused(Exception):
    """Firehose kept refusing rows: the record is retried, then parked in the DLQ."""


@cache
def lake_writer() -> FirehoseLakeWriter[dict[str, Any]]:
    return FirehoseLakeWriter(aws.client("firehose"), config.lake_order_lines_stream_name, lambda row: row)


@obs.entrypoint()
def handler(
    event: dict[str, Any], context: LambdaContext, injected: Any = None, lake_rows: OrderLakeRows | None = None
) -> dict[str, Any]:
    writer = injected or lake_writer()
    rows_of = lake_rows or order_lake_rows_for(config)

    def on_event(received: ReceivedEvent[Any]) -> None:
        data = received.data
        if isinstance(data, CustomersMerged):
            rows = rows_of.attribute_merge(data.survivor_id, data.merged_ids, data.merged_at)
        else:
            rows = rows_of.rows_for(data)
        if rows and writer.write(rows):
            raise LakeRefused(received.metadata.id)

    return consumer(event, context, on_event)
