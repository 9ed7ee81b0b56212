"""`MessageRequested` -> the delivery policy, rendering and the chosen channel's queue, a queue batch at once.

The batch's messages are decided together (`Dispatcher.dispatch`): one read of their items, one ask of the
customer store for their cards, one read of the pause, and one queue send per channel and ten bodies, instead
of each once per message. Messages of one request share its correlation id, and the batch is decided per
correlation id so each message's events carry its own. A group that fails is reported whole as
`batchItemFailures` and decided again on redelivery: a message already `queued` is enqueued again, and its
sender drops the duplicate.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.broadcast.models import MessageRequested
from ecrm.broadcast.sending import Dispatcher
from ecrm.broadcast.wiring import BroadcastConfig, dispatcher_for
from ecrm.core.config import load_config
from ecrm.core.consumer import ReceivedEvent, parse_batch
from ecrm.core.observability import Observability

config = load_config(BroadcastConfig)
obs = Observability(config)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: Dispatcher | None = None) -> dict[str, Any]:
    dispatcher = injected or dispatcher_for(config)
    batch, failed = parse_batch(event, [MessageRequested], obs.logger)
    groups: dict[str | None, list[ReceivedEvent[Any]]] = {}
    for received in batch:
        groups.setdefault(received.metadata.correlation_id, []).append(received)
    for correlation_id, group in groups.items():
        obs.logger.set_correlation_id(correlation_id)
        try:
            outcome = dispatcher.dispatch([r.data.message_id for r in group], correlation_id=correlation_id)
        except Exception:
            obs.logger.exception("messages not decided", extra={"messages": [r.data.message_id for r in group]})
            failed.extend(r.message_id for r in group)
            continue
        obs.logger.info("messages decided", extra={"outcome": outcome})
    return {"batchItemFailures": [{"itemIdentifier": handle} for handle in failed]}
