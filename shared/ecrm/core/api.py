"""The REST front of an engine: a Powertools resolver with the platform's conventions.

- request bodies and parameters validated by pydantic (`enable_validation=True`), so a bad body is
  a 422 problem+json naming each offending field;
- domain errors mapped to RFC 9457 problem+json here, once, not in every route;
- a correlation id taken from `X-Correlation-Id` (or the request id), logged, returned, and passed
  on to every event the request publishes;
- `principal()` and `staff()` for the caller, from the authorizer's claims.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from ecrm.core.auth import STAFF_GROUPS, Principal, principal_from_event, require_customer, require_staff
from ecrm.core.errors import PROBLEM_CONTENT_TYPE, EcrmError, problem
from ecrm.core.ids import new_id

CORRELATION_HEADER = "X-Correlation-Id"


def problem_response(status: int, body: dict[str, Any], correlation_id: str | None = None) -> Response:
    headers = {CORRELATION_HEADER: correlation_id} if correlation_id else None
    return Response(status_code=status, content_type=PROBLEM_CONTENT_TYPE, body=json.dumps(body), headers=headers)


def describe_validation_errors(errors: Iterable[dict[str, Any]]) -> list[dict[str, str]]:
    described = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        where = loc[0] if loc else "request"
        field = ".".join(loc[1:]) or where
        message = err.get("msg", "invalid")
        if err.get("type") == "json_invalid":
            field, message = "body", "the body is not valid JSON"
        described.append({"in": where, "field": field, "message": message})
    return described


class EngineApi(APIGatewayRestResolver):
    """An engine's resolver. `title` names it in the generated OpenAPI document."""

    def __init__(self, logger: Logger, *, title: str, version: str = "1") -> None:
        super().__init__(enable_validation=True)
        self.logger = logger
        self.title = title
        self.api_version = version
        self.exception_handler(EcrmError)(self._domain_error)
        self.exception_handler(RequestValidationError)(self._validation_error)
        self.exception_handler(NotFoundError)(self._route_not_found)

    @property
    def correlation_id(self) -> str:
        return str(self.context.get("correlation_id") or new_id("cor_"))

    def principal(self) -> Principal:
        return principal_from_event(self.current_event.raw_event)

    def staff(self, groups: Iterable[str] = STAFF_GROUPS) -> Principal:
        return require_staff(self.principal(), groups)

    def customer_id(self) -> str:
        return require_customer(self.principal())

    def openapi_document(self) -> dict[str, Any]:
        return json.loads(self.get_openapi_json_schema(title=self.title, version=self.api_version))

    # -- correlation and error mapping ---------------------------------------------------------
    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        """Route the request, with its correlation id known before validation or routing can fail."""
        headers = event.get("headers") or {}
        incoming = next((v for k, v in headers.items() if k.lower() == CORRELATION_HEADER.lower()), None)
        request_id = (event.get("requestContext") or {}).get("requestId")
        correlation_id = incoming or request_id or new_id("cor_")
        self.append_context(correlation_id=correlation_id)
        self.logger.set_correlation_id(correlation_id)
        response = super().resolve(event, context)
        multi = response.get("multiValueHeaders")
        if isinstance(multi, dict):
            multi.setdefault(CORRELATION_HEADER, [correlation_id])
        else:
            response.setdefault("headers", {}).setdefault(CORRELATION_HEADER, correlation_id)
        return response

    def _instance(self) -> str | None:
        try:
            return self.current_event.path
        except Exception:  # pragma: no cover - before routing
            return None

    def _domain_error(self, exc: EcrmError) -> Response:
        if exc.status >= 500:
            self.logger.exception("request failed", extra={"problem": exc.code})
        else:
            self.logger.info("request rejected", extra={"problem": exc.code, "detail": exc.detail})
        return problem_response(exc.status, exc.to_problem(self._instance()), self.context.get("correlation_id"))

    def _validation_error(self, exc: RequestValidationError) -> Response:
        errors = describe_validation_errors(exc.errors())
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        body = problem(
            422, "Invalid request", detail, code="validation-error", instance=self._instance(), errors=errors
        )
        self.logger.info("request rejected", extra={"problem": "validation-error", "detail": detail})
        return problem_response(422, body, self.context.get("correlation_id"))

    def _route_not_found(self, exc: NotFoundError) -> Response:
        body = problem(404, "Not found", "no such route", code="route-not-found", instance=self._instance())
        return problem_response(404, body, self.context.get("correlation_id"))
