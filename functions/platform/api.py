"""REST API of the platform slice: `/health`, `/whoami`, `/pings`, `/openapi.json`."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm import __version__
from ecrm.core.api import EngineApi
from ecrm.core.auth import Access
from ecrm.core.config import load_config
from ecrm.core.errors import NotFound
from ecrm.core.observability import Observability
from ecrm.platform import logic
from ecrm.platform.models import Health, PingAccepted, PingRecord, PingRequest, WhoAmI
from ecrm.platform.wiring import Deps, PlatformConfig, deps_for

config = load_config(PlatformConfig)
obs = Observability(config)
app = EngineApi(obs.logger, title="eCRM platform API", version=__version__)


def default_deps() -> Deps:
    return deps_for(config)


def deps() -> Deps:
    return app.context["deps"]


@app.get(
    "/health",
    access=Access.public("a liveness probe: says nothing about anyone"),
    summary="Liveness of the API (public)",
)
def health() -> Health:
    return Health(service=config.powertools_service_name, version=__version__, stage=config.ecrm_stage)


@app.get(
    "/openapi.json",
    access=Access.public("the API's published contract"),
    summary="This API's OpenAPI document (public)",
)
def openapi() -> dict[str, Any]:
    return app.openapi_document()


@app.get("/whoami", access=Access.staff(), summary="The calling staff member, as the token describes them")
def whoami() -> WhoAmI:
    p = app.principal()
    return WhoAmI(
        subject=p.subject, username=p.username, email=p.email, groups=sorted(p.groups), customer_id=p.customer_id
    )


@app.post(
    "/pings",
    access=Access.staff(),
    summary="Send a ping through the event bus",
    responses={202: {"description": "accepted"}},
)
def create_ping(body: PingRequest) -> tuple[PingAccepted, int]:
    principal = app.principal()
    event = logic.request_ping(body, principal, deps().clock.now())
    deps().publisher.publish_all([event], correlation_id=app.correlation_id)
    return PingAccepted(ping_id=event.ping_id), 202


@app.get("/pings/<ping_id>", access=Access.staff(), summary="A ping's arrival record, once its event was consumed")
def get_ping(ping_id: Annotated[str, Path(min_length=30, max_length=30, pattern=r"^png_[0-9A-Z]{26}$")]) -> PingRecord:
    record = deps().store.get(ping_id)
    if record is None:
        raise NotFound(f"ping {ping_id} has not arrived (yet)")
    return record


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: Deps | None = None) -> dict[str, Any]:
    app.append_context(deps=injected or default_deps())
    return app.resolve(event, context)
