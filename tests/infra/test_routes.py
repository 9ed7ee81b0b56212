"""The routes API Gateway authorizes are exactly the routes the platform function serves.

API Gateway authorizes per method before the function runs, so a route served by the resolver
but not declared in `infra/engines/platform.py` would be unreachable, and a declared route the
resolver lacks would be a 404 behind a valid token.
"""

from __future__ import annotations

import importlib
import os
import re
from types import ModuleType

import pytest

from infra.engines.platform import ROUTES
from tests.infra.conftest import Synthesized, references

pytestmark = pytest.mark.xdist_group("infra")

FUNCTION_ENV = {"EVENT_BUS_NAME": "ecrm", "PLATFORM_TABLE_NAME": "ecrm-platform", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def platform_api() -> ModuleType:
    """The function module; it reads its environment at import (tests/conftest.py sets it too)."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in FUNCTION_ENV.items():
            if not os.environ.get(name):  # real values win
                mp.setenv(name, value)
        return importlib.import_module("functions.platform.api")


def served_routes(module: ModuleType) -> set[tuple[str, str]]:
    app = module.app
    return {
        (route.method.upper(), re.sub(r"<(\w+)>", r"{\1}", route.path))
        for route in [*app._static_routes, *app._dynamic_routes]
    }


def declared_routes() -> set[tuple[str, str]]:
    return {(route.method.upper(), route.path) for route in ROUTES}


def test_declared_routes_are_unique() -> None:
    assert len(declared_routes()) == len(ROUTES)


def test_declared_routes_equal_the_resolver_routes(platform_api: ModuleType) -> None:
    served = served_routes(platform_api)
    assert served, "the resolver serves no route"
    assert declared_routes() == served, (
        f"declared only: {sorted(declared_routes() - served)}; served only: {sorted(served - declared_routes())}"
    )


def test_template_methods_are_the_declared_routes(synthesized: Synthesized) -> None:
    assert set(synthesized.api_methods()) == declared_routes()


def test_template_methods_have_the_declared_auth_and_reach_the_platform_function(synthesized: Synthesized) -> None:
    api_functions = {
        lid
        for lid, fn in synthesized.resources("AWS::Lambda::Function").items()
        if fn["Metadata"] == {"ecrm:source": "functions/platform", "ecrm:module": "api"}
    }
    assert len(api_functions) == 1
    methods = synthesized.api_methods()
    for route in ROUTES:
        props = methods[(route.method, route.path)]
        expected = "NONE" if route.public else "COGNITO_USER_POOLS"
        assert props["AuthorizationType"] == expected, route
        assert props["Integration"]["Type"] == "AWS_PROXY", route
        assert set(references(props["Integration"]["Uri"])) == api_functions, route
