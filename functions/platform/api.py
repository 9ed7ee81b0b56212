"""REST API of the platform slice: `/health`, `/whoami`, `/pings`, and the whole API's `/openapi.json` and `/docs`.

`/openapi.json` is the document of every engine's routes, generated from their code by
`functions/api_document.py` and committed beside this module (`openapi.json`, part of this function's
bundle), so serving it imports no other engine. `/docs` is Swagger UI on that document, from the copy of
Swagger UI that Powertools ships in the layer: no CDN, so it works on the local cloud without internet.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path as FilePath
from typing import Annotated, Any

import aws_lambda_powertools.event_handler.openapi as powertools_openapi
from aws_lambda_powertools.event_handler import Response
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


API_DOCUMENT = FilePath(__file__).with_name("openapi.json")
SWAGGER_UI = FilePath(powertools_openapi.__file__).parent / "swagger_ui"


@cache
def _api_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(API_DOCUMENT.read_text(encoding="utf-8"))
    return document


def _base_path() -> str:
    """Where the API is mounted for this request: `/<stage>` behind API Gateway's default endpoint."""
    context = app.current_event.request_context
    stage, full, resource = context.stage, context.path or "", app.current_event.path
    return full.removesuffix(resource) if stage and full.endswith(resource) else ""


@app.get(
    "/openapi.json",
    access=Access.public("the API's published contract"),
    summary="The whole API's OpenAPI document: every engine's operations, with their access (public)",
    responses={200: {"description": "An OpenAPI 3.1 document", "content": {"application/json": {"schema": {}}}}},
)
def openapi() -> Response[str]:
    document = {**_api_document(), "servers": [{"url": _base_path() or "/"}]}
    return Response(status_code=200, content_type="application/json", body=json.dumps(document))


@cache
def _swagger_page() -> str:
    script = (SWAGGER_UI / "swagger-ui-bundle.min.js").read_text(encoding="utf-8").replace("</script", "<\\/script")
    style = (SWAGGER_UI / "swagger-ui.min.css").read_text(encoding="utf-8")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>eCRM API</title>'
        f'<style>{style}</style></head><body><div id="swagger-ui"></div><script>{script}</script>'
        "<script>SwaggerUIBundle({url: new URL('openapi.json', window.location.href).href, dom_id: '#swagger-ui', "
        "deepLinking: true, persistAuthorization: false});</script></body></html>"
    )


@app.get(
    "/docs",
    access=Access.public("the API's published contract, as a page"),
    summary="Swagger UI on this API's OpenAPI document (public)",
    responses={200: {"description": "Swagger UI", "content": {"text/html": {"schema": {"type": "string"}}}}},
)
def docs() -> Response[str]:
    return Response(status_code=200, content_type="text/html; charset=utf-8", body=_swagger_page())


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
