"""`MessageRequested` -> the delivery policy, rendering and the chosen channel's queue (one batch at a time)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.broadcast.models import MessageRequested
from ecrm.broadcast.sending import Dispatcher
from ecrm.broadcast.wiring import BroadcastConfig, dispatcher_for
from ecrm.core.config import load_config
from ecrm.core.consumer import EventConsumer, ReceivedEvent
from ecrm.core.observability import Observability

config = load_config(BroadcastConfig)
obs = Observability(config)
consumer = EventConsumer(obs.logger, accepts=[MessageRequested])


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: Dispatcher | None = None) -> dict[str, Any]:
    dispatcher = injected or dispatcher_for(config)

    def on_event(received: ReceivedEvent[Any]) -> None:
        outcome = dispatcher.dispatch([received.data.message_id], correlation_id=received.metadata.correlation_id)
        obs.logger.info("message decided", extra={"outcome": outcome})

    return consumer(event, context, on_event)
