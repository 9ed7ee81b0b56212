"""Draining an SQS queue of domain events with partial batch responses.

EventBridge rules deliver whole events to engine queues; each record's body is an EventBridge
event whose `detail` is our envelope. A record that fails (bad shape, unknown type, handler error)
is reported in `batchItemFailures`, so SQS retries only that record and, after the queue's
`maxReceiveCount`, moves it to the dead-letter queue. The other records of the batch are done.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import cache
from typing import Any, Generic, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ConfigDict, Field

from ecrm.core import aws
from ecrm.core.contract import Contract
from ecrm.core.events import DomainEvent, EventEnvelope, EventMetadata

E = TypeVar("E", bound=DomainEvent)
MAX_VISIBILITY_S = 43_200  # SQS's longest visibility timeout


@cache
def queue_url(source_arn: str) -> str:
    _, _, _, _, account, name = source_arn.split(":", 5)
    return str(aws.client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])


def retry_after(record: SQSRecord, delay_s: int) -> None:
    """Redeliver the record in `delay_s` seconds instead of the queue's visibility timeout (report it failed too)."""
    aws.client("sqs").change_message_visibility(
        QueueUrl=queue_url(record.event_source_arn),
        ReceiptHandle=record.receipt_handle,
        VisibilityTimeout=max(0, min(MAX_VISIBILITY_S, delay_s)),
    )


class UnexpectedEvent(Exception):
    """A record this consumer does not accept: a wiring bug, kept in the DLQ for inspection."""


class BusEvent(Contract):
    """The EventBridge event as it arrives in an SQS body."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    id: str
    source: str
    detail_type: str = Field(alias="detail-type")
    time: datetime
    detail: dict[str, Any]


class ReceivedEvent(Contract, Generic[E]):
    """A domain event as a consumer sees it."""

    bus_event_id: str
    source: str
    detail_type: str
    metadata: EventMetadata
    data: E
    message_id: str
    receive_count: int


def parse_record(record: SQSRecord, accepts: Iterable[type[DomainEvent]]) -> ReceivedEvent[Any]:
    bus_event = BusEvent.model_validate(json.loads(record.body))
    models = {(m.source, m.detail_type): m for m in accepts}
    model = models.get((bus_event.source, bus_event.detail_type))
    if model is None:
        raise UnexpectedEvent(f"{bus_event.source}/{bus_event.detail_type} is not consumed here")
    envelope = EventEnvelope[model].model_validate(bus_event.detail)  # type: ignore[valid-type]
    attributes = record.raw_event.get("attributes") or {}
    return ReceivedEvent[Any](
        bus_event_id=bus_event.id,
        source=bus_event.source,
        detail_type=bus_event.detail_type,
        metadata=envelope.metadata,
        data=envelope.data,
        message_id=record.message_id,
        receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
    )


def parse_batch(
    event: Mapping[str, Any], accepts: Iterable[type[DomainEvent]], logger: Logger
) -> tuple[list[ReceivedEvent[Any]], list[str]]:
    """Every record of an SQS batch parsed, for a consumer that handles the batch as a whole; and the ids of the
    records that could not be (of another shape: the queue retries them, then keeps them in its DLQ)."""
    received: list[ReceivedEvent[Any]] = []
    unreadable: list[str] = []
    for record in event.get("Records") or []:
        try:
            received.append(parse_record(SQSRecord(record), accepts))
        except Exception:
            logger.exception("record not readable", extra={"message_id": record.get("messageId")})
            unreadable.append(record["messageId"])
    return received, unreadable


class EventConsumer:
    """The body of an `on_<event>` handler: parse, dispatch, report partial failures."""

    def __init__(self, logger: Logger, accepts: Iterable[type[DomainEvent]]) -> None:
        self.logger = logger
        self.accepts = tuple(accepts)
        self.processor = BatchProcessor(event_type=EventType.SQS)

    def __call__(
        self, event: dict[str, Any], context: Any, on_event: Callable[[ReceivedEvent[Any]], None]
    ) -> dict[str, Any]:
        def handle_record(record: SQSRecord) -> None:
            received = parse_record(record, self.accepts)
            self.logger.set_correlation_id(received.metadata.correlation_id)
            self.logger.append_keys(event_id=received.metadata.id, detail_type=received.detail_type)
            try:
                on_event(received)
            finally:
                self.logger.remove_keys(["event_id", "detail_type"])

        return process_partial_response(  # type: ignore[return-value]
            event=event, record_handler=handle_record, processor=self.processor, context=context
        )


class ServiceEventConsumer:
    """Like `EventConsumer`, for events AWS services put on a bus (S3, SES...): no envelope."""

    def __init__(self, logger: Logger, *, source: str, detail_types: Iterable[str]) -> None:
        self.logger = logger
        self.source = source
        self.detail_types = frozenset(detail_types)
        self.processor = BatchProcessor(event_type=EventType.SQS)

    def __call__(self, event: dict[str, Any], context: Any, on_event: Callable[[BusEvent], None]) -> dict[str, Any]:
        def handle_record(record: SQSRecord) -> None:
            bus_event = BusEvent.model_validate(json.loads(record.body))
            if bus_event.source != self.source or bus_event.detail_type not in self.detail_types:
                raise UnexpectedEvent(f"{bus_event.source}/{bus_event.detail_type} is not consumed here")
            self.logger.set_correlation_id(bus_event.id)
            on_event(bus_event)

        return process_partial_response(  # type: ignore[return-value]
            event=event, record_handler=handle_record, processor=self.processor, context=context
        )
