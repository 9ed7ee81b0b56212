"""Every route of every engine declares who may call it, and that is checked before its body is read.

The authorization matrix is data (`EngineApi.access_rules`, `x-ecrm-access` in the OpenAPI document),
so these tests walk every route instead of sampling a few.
"""

from __future__ import annotations

import importlib
import json
import re
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools import Logger
from ecrm.core.api import EngineApi
from ecrm.core.auth import ACCESS_EXTENSION, STAFF_GROUPS, Access

from tests.samples import api_request

ENGINES = (
    "analysis",
    "broadcast",
    "campaigns",
    "collect",
    "customers",
    "insights",
    "personalization",
    "platform",
    "transactions",
)
# A body no route's model accepts: had validation run first, each answer would be a 422 listing the schema.
NOT_A_BODY = {"not_a_field": [1, 2, 3]}
ID_PREFIXES = {
    "customer_id": "cus_",
    "segment_id": "seg_",
    "audience_id": "aud_",
    "offer_id": "off_",
    "product_id": "prd_",
    "template_id": "tpl_",
    "source_id": "src_",
    "import_id": "imp_",
    "request_id": "era_",
    "ping_id": "png_",
    "message_id": "msg_",
    "item_id": "msg_",
    "device_id": "dev_",
    "order_id": "ord_",
    "campaign_id": "cmp_",
    "journey_id": "jny_",
    "purchase_id": "pur_",
}
PATH_VALUES = {
    "channel": "email",
    "purpose": "marketing",
    "address": "someone@example.com",
    "vendor_id": "acme",
    "name": "welcome_series",
}


def engine_api(engine: str) -> ModuleType:
    return importlib.import_module(f"functions.{engine}.api")


def every_route() -> list[tuple[str, str, str, Access]]:
    return [
        (engine, method, rule, access)
        for engine in ENGINES
        for (method, rule), access in engine_api(engine).app.access_rules.items()
    ]


def resource(rule: str) -> tuple[str, dict[str, str]]:
    """`/customers/<customer_id>` -> (`/customers/{customer_id}`, a value per parameter that its pattern accepts)."""
    names = re.findall(r"<(\w+)>", rule)
    values = {name: _valid_id(name) for name in names}
    return re.sub(r"<(\w+)>", r"{\1}", rule), values


def _valid_id(name: str) -> str:
    return PATH_VALUES.get(name) or ID_PREFIXES[name] + "01JD3Z6Q5N8V4W7X2Y9A0B1C2D"


def answer(engine: str, event: dict[str, Any], lambda_context: Any) -> tuple[int, dict[str, Any]]:
    response = engine_api(engine).app.resolve(event, lambda_context)
    return response["statusCode"], json.loads(response["body"])


@pytest.mark.parametrize("engine", ENGINES)
def test_every_served_route_declares_its_access(engine: str) -> None:
    app = engine_api(engine).app
    served = {(r.method, r.path) for r in [*app._static_routes, *app._dynamic_routes]}
    assert served == set(app.access_rules)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_openapi_document_publishes_each_operations_access(engine: str) -> None:
    app = engine_api(engine).app
    document = app.openapi_document()
    for method, rule in app.access_rules:
        path, _ = resource(rule)
        operation = document["paths"][path][method.lower()]
        assert operation[ACCESS_EXTENSION] == app.access_rules[(method, rule)].describe(), (method, path)


def test_a_route_cannot_be_registered_without_an_access_declaration() -> None:
    app = EngineApi(Logger(service="test"), title="test")
    with pytest.raises(TypeError):
        app.get("/anything")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="not staff groups: janitor"):
        Access.staff("janitor")
    with pytest.raises(ValueError, match="says why"):
        Access.public(" ")


def callers_not_admitted(access: Access) -> list[tuple[str, dict[str, Any], int]]:
    """Each kind of caller the declaration keeps out, as api_request claims, with the status they should get."""
    callers: list[tuple[str, dict[str, Any], int]] = [("no token", {"groups": None}, 401)]
    if access.audience == "staff":
        callers.append(("a customer", {"groups": None, "customer_id": "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"}, 403))
        for group in sorted(STAFF_GROUPS - access.groups):
            callers.append((f"staff of {group}", {"groups": group}, 403))
    if access.audience == "customer":
        callers.append(("staff", {"groups": "admin"}, 403))
    return callers


@pytest.mark.parametrize(
    ("engine", "method", "rule", "access"),
    [r for r in every_route() if r[3].audience != "public"],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_a_caller_who_may_not_call_a_route_learns_only_that_whatever_the_body(
    engine: str, method: str, rule: str, access: Access, lambda_context: Any
) -> None:
    path, parameters = resource(rule)
    for who, claims, status in callers_not_admitted(access):
        # Given a caller the route does not admit, sending a body no route accepts
        event = api_request(method, path, path_parameters=parameters or None, body=NOT_A_BODY, **claims)
        if claims["groups"] is None and "customer_id" not in claims:
            del event["requestContext"]["authorizer"]
        # When they call it
        got, problem = answer(engine, event, lambda_context)
        # Then they are refused as a caller, and nothing of the route's schema is in the answer
        assert (got, problem["status"]) == (status, status), f"{who}: {method} {path} -> {got} {problem}"
        assert "errors" not in problem, f"{who}: {method} {path} validated the body before refusing"
