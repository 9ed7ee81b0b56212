"""Provider feedback (SES via the bus; SMS, voice, push and WhatsApp via SNS) into messages, the list and consents.

A body no parser knows is reported failed and ends in the DLQ after the queue's retries: nothing is dropped.
An event for a message its sender still holds (`SenderStillSending`) is redelivered soon, then when the
sender's lease ends: its own write is usually milliseconds away, and a sender that died leaves the lease
to run out. Two receives of the queue's five, not the queue's whole visibility timeout.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.broadcast.feedback import FeedbackService, SenderStillSending
from ecrm.broadcast.feedback_events import parse_feedback
from ecrm.broadcast.wiring import BroadcastConfig, feedback_for
from ecrm.core.config import load_config
from ecrm.core.consumer import retry_after
from ecrm.core.observability import Observability

config = load_config(BroadcastConfig)
obs = Observability(config)
processor = BatchProcessor(event_type=EventType.SQS)
FIRST_WAIT_S = 2  # a held message's event, first redelivered after this; then when the sender's lease ends


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: FeedbackService | None = None) -> dict[str, Any]:
    service = injected or feedback_for(config)

    def apply(record: SQSRecord) -> None:
        for feedback in parse_feedback(json.loads(record.body)):
            try:
                outcome = service.apply(feedback)
            except SenderStillSending as held:
                first = int(record.attributes.approximate_receive_count or 1) <= 1
                delay_s = min(FIRST_WAIT_S, held.delay_s) if first else held.delay_s
                obs.logger.info("feedback waits for the sender", extra={"kind": feedback.kind, "delay_s": delay_s})
                if injected is None:
                    retry_after(record, delay_s)
                raise
            obs.logger.info("feedback applied", extra={"kind": feedback.kind, "outcome": outcome})

    return process_partial_response(  # type: ignore[return-value]
        event=event, record_handler=apply, processor=processor, context=context
    )
