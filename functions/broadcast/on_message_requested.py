"""`MessageRequested` -> the delivery policy, rendering and the chosen channel's queue, a queue batch at once.

The batch's messages are decided together (`Dispatcher.dispatch`): one read of their items, one ask of the
customer store for their cards, one read of the pause, and one queue send per channel and ten bodies, instead
of each once per message. Each message's events carry the correlation id of its own request (a campaign's
messages each have theirs). A batch that fails (the customer store unanswered) is reported whole as
`batchItemFailures`, a record of another shape alone; on redelivery a message already `queued` is enqueued
again, and its sender drops the duplicate.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.broadcast.models import MessageRequested
from ecrm.broadcast.sending import Dispatcher
from ecrm.broadcast.wiring import BroadcastConfig, dispatcher_for
from ecrm.core.config import load_config
from ecrm.core.consumer import parse_batch
from ecrm.core.observability import Observability

config = load_config(BroadcastConfig)
obs = Observability(config)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: Dispatcher | None = None) -> dict[str, Any]:
    dispatcher = injected or dispatcher_for(config)
    batch, failed = parse_batch(event, [MessageRequested], obs.logger)
    correlation_ids = {r.data.message_id: r.metadata.correlation_id for r in batch}
    try:
        if correlation_ids:
            outcome = dispatcher.dispatch(list(correlation_ids), correlation_id=None, correlation_ids=correlation_ids)
            obs.logger.info("messages decided", extra={"outcome": outcome})
    except Exception:
        obs.logger.exception("messages not decided", extra={"messages": list(correlation_ids)})
        failed.extend(r.message_id for r in batch)
    return {"batchItemFailures": [{"itemIdentifier": handle} for handle in failed]}
