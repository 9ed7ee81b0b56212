"""Provider feedback (SES via the bus; SMS, voice, push and WhatsApp via SNS) into messages, the list and consents.

A body no parser knows is reported failed and ends in the DLQ after the queue's retries: nothing is dropped.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.broadcast.feedback import FeedbackService
from ecrm.broadcast.feedback_events import parse_feedback
from ecrm.broadcast.wiring import BroadcastConfig, feedback_for
from ecrm.core.config import load_config
from ecrm.core.observability import Observability

config = load_config(BroadcastConfig)
obs = Observability(config)
processor = BatchProcessor(event_type=EventType.SQS)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: FeedbackService | None = None) -> dict[str, Any]:
    service = injected or feedback_for(config)

    def apply(record: SQSRecord) -> None:
        for feedback in parse_feedback(json.loads(record.body)):
            outcome = service.apply(feedback)
            obs.logger.info("feedback applied", extra={"kind": feedback.kind, "outcome": outcome})

    return process_partial_response(  # type: ignore[return-value]
        event=event, record_handler=apply, processor=processor, context=context
    )
