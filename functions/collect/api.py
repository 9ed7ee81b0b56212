"""REST API of the collection engine: the Segment HTTP tracking API (`/v1/...`) and sources.

The `/v1` routes are public at API Gateway and authenticate here with the source's write key
(HTTP Basic username, or `writeKey` in the body), so existing Segment libraries work by changing
only their endpoint and write key. Besides the spec's paths they answer the short ones analytics.js
posts to (`/v1/t`, `/v1/p`, ..., `/v1/b`), and say `Access-Control-Allow-Origin: *` for browsers.
`/sources` is for staff admins.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm import __version__
from ecrm.collect import logic
from ecrm.collect.logic import IncomingMessage, ParsedRequest
from ecrm.collect.models import IngestResult, MessageType, Source, SourceIn, SourcePatch, SourceWithKey
from ecrm.collect.service import CollectService, IngestUnavailable, WriteKeyRejected
from ecrm.collect.wiring import CollectConfig, service_for
from ecrm.core import request_body
from ecrm.core.api import EngineApi, problem_response
from ecrm.core.auth import Access
from ecrm.core.config import load_config
from ecrm.core.contract import Contract
from ecrm.core.errors import InvalidInput, problem
from ecrm.core.observability import Observability

config = load_config(CollectConfig)
obs = Observability(config)
app = EngineApi(obs.logger, title="eCRM collection API", version=__version__)

SourceId = Annotated[str, Path(pattern=r"^src_[0-9A-Z]{26}$", description="A source id")]
ADMINS = ("admin",)
# API Gateway lets these through without a token; the handler authenticates the write key.
TRACKING = Access.public("authenticated by the source's write key, in the handler")
TRACKING_PREFIX = "/v1/"
# What a tracking call answers when a message is accepted (a rejected request is a problem, like any other).
TRACKED = {
    200: {
        "description": "Accepted messages (`messageId` per message) and the rejected ones with their reason",
        "content": {"application/json": {"model": IngestResult}},
    }
}


@dataclass(frozen=True)
class Deps:
    service: CollectService


@cache
def default_deps() -> Deps:
    return Deps(service_for(config))


def deps() -> Deps:
    return app.context["deps"]


# -- tracking API (write key) ------------------------------------------------------------------
def _ingest(parse: Callable[[dict[str, Any]], ParsedRequest]) -> Response[str]:
    event = app.current_event
    headers = event.headers
    raw = logic.read_body(
        event.body, base64_encoded=bool(event.is_base64_encoded), content_encoding=headers.get("content-encoding")
    )
    authorization = headers.get("authorization")
    # Without Basic auth the key can only be in the body; a body that is not JSON has no key: 401.
    document = None if _is_basic(authorization) else _document_or_none(raw)
    source = deps().service.authenticate(logic.write_key_from(authorization, document))
    request = parse(document if document is not None else request_body.decode_json_object(raw))
    result = deps().service.ingest(source, request.messages, request.rejections, correlation_id=app.correlation_id)
    _count(result)
    payload = result.model_dump(mode="json", by_alias=True)  # `messageId`, as the Segment spec spells it
    if not result.success:
        reasons = "; ".join(f"batch.{r.index}: {r.reason}" for r in result.rejected[:3])
        body = problem(
            400,
            "No message accepted",
            f"every message was rejected ({reasons})",
            code="no-message-accepted",
            instance=event.path,
            **payload,
        )
        return problem_response(400, body, app.correlation_id)
    return Response(status_code=200, content_type="application/json", body=json.dumps(payload))


def _is_basic(authorization: str | None) -> bool:
    return bool(authorization) and str(authorization).strip().lower().startswith("basic ")


def _document_or_none(raw: bytes) -> dict[str, Any] | None:
    try:
        return request_body.decode_json_object(raw)
    except InvalidInput:
        return None


def _count(result: IngestResult) -> None:
    for name, value in (
        ("MessagesAccepted", result.accepted),
        ("MessagesDuplicated", result.duplicates),
        ("MessagesRejected", len(result.rejected)),
    ):
        if value:
            obs.metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def _register_call(path: str, call_type: MessageType) -> None:
    def parse(document: dict[str, Any]) -> ParsedRequest:
        return ParsedRequest([IncomingMessage(0, logic.parse_call(document, call_type))], [])

    def ingest_call() -> Response[str]:
        return _ingest(parse)

    ingest_call.__name__ = f"ingest_{path}"
    app.post(
        f"{TRACKING_PREFIX}{path}",
        access=TRACKING,
        summary=f"Track: one {call_type} call (write key)",
        responses=TRACKED,
    )(ingest_call)


def ingest_batch() -> Response[str]:
    return _ingest(logic.parse_batch)


for _path, _type in (logic.CALL_PATHS | logic.SHORT_CALL_PATHS).items():
    _register_call(_path, _type)
for _path in logic.BATCH_PATHS:
    app.post(
        f"{TRACKING_PREFIX}{_path}",
        access=TRACKING,
        summary="Track: a batch of calls of any type (write key)",
        responses=TRACKED,
    )(ingest_batch)


@app.exception_handler(WriteKeyRejected)
def _write_key_rejected(exc: WriteKeyRejected) -> Response[str]:
    app.logger.info("request rejected", extra={"problem": exc.code, "status": exc.status})
    response = problem_response(exc.status, exc.to_problem(app.current_event.path), app.context.get("correlation_id"))
    response.headers["WWW-Authenticate"] = exc.challenge
    return response


@app.exception_handler(IngestUnavailable)
def _ingest_unavailable(exc: IngestUnavailable) -> Response[str]:
    app.logger.warning("request not stored", extra={"problem": exc.code, "detail": exc.detail})
    response = problem_response(exc.status, exc.to_problem(app.current_event.path), app.context.get("correlation_id"))
    response.headers["Retry-After"] = str(exc.retry_after_seconds)
    return response


# -- staff: sources ----------------------------------------------------------------------------
class SourceList(Contract):
    items: list[Source]


@app.post(
    "/sources",
    access=Access.staff(*ADMINS),
    summary="Create a source; its write key is in this answer only (201)",
    status_code=201,
)
def create_source(body: SourceIn) -> tuple[SourceWithKey, int]:
    return deps().service.create_source(body), 201


@app.get("/sources", access=Access.staff(*ADMINS), summary="Every source, without keys")
def list_sources() -> SourceList:
    return SourceList(items=deps().service.list_sources())


@app.get("/sources/<source_id>", access=Access.staff(*ADMINS), summary="A source, without its key")
def get_source(source_id: SourceId) -> Source:
    return deps().service.get_source(source_id)


@app.patch(
    "/sources/<source_id>",
    access=Access.staff(*ADMINS),
    summary="Enable or disable a source, or change its description",
)
def patch_source(source_id: SourceId, body: SourcePatch) -> Source:
    return deps().service.update_source(source_id, body)


@app.post(
    "/sources/<source_id>/rotate-key",
    access=Access.staff(*ADMINS),
    summary="A new write key; the previous one works 24 hours more",
)
def rotate_key(source_id: SourceId) -> SourceWithKey:
    return deps().service.rotate_key(source_id)


def _allow_any_origin(event: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """Browsers read tracking answers cross-origin (analytics.js posts `text/plain`, no preflight)."""
    if not str(event.get("resource") or event.get("path") or "").startswith(TRACKING_PREFIX):
        return response
    multi = response.get("multiValueHeaders")
    if isinstance(multi, dict):
        multi.setdefault("Access-Control-Allow-Origin", ["*"])
    else:
        response.setdefault("headers", {}).setdefault("Access-Control-Allow-Origin", "*")
    return response


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: Deps | None = None) -> dict[str, Any]:
    app.append_context(deps=injected or default_deps())
    return _allow_any_origin(event, app.resolve(event, context))
