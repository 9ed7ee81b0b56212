"""The REST front of an engine: a Powertools resolver with the platform's conventions.

- every route declares who may call it when it is registered (`access=Access.public(why)`,
  `Access.customer()` or `Access.staff(*groups)`); the declaration is checked before anything of the
  request is read, so a caller who may not call a route learns only that (401/403), never the shape
  of its body; it is kept in `access_rules` and published in the OpenAPI document as `x-ecrm-access`;
- request bodies read through `ecrm.core.request_body` (media type, encoding, UTF-8, JSON depth and
  text), then validated by pydantic (`enable_validation=True`), so a bad body is a 4xx problem+json
  naming what is wrong;
- domain errors mapped to RFC 9457 problem+json here, once, not in every route; anything else is a
  500 problem whose traceback is logged (a 5xx is a bug);
- log lines say which problem a request had, never the detail: details echo what the caller sent
  (emails, phone numbers), and logs are kept where erasure cannot reach them;
- a correlation id taken from `X-Correlation-Id` (or the request id), logged, returned, and passed
  on to every event the request publishes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder, Route
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from ecrm.core import request_body
from ecrm.core.auth import ACCESS_EXTENSION, Access, Principal, principal_from_event, require_customer, require_staff
from ecrm.core.errors import PROBLEM_CONTENT_TYPE, ConfigurationError, EcrmError, problem
from ecrm.core.ids import new_id

RouteFunction = TypeVar("RouteFunction", bound=Callable[..., Any])

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
        # (METHOD, rule as registered, e.g. "/customers/<customer_id>") -> who may call it
        self.access_rules: dict[tuple[str, str], Access] = {}
        self.exception_handler(EcrmError)(self._domain_error)
        self.exception_handler(RequestValidationError)(self._validation_error)
        self.exception_handler(RequestUnsupportedContentType)(self._unsupported_content_type)
        self.exception_handler(NotFoundError)(self._route_not_found)
        self.exception_handler(Exception)(self._unexpected_error)

    # -- declaring routes ------------------------------------------------------------------------
    # Each verb takes `access` as a required keyword: a route without a declaration cannot be registered.
    def get(self, rule: str, *, access: Access, **options: Any) -> Callable[[RouteFunction], RouteFunction]:  # type: ignore[override]
        return self._declare("GET", rule, access, options)

    def post(self, rule: str, *, access: Access, **options: Any) -> Callable[[RouteFunction], RouteFunction]:  # type: ignore[override]
        return self._declare("POST", rule, access, options)

    def put(self, rule: str, *, access: Access, **options: Any) -> Callable[[RouteFunction], RouteFunction]:  # type: ignore[override]
        return self._declare("PUT", rule, access, options)

    def patch(self, rule: str, *, access: Access, **options: Any) -> Callable[[RouteFunction], RouteFunction]:  # type: ignore[override]
        return self._declare("PATCH", rule, access, options)

    def delete(self, rule: str, *, access: Access, **options: Any) -> Callable[[RouteFunction], RouteFunction]:  # type: ignore[override]
        return self._declare("DELETE", rule, access, options)

    def _declare(
        self, method: str, rule: str, access: Access, options: dict[str, Any]
    ) -> Callable[[RouteFunction], RouteFunction]:
        rule = rule.rstrip("/") or "/"  # as the resolver keeps it
        if (method, rule) in self.access_rules:
            raise ValueError(f"{method} {rule} is registered twice")
        self.access_rules[(method, rule)] = access
        options["openapi_extensions"] = {
            **(options.get("openapi_extensions") or {}),
            ACCESS_EXTENSION: access.describe(),
        }
        register: Callable[[RouteFunction], RouteFunction] = self.route(rule, method, **options)
        return register

    # -- the caller ----------------------------------------------------------------------------------
    @property
    def correlation_id(self) -> str:
        return str(self.context.get("correlation_id") or new_id("cor_"))

    def principal(self) -> Principal:
        """The caller the route's access admitted (parsed from the token on a public route)."""
        admitted = self.context.get("principal")
        return admitted if isinstance(admitted, Principal) else principal_from_event(self.current_event.raw_event)

    def require_groups(self, groups: Iterable[str]) -> Principal:
        """A narrower check inside a route, for one option of it that only some staff may use."""
        return require_staff(self.principal(), groups)

    def customer_id(self) -> str:
        return require_customer(self.principal())

    def body_bytes(self, *, limit: int = request_body.MAX_INFLATED_BYTES) -> bytes:
        """The raw body, decoded from base64 and its `Content-Encoding`, for routes that read it themselves."""
        event = self.current_event
        raw = request_body.body_bytes(event.body, base64_encoded=bool(event.is_base64_encoded))
        return request_body.inflate(raw, event.headers.get("content-encoding"), limit=limit)

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

    # -- before Powertools reads the request -------------------------------------------------------
    def _call_route(self, route: Route, route_arguments: dict[str, str]) -> ResponseBuilder:
        """Admit the caller, then read the body, and only then let Powertools validate and call the route.

        Powertools runs its OpenAPI validation first among a route's middlewares, so the access check
        cannot be a middleware: it runs here, between matching the route and calling it.
        """
        try:
            self.append_context(principal=self._admit(route))
            if route.dependant.body_params:
                self._read_json_body()
        except Exception as exc:
            handled = self._call_exception_handler(exc, route)
            if handled is None:
                raise
            return handled
        return super()._call_route(route, route_arguments)

    def _admit(self, route: Route) -> Principal | None:
        access = self.access_rules.get((route.method, route.path))
        if access is not None:
            return access.admit(self.current_event.raw_event)
        if any(route is registered for registered in (*self._static_routes, *self._dynamic_routes)):
            raise ConfigurationError(f"{route.method} {route.path} declares no access")
        return None  # Powertools' own route for a path nothing serves: it answers 404

    def _read_json_body(self) -> None:
        """Decode the body once, here, so what Powertools validates is a document known to be sane.

        Only routes with a body model come here; the tracking routes read theirs themselves, and take
        `text/plain` too (analytics.js posts JSON that way to avoid a CORS preflight).
        """
        event = self.current_event
        request_body.require_json_media_type(event.headers.get("content-type"))
        raw = self.body_bytes()
        try:
            document = request_body.decode_json(raw) if raw else None
        except request_body.MalformedBody as bad:
            # The same 422 as any other invalid body, so a client reads one shape of answer.
            where = ("body", bad.extensions["field"]) if "field" in bad.extensions else ("body",)
            raise RequestValidationError([{"loc": where, "msg": bad.detail, "type": bad.code}]) from bad
        # Powertools reads these cached properties; priming them means it never decodes the raw body itself.
        vars(event)["decoded_body"] = raw.decode("utf-8") if raw else None
        vars(event)["json_body"] = document

    def _instance(self) -> str | None:
        try:
            return self.current_event.path
        except Exception:  # pragma: no cover - before routing
            return None

    def _domain_error(self, exc: EcrmError) -> Response:
        if exc.status >= 500:
            self.logger.exception("request failed", extra={"problem": exc.code, "status": exc.status})
        else:
            self.logger.info("request rejected", extra={"problem": exc.code, "status": exc.status})
        return problem_response(exc.status, exc.to_problem(self._instance()), self.context.get("correlation_id"))

    def _validation_error(self, exc: RequestValidationError) -> Response:
        errors = describe_validation_errors(exc.errors())
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        body = problem(
            422, "Invalid request", detail, code="validation-error", instance=self._instance(), errors=errors
        )
        fields = sorted({f"{e['in']}:{e['field']}" for e in errors})
        self.logger.info("request rejected", extra={"problem": "validation-error", "status": 422, "fields": fields})
        return problem_response(422, body, self.context.get("correlation_id"))

    def _unsupported_content_type(self, exc: RequestUnsupportedContentType) -> Response:
        # Bodies are checked before Powertools reads them (`_read_json_body`); this is the backstop.
        return self._domain_error(request_body.UnsupportedMediaType("this route takes application/json"))

    def _unexpected_error(self, exc: Exception) -> Response:
        self.logger.exception("request failed", extra={"problem": "internal-error", "status": 500})
        body = problem(
            500,
            "Internal error",
            "the request failed on our side; the correlation id finds it in the logs",
            code="internal-error",
            instance=self._instance(),
        )
        return problem_response(500, body, self.context.get("correlation_id"))

    def _route_not_found(self, exc: NotFoundError) -> Response:
        body = problem(404, "Not found", "no such route", code="route-not-found", instance=self._instance())
        return problem_response(404, body, self.context.get("correlation_id"))
