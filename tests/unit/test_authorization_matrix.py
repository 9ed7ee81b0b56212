"""The authorization matrix: every operation of the API document, called by every kind of caller, in process.

The document (`functions/platform/openapi.json`) lists every route with its `x-ecrm-access`; this walks
all of them, so a new route is covered the moment it is in the document (and the document is kept equal
to the code and to the template by tests/unit/test_api_document.py and tests/infra/test_api_document.py).

Each operation gets its first valid request, generated from the document by schemathesis (derandomized,
so the same request every run), sent to the engine's resolver with no token, a customer's token and a
token of each staff group. The engine's collaborators are a sentinel that records being reached and
fails: a caller the declaration keeps out must get 401/403 without reaching it; a caller it admits must
not get 401/403 (a 500 is accepted only when the sentinel was reached: the request got past access and
validation, which is all this test is about; the e2e matrix reaches the real services).

Bodies: a valid body plus a field the operation does not take, or plus a field only its answer has
(server-owned, read-only: ids, counters, timestamps), is a 422 that reaches nothing.
"""

from __future__ import annotations

import importlib
import json
from functools import cache
from typing import Any

import pytest
import schemathesis
from ecrm.core.auth import ACCESS_EXTENSION, STAFF_GROUPS
from ecrm.core.openapi import operations
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.generation import GenerationMode

from functions import api_document
from tests.samples import api_request

DOCUMENT: dict[str, Any] = json.loads(api_document.DOCUMENT.read_text(encoding="utf-8"))
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
CUSTOMER_ID = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"
# caller -> (api_request claims, or None for no token)
CALLERS: dict[str, dict[str, Any] | None] = {
    "no token": None,
    "a customer": {"groups": None, "customer_id": CUSTOMER_ID},
    **{f"staff of {group}": {"groups": group} for group in sorted(STAFF_GROUPS)},
}
OPERATIONS = sorted((method, path) for method, path, _ in operations(DOCUMENT))


class ServiceReached(Exception):
    """Raised by the sentinel collaborators: the request got past access and validation."""


class SentinelDeps:
    """Stands for an engine's collaborators: remembers being touched, and fails."""

    def __init__(self) -> None:
        self.reached = False

    def __getattr__(self, name: str) -> Any:
        self.reached = True
        raise ServiceReached(name)


def operation_of(method: str, path: str) -> dict[str, Any]:
    return DOCUMENT["paths"][path][method.lower()]


def admits(access: dict[str, Any], caller: str) -> bool:
    if access["audience"] == "public":
        return True
    if access["audience"] == "customer":
        return caller == "a customer"
    return caller.removeprefix("staff of ") in access["groups"]


@cache
def first_valid_request(method: str, path: str) -> tuple[dict[str, str], dict[str, str], Any]:
    """(path parameters, query, body) of the first request schemathesis generates: valid, the same every run."""
    cases: list[Any] = []

    @given(SCHEMA[path][method].as_strategy(generation_mode=GenerationMode.POSITIVE))
    @settings(
        max_examples=1,
        phases=[Phase.generate],
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def collect(case: Any) -> None:
        cases.append(case)

    collect()
    case = cases[0]
    query = {name: _query_text(value) for name, value in (case.query or {}).items()}
    body = case.body if isinstance(case.body, dict | list) else None
    return {k: str(v) for k, v in (case.path_parameters or {}).items()}, query, body


def _query_text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def call(
    method: str,
    path: str,
    caller: str,
    lambda_context: Any,
    *,
    body: Any = None,
    parameters: tuple[dict[str, str], dict[str, str]] | None = None,
) -> tuple[int, dict[str, Any], SentinelDeps]:
    path_parameters, query = parameters or first_valid_request(method, path)[:2]
    claims = CALLERS[caller]
    event = api_request(
        method, path, path_parameters=path_parameters or None, query=query or None, body=body, **(claims or {})
    )
    if claims is None:
        del event["requestContext"]["authorizer"]
    engine = operation_of(method, path)["tags"][0]
    app = importlib.import_module(f"functions.{engine}.api").app
    sentinel = SentinelDeps()
    app.append_context(deps=sentinel)
    response = app.resolve(event, lambda_context)
    text = response.get("body") or ""
    try:
        answer = json.loads(text) if text else {}
    except ValueError:
        answer = {}
    return response["statusCode"], answer if isinstance(answer, dict) else {}, sentinel


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_caller_gets_what_the_operations_declaration_says(method: str, path: str, lambda_context: Any) -> None:
    access = operation_of(method, path)[ACCESS_EXTENSION]
    body = first_valid_request(method, path)[2]
    answers = {}
    for caller in CALLERS:
        # When each kind of caller sends the operation a valid request
        status, answer, sentinel = call(method, path, caller, lambda_context, body=body)
        answers[caller] = status
        if admits(access, caller):
            # Then a caller the declaration admits is not refused as a caller, and nothing fails before the service
            assert status not in {401, 403} or access["audience"] == "public", f"{caller}: {status} {answer}"
            assert status < 500 or sentinel.reached, f"{caller}: {status} {answer}"
        else:
            # Then anyone else is refused as a caller (401 without a token, 403 with one), before anything is read
            assert status == (401 if caller == "no token" else 403), f"{caller}: {status} {answer}"
            assert not sentinel.reached, f"{caller} reached the service"
            assert "errors" not in answer, f"{caller}: the body was validated before the caller was refused"
    if access["audience"] == "public":
        # A public operation's answer does not depend on who calls it
        assert len(set(answers.values())) == 1, answers


def _admitted_caller(access: dict[str, Any]) -> str:
    return next(caller for caller in CALLERS if admits(access, caller))


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _properties(schema: dict[str, Any]) -> set[str]:
    schema = _resolve(schema)
    names = set(schema.get("properties", {}))
    for part in [*schema.get("allOf", []), *schema.get("oneOf", []), *schema.get("anyOf", [])]:
        names |= _properties(part)
    return names


def _answer_only_fields(operation: dict[str, Any], body_schema: dict[str, Any]) -> list[str]:
    """Fields the operation's success answer has and its body does not take: set by the server only."""
    answer_fields: set[str] = set()
    for status, response in operation["responses"].items():
        if status.startswith("2"):
            schema = (response.get("content") or {}).get("application/json", {}).get("schema")
            if schema:
                answer_fields |= _properties(schema)
    return sorted(answer_fields - _properties(body_schema))


BODY_OPERATIONS = [
    (method, path)
    for method, path in OPERATIONS
    if "application/json" in (operation_of(method, path).get("requestBody") or {}).get("content", {})
]


@pytest.mark.parametrize(("method", "path"), BODY_OPERATIONS, ids=[f"{m} {p}" for m, p in BODY_OPERATIONS])
def test_a_body_with_a_field_the_operation_does_not_take_is_refused(
    method: str, path: str, lambda_context: Any
) -> None:
    operation = operation_of(method, path)
    body_schema = operation["requestBody"]["content"]["application/json"]["schema"]
    caller = _admitted_caller(operation[ACCESS_EXTENSION])
    valid = first_valid_request(method, path)[2]
    assert isinstance(valid, dict), f"{method} {path}: the body is not an object"
    for field in ["not_a_field", *_answer_only_fields(operation, body_schema)]:
        # Given a valid body with one field more: unknown, or one only the server sets (read-only)
        body = {**valid, field: valid.get(field, "x")} if field not in valid else None
        if body is None:
            continue  # the body takes this field as well: not read-only here
        # When an admitted caller sends it
        status, answer, sentinel = call(method, path, caller, lambda_context, body=body)
        # Then it is a 422 naming the field, and nothing was done
        assert status == 422, f"{field}: {status} {answer}"
        assert any(error["field"].rsplit(".", 1)[-1] == field for error in answer.get("errors", [])), answer
        assert not sentinel.reached
