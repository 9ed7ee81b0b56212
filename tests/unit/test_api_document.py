"""The API's one OpenAPI document: generated from every engine's code, committed current, served by the platform.

`functions/platform/openapi.json` is what `GET /openapi.json` serves, what `/docs` shows and what the
console's typed client and the fuzzers are built from; these tests keep it equal to the code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ecrm.core.auth import ACCESS_EXTENSION
from ecrm.core.errors import PROBLEM_CONTENT_TYPE
from ecrm.core.openapi import SECURITY_SCHEME, merge_documents, operations, render
from openapi_spec_validator import validate

from functions import api_document
from tests.samples import api_request

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return api_document.build()


def test_the_committed_document_is_the_one_the_code_generates(document: dict[str, Any]) -> None:
    # Given the document generated from every engine's resolver now
    # Then the committed copy (served, and read by clients and fuzzers) is byte for byte the same
    committed = api_document.DOCUMENT.read_text(encoding="utf-8")
    assert committed == render(document), "functions/platform/openapi.json is stale: run `make openapi`"


def test_the_document_is_valid_openapi_31(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"] == "3.1.0"


def test_every_engine_with_a_rest_front_is_in_the_document(document: dict[str, Any]) -> None:
    tags = {tag for _, _, operation in operations(document) for tag in operation["tags"]}
    assert (
        tags
        == set(api_document.engines())
        == {
            "analysis",
            "broadcast",
            "campaigns",
            "collect",
            "customers",
            "insights",
            "personalization",
            "platform",
            "transactions",
        }
    )


def test_each_operations_security_and_errors_follow_its_access(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        access = operation[ACCESS_EXTENSION]
        responses = operation["responses"]
        # problem+json for everything that is not the operation's own success
        assert responses["default"] == {"$ref": "#/components/responses/Problem"}, (method, path)
        assert responses["422"] == {"$ref": "#/components/responses/ValidationProblem"}, (method, path)
        assert any(code.startswith("2") for code in responses), (method, path)
        if access["audience"] == "public":
            assert operation["security"] == [], (method, path)
            assert "401" not in responses, (method, path)
        else:
            assert operation["security"] == [{SECURITY_SCHEME: []}], (method, path)
            assert {"401", "403"} <= set(responses), (method, path)
        if access["audience"] == "customer":
            assert path == "/me" or path.startswith("/me/"), f"{method} {path}: customer routes live under /me"
            assert "{customer_id}" not in path, (method, path)
    problem = document["components"]["responses"]["Problem"]["content"]
    assert list(problem) == [PROBLEM_CONTENT_TYPE]
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_operation_ids_are_unique(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))


def _tiny(schemas: dict[str, Any], path: str) -> dict[str, Any]:
    operation = {
        "operationId": path.strip("/"),
        "responses": {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}}},
        ACCESS_EXTENSION: {"audience": "staff", "groups": ["admin"]},
    }
    return {"paths": {path: {"get": operation}}, "components": {"schemas": schemas}}


def test_a_schema_name_two_engines_define_differently_is_renamed_in_each_deterministically() -> None:
    # Given two engines that both call a different schema "Thing", and agree on "Shared"
    thing_a = {"type": "object", "properties": {"a": {"type": "string"}}}
    thing_b = {"type": "object", "properties": {"b": {"type": "integer"}}}
    shared = {"type": "string"}
    documents = {
        "beta": _tiny({"Thing": thing_b, "Shared": shared}, "/b"),
        "alpha": _tiny({"Thing": thing_a, "Shared": shared}, "/a"),
    }
    # When merged, in either order
    merged = merge_documents(documents, title="t", version="1")
    again = merge_documents(dict(reversed(list(documents.items()))), title="t", version="1")
    # Then each engine keeps its own, under its engine's name, and its references follow; "Shared" is one schema
    schemas = merged["components"]["schemas"]
    assert schemas["AlphaThing"] == thing_a
    assert schemas["BetaThing"] == thing_b
    assert "Thing" not in schemas
    assert schemas["Shared"] == shared
    ref_a = merged["paths"]["/a"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref_a == "#/components/schemas/AlphaThing"
    assert render(merged) == render(again)


def test_an_operation_two_engines_serve_is_an_error() -> None:
    documents = {"alpha": _tiny({"Thing": {}}, "/same"), "beta": _tiny({"Thing": {}}, "/same")}
    with pytest.raises(ValueError, match="GET /same is served by two engines"):
        merge_documents(documents, title="t", version="1")


def test_an_operation_without_an_access_declaration_cannot_be_merged() -> None:
    document = _tiny({"Thing": {}}, "/a")
    del document["paths"]["/a"]["get"][ACCESS_EXTENSION]
    with pytest.raises(ValueError, match="declares no access"):
        merge_documents({"alpha": document}, title="t", version="1")


def test_the_platform_serves_the_document_without_importing_another_engine() -> None:
    # Given a fresh interpreter, as a cold start
    probe = (
        "import sys, functions.platform.api as api\n"
        "others = sorted(m for m in sys.modules if m.split('.')[:2] in "
        "(['ecrm', 'customers'], ['ecrm', 'collect'], ['ecrm', 'analysis'], ['ecrm', 'personalization']))\n"
        "assert not others, others\n"
        "assert api._api_document()['paths']\n"
    )
    env = {
        "PLATFORM_TABLE_NAME": "t",
        "EVENT_BUS_NAME": "b",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONPATH": f"{REPO_ROOT}/shared:{REPO_ROOT}",
    }
    # When the platform's API module is imported and reads the document, Then no other engine was imported
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_docs_is_swagger_ui_on_the_document_with_nothing_from_a_cdn(lambda_context: Any) -> None:
    from functions.platform import api

    # Given the public request for the page
    event = api_request("GET", "/docs", groups=None)
    del event["requestContext"]["authorizer"]
    # When
    response = api.app.resolve(event, lambda_context)
    # Then it is Swagger UI inlined, reading the document next to it
    assert response["statusCode"] == 200
    page = response["body"]
    assert response["multiValueHeaders"]["Content-Type"][0].startswith("text/html")
    assert "SwaggerUIBundle" in page
    assert "new URL('openapi.json'" in page
    assert "<script src=" not in page
    assert "<link" not in page
    assert "</script" not in page.split("<script>", 1)[1].rsplit("</script>", 2)[0]


def test_render_is_stable_json() -> None:
    text = render({"b": 1, "a": [1, 2]})
    assert json.loads(text) == {"b": 1, "a": [1, 2]}
    assert text.endswith("}\n")
