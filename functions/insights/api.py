"""REST API of the insights engine: the live counters of the last hour (or up to a day), for staff."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm import __version__
from ecrm.core.api import EngineApi
from ecrm.core.auth import Access
from ecrm.core.config import load_config
from ecrm.core.observability import Observability
from ecrm.insights.models import DEFAULT_WINDOW_MINUTES, MAX_WINDOW_MINUTES, LiveInsights
from ecrm.insights.service import InsightsService
from ecrm.insights.wiring import InsightsConfig, service_for

config = load_config(InsightsConfig)
obs = Observability(config)
app = EngineApi(obs.logger, title="eCRM insights API", version=__version__)
# Who plans and reads campaigns; support agents work on customers, not on the marketing figures.
READERS = ("admin", "marketer", "analyst")


@cache
def default_deps() -> InsightsService:
    return service_for(config)


def deps() -> InsightsService:
    return app.context["deps"]


@app.get(
    "/insights/live",
    access=Access.staff(*READERS),
    summary="Live counters of campaigns, journeys and channels over the last minutes (default: the last hour)",
)
def get_live(
    window: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_WINDOW_MINUTES,
            description=f"Minutes, the current one included (1 to {MAX_WINDOW_MINUTES}, 24 hours)",
        ),
    ] = DEFAULT_WINDOW_MINUTES,
) -> LiveInsights:
    return deps().live(window)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: InsightsService | None = None) -> dict[str, Any]:
    app.append_context(deps=injected or default_deps())
    return app.resolve(event, context)
