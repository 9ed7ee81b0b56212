"""The customer store's changes into the lake (`customer_changes`): ids and field names, no values."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core import aws
from ecrm.core.config import load_config
from ecrm.core.consumer import EventConsumer, ReceivedEvent
from ecrm.core.lake import FirehoseLakeWriter, customer_change_record
from ecrm.core.observability import Observability
from ecrm.customers.models import (
    ConsentChanged,
    CustomerCreated,
    CustomerErased,
    CustomersMerged,
    CustomerUpdated,
)
from ecrm.customers.wiring import CustomersConfig

config = load_config(CustomersConfig)
obs = Observability(config)
consumer = EventConsumer(
    obs.logger, accepts=[CustomerCreated, CustomerUpdated, CustomersMerged, ConsentChanged, CustomerErased]
)


class LakeRefused(Exception):
    """Firehose kept refusing records: the batch is retried, then parked in the DLQ."""


def change_record(received: ReceivedEvent[Any]) -> dict[str, Any]:
    data = received.data
    common = {
        "event_id": received.metadata.id,
        "change": received.detail_type,
        "correlation_id": received.metadata.correlation_id,
    }
    if isinstance(data, CustomersMerged):
        return customer_change_record(
            **common,
            customer_id=data.survivor_id,
            related_ids=data.merged_ids,
            changed=data.matched_by,
            occurred_at=data.merged_at,
        )
    if isinstance(data, ConsentChanged):
        return customer_change_record(
            **common,
            customer_id=data.customer_id,
            changed=[f"consent.{data.channel}.{data.purpose}.{data.state}"],
            record_source=data.proof_source,
            occurred_at=data.changed_at,
        )
    if isinstance(data, CustomerErased):
        return customer_change_record(**common, customer_id=data.customer_id, occurred_at=data.completed_at)
    if isinstance(data, CustomerCreated):
        return customer_change_record(
            **common,
            customer_id=data.customer_id,
            changed=data.identity_types,
            record_source=data.record_source,
            occurred_at=data.created_at,
        )
    return customer_change_record(
        **common,
        customer_id=data.customer_id,
        changed=data.changed,
        record_source=data.record_source,
        occurred_at=data.updated_at,
    )


@cache
def lake_writer() -> FirehoseLakeWriter[dict[str, Any]]:
    return FirehoseLakeWriter(aws.client("firehose"), config.lake_customer_changes_stream_name, lambda record: record)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: Any = None) -> dict[str, Any]:
    writer = injected or lake_writer()

    def on_event(received: ReceivedEvent[Any]) -> None:
        if writer.write([change_record(received)]):
            raise LakeRefused(received.metadata.id)

    return consumer(event, context, on_event)
