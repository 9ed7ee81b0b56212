"""The API document holds exactly the routes API Gateway declares: what clients and fuzzers read is what is deployed.

The document is the committed `functions/platform/openapi.json` (kept equal to the code by
tests/unit/test_api_document.py); the routes are the template's Lambda-backed methods (a MOCK
method is API Gateway's own CORS preflight, not an operation).
"""

from __future__ import annotations

import json

import pytest
from ecrm.core.auth import ACCESS_EXTENSION
from ecrm.core.openapi import SECURITY_SCHEME, operations

from functions import api_document
from tests.infra.conftest import Synthesized

pytestmark = pytest.mark.xdist_group("infra")


def _document() -> dict:
    return json.loads(api_document.DOCUMENT.read_text(encoding="utf-8"))


def test_every_route_of_the_template_is_in_the_document_and_nothing_else(synthesized: Synthesized) -> None:
    # Given the template's routes and the committed document
    template_routes = {
        key for key, props in synthesized.api_methods().items() if props["Integration"]["Type"] != "MOCK"
    }
    documented = {(method, path) for method, path, _ in operations(_document())}
    # Then they are the same set
    assert documented == template_routes, (
        f"in the template only: {sorted(template_routes - documented)}; "
        f"in the document only: {sorted(documented - template_routes)}"
    )


def test_an_operation_needs_a_token_in_the_document_exactly_when_the_gateway_requires_one(
    synthesized: Synthesized,
) -> None:
    methods = synthesized.api_methods()
    for method, path, operation in operations(_document()):
        at_the_gateway = methods[(method, path)]["AuthorizationType"]
        public = operation[ACCESS_EXTENSION]["audience"] == "public"
        assert at_the_gateway == ("NONE" if public else "COGNITO_USER_POOLS"), (method, path)
        assert operation["security"] == ([] if public else [{SECURITY_SCHEME: []}]), (method, path)
