"""Domain events about customers into the active journeys: triggers enter them, later events move them on
(goals, exits, the event a wait is for). A redelivered event changes nothing: the customer's state keeps
the ids of the events it has seen."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.campaigns.journey_runtime import JourneyRuntime
from ecrm.campaigns.wiring import CampaignsConfig, journey_runtime_for
from ecrm.core.config import load_config
from ecrm.core.consumer import BusEvent
from ecrm.core.observability import Observability

config = load_config(CampaignsConfig)
obs = Observability(config)
processor = BatchProcessor(event_type=EventType.SQS)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: JourneyRuntime | None = None) -> dict[str, Any]:
    runtime = injected or journey_runtime_for(config)

    def handle_record(record: SQSRecord) -> None:
        bus_event = BusEvent.model_validate(json.loads(record.body))
        runtime.handle(bus_event.source, bus_event.detail_type, bus_event.detail)

    return process_partial_response(  # type: ignore[return-value]
        event=event, record_handler=handle_record, processor=processor, context=context
    )
