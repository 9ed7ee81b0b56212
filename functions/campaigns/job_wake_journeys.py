"""Every few minutes: customers whose wait in a journey is over move on (a duration, a local time of day,
an event that did not come in time)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.campaigns.journey_runtime import JourneyRuntime
from ecrm.campaigns.wiring import CampaignsConfig, journey_runtime_for
from ecrm.core.config import load_config
from ecrm.core.observability import Observability

config = load_config(CampaignsConfig)
obs = Observability(config)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: JourneyRuntime | None = None) -> dict[str, Any]:
    moved = (injected or journey_runtime_for(config)).wake()
    obs.logger.info("journey waits over", extra={"customers": moved})
    return {"moved": moved}
