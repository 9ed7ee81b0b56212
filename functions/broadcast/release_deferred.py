"""Every minute: deferred messages that came due (quiet hours over, the pause lifted) are decided again."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.broadcast.sending import Dispatcher
from ecrm.broadcast.wiring import BroadcastConfig, dispatcher_for
from ecrm.core.config import load_config
from ecrm.core.observability import Observability

config = load_config(BroadcastConfig)
obs = Observability(config)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: Dispatcher | None = None) -> dict[str, Any]:
    dispatcher = injected or dispatcher_for(config)
    return dispatcher.release_due(correlation_id=str(event.get("id") or "") or None)
