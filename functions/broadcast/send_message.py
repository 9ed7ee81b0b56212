"""A channel queue's sender: each record is one rendered message, sent once (ADR 12).

A record to retry later (throttled, a transient fault, a claim still held by another attempt) has its
visibility set to the sender's backoff with jitter and is reported failed, so SQS redelivers it then and
only it; after the queue's receive count it waits in the DLQ for `ecrm redrive`.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.broadcast.sending import RetryLater, Sender
from ecrm.broadcast.wiring import BroadcastConfig, sender_for
from ecrm.core.config import load_config
from ecrm.core.consumer import retry_after
from ecrm.core.observability import Observability

config = load_config(BroadcastConfig)
obs = Observability(config)
processor = BatchProcessor(event_type=EventType.SQS)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: Sender | None = None) -> dict[str, Any]:
    sender = injected or sender_for(config)

    def send(record: SQSRecord) -> None:
        body = json.loads(record.body)
        try:
            outcome = sender.send(body)
        except RetryLater as retry:
            obs.logger.info("send retried later", extra={"reason": retry.reason, "delay_s": retry.delay_s})
            if injected is None:
                retry_after(record, retry.delay_s)
            raise
        obs.logger.info("send settled", extra={"message_id": body.get("message_id"), "outcome": outcome})

    with sender.batch(bodies_of(event)):
        return process_partial_response(  # type: ignore[return-value]
            event=event, record_handler=send, processor=processor, context=context
        )


def bodies_of(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The batch's bodies that parse (one that does not fails on its own, in the record handler)."""
    bodies = []
    for record in event.get("Records") or []:
        try:
            body = json.loads(record.get("body") or "")
        except ValueError:
            continue
        if isinstance(body, dict):
            bodies.append(body)
    return bodies
