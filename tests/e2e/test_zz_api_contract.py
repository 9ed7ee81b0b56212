"""The API document against the running local API: the authorization matrix end to end, customer
isolation, and a bounded schemathesis run (no 5xx, no answer outside the document).

Named to run last in the e2e session: the fuzzing creates sources, offers, segments and catalogue
items that the other e2e tests, which share the one local cloud, do not expect.

The in-process matrix (tests/unit/test_authorization_matrix.py) covers every caller kind on every
operation; here each operation is called once per caller the gateway or the function refuses, which
proves the gateway's authorizer and the function's declaration agree on the real wiring.
"""

from __future__ import annotations

import http.client
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import schemathesis
from ecrm.core.auth import ACCESS_EXTENSION
from ecrm.core.openapi import operations
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from functions import api_document
from tests.unit.test_authorization_matrix import first_valid_request

DOCUMENT: dict[str, Any] = json.loads(api_document.DOCUMENT.read_text(encoding="utf-8"))
OPERATIONS = sorted((method, path, operation) for method, path, operation in operations(DOCUMENT))
# A few examples per operation and mode keep the run under a minute on the local cloud; derandomized, so
# a failure found once is found again.
EXAMPLES = {GenerationMode.POSITIVE: 3, GenerationMode.NEGATIVE: 2}


def _url(path: str, path_parameters: dict[str, str], query: dict[str, str]) -> str:
    for name, value in path_parameters.items():
        path = path.replace("{" + name + "}", value)
    return path + (f"?{urlencode(query)}" if query else "")


def _raw(tour: Any, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    target = urlsplit(tour.api)
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_the_local_api_serves_the_committed_document(tour: Any) -> None:
    result = tour.call("GET", "/openapi.json")
    assert result.status == 200
    served = {k: v for k, v in result.body.items() if k != "servers"}
    assert served == {k: v for k, v in DOCUMENT.items() if k != "servers"}
    docs = tour.call("GET", "/docs")
    assert docs.status == 200


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "BREW"])
def test_a_method_no_route_has_is_the_gateways_problem_not_an_html_page(tour: Any, method: str) -> None:
    status, headers, body = _raw(tour, method, "/health")
    assert status == 404, body
    assert headers["Content-Type"] == "application/problem+json"
    assert json.loads(body)["type"].endswith("/route-not-found")


def test_every_operation_refuses_the_callers_its_declaration_keeps_out(tour: Any) -> None:
    customer = tour.token(customer_id="cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D")
    agent = tour.token(group="agent")
    wrong: list[str] = []
    for method, path, operation in OPERATIONS:
        access = operation[ACCESS_EXTENSION]
        if access["audience"] == "public":
            continue
        path_parameters, query, body = first_valid_request(method, path)
        url = _url(path, path_parameters, query)
        # no token: the gateway's authorizer
        refused = [(None, 401)]
        # a token the function's declaration refuses
        if access["audience"] == "staff":
            refused.append((customer, 403))
        else:
            refused.append((agent, 403))
        for token, expected in refused:
            result = tour.call(method, url, token=token, body=body)
            if result.status != expected:
                wrong.append(f"{method} {path} ({'no token' if token is None else 'token'}): {result.status}")
    assert not wrong, "\n".join(wrong)


def _customer(tour: Any, admin: str, tag: str) -> tuple[str, str]:
    email = f"{tag}-{uuid.uuid4().hex[:10]}@example.com"
    result = tour.call(
        "POST",
        "/customers",
        token=admin,
        body={"identities": [{"type": "email", "value": email}], "source": "shop", "attributes": {"first_name": tag}},
    )
    assert result.status == 201, result.body
    return result.body["customer_id"], email


def test_a_second_customer_never_reads_or_changes_the_first_customers_data(tour: Any) -> None:
    # Given two customers, A and B, each with a token of their own
    admin = tour.token(group="admin")
    customer_a, email_a = _customer(tour, admin, "isolation-a")
    customer_b, _ = _customer(tour, admin, "isolation-b")
    token_b = tour.token(customer_id=customer_b)
    before = tour.call("GET", f"/customers/{customer_a}/export", token=admin)
    assert before.status == 200
    # When B calls every /me operation, and every operation about a customer id with A's id
    leaks: list[str] = []
    for method, path, _ in OPERATIONS:
        mine = path == "/me" or path.startswith("/me/")
        about_a_customer = "{customer_id}" in path
        if not (mine or about_a_customer):
            continue
        path_parameters, query, body = first_valid_request(method, path)
        if about_a_customer:
            path_parameters = {**path_parameters, "customer_id": customer_a}
        result = tour.call(method, _url(path, path_parameters, query), token=token_b, body=body)
        # (a refusal's `instance` is the path B sent, A's id included: an echo, not A's data)
        answer = {k: v for k, v in result.body.items() if k != "instance"} if isinstance(result.body, dict) else {}
        text = json.dumps(answer if isinstance(result.body, dict) else result.body)
        if about_a_customer and result.status != 403:
            leaks.append(f"{method} {path} with A's id: {result.status}")
        if result.status >= 500:
            leaks.append(f"{method} {path}: {result.status}")
        if customer_a in text or email_a in text:
            leaks.append(f"{method} {path}: the answer names A")
    # Then nothing of A was in B's answers, and A's data is what it was
    assert not leaks, "\n".join(leaks)
    after = tour.call("GET", f"/customers/{customer_a}/export", token=admin)
    assert {**after.body, "exported_at": None} == {**before.body, "exported_at": None}


def _fuzz(strategy: Any, examples: int, base_url: str, headers: dict[str, str], checks: list[Any]) -> None:
    @given(strategy)
    @settings(
        max_examples=examples,
        phases=[Phase.explicit, Phase.generate],
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, checks=checks, timeout=30)

    run()


def test_a_bounded_schemathesis_run_finds_no_5xx_and_no_answer_outside_the_document(tour: Any) -> None:
    schema = schemathesis.openapi.from_dict(DOCUMENT)
    tokens = {
        "public": None,
        "customer": tour.token(customer_id="cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2E"),
        "staff": tour.token(group="admin"),  # admin is in every staff operation's groups
    }
    checks = [
        schemathesis.checks.not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    failures: list[str] = []
    started = time.monotonic()
    for method, path, operation in OPERATIONS:
        token = tokens[operation[ACCESS_EXTENSION]["audience"]]
        headers = {"Authorization": token} if token else {}
        for mode, examples in EXAMPLES.items():
            try:
                _fuzz(schema[path][method].as_strategy(generation_mode=mode), examples, tour.api, headers, checks)
            except Unsatisfiable:
                continue  # an operation without parameters or a body has no invalid request to make
            except Exception as failure:
                failures.append(f"{method} {path} ({mode.value}): {failure}"[:2000])
    elapsed = time.monotonic() - started
    assert not failures, f"{len(failures)} operations failed ({elapsed:.0f}s):\n\n" + "\n\n".join(failures)
