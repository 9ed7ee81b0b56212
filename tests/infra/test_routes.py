"""The routes API Gateway authorizes are exactly the routes the platform function serves.

API Gateway authorizes per method before the function runs, so a route served by the resolver
but not declared in `infra/engines/platform.py` would be unreachable, and a declared route the
resolver lacks would be a 404 behind a valid token.
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType

import pytest

from infra.constructs.api_function import ApiRoute
from infra.engines import (
    analysis,
    broadcast,
    campaigns,
    collect,
    customers,
    insights,
    personalization,
    platform,
    transactions,
)
from tests.infra.conftest import Synthesized, references

pytestmark = pytest.mark.xdist_group("infra")

# engine -> the routes its construct declares (one API function per engine)
ENGINES: dict[str, tuple[ApiRoute, ...]] = {
    "platform": platform.ROUTES,
    "customers": customers.ROUTES,
    "collect": collect.ROUTES,
    "analysis": analysis.ROUTES,
    "broadcast": broadcast.ROUTES,
    "campaigns": campaigns.ROUTES,
    "insights": insights.ROUTES,
    "personalization": personalization.ROUTES,
    "transactions": transactions.ROUTES,
}


def engine_api(engine: str) -> ModuleType:
    """The function module; it reads its environment at import (tests/conftest.py sets it)."""
    return importlib.import_module(f"functions.{engine}.api")


def served_routes(module: ModuleType) -> set[tuple[str, str]]:
    app = module.app
    return {
        (route.method.upper(), re.sub(r"<(\w+)>", r"{\1}", route.path))
        for route in [*app._static_routes, *app._dynamic_routes]
    }


def declared(routes: tuple[ApiRoute, ...]) -> set[tuple[str, str]]:
    return {(route.method.upper(), route.path) for route in routes}


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_declared_routes_are_unique(engine: str) -> None:
    assert len(declared(ENGINES[engine])) == len(ENGINES[engine])


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_declared_routes_equal_the_resolver_routes(engine: str) -> None:
    served = served_routes(engine_api(engine))
    expected = declared(ENGINES[engine])
    assert served, "the resolver serves no route"
    assert expected == served, f"declared only: {sorted(expected - served)}; served only: {sorted(served - expected)}"


def test_template_methods_are_the_declared_routes(synthesized: Synthesized) -> None:
    methods = synthesized.api_methods()
    lambda_methods = {k for k, p in methods.items() if p["Integration"]["Type"] != "MOCK"}
    assert lambda_methods == set().union(*(declared(r) for r in ENGINES.values()))


def test_routes_called_from_browsers_have_a_cors_preflight(synthesized: Synthesized) -> None:
    methods = synthesized.api_methods()
    for routes in ENGINES.values():
        for route in routes:
            preflight = methods.get(("OPTIONS", route.path))
            if route.cors:
                assert preflight is not None, route
                assert preflight["Integration"]["Type"] == "MOCK", route
            else:
                assert preflight is None, route


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_template_methods_have_the_declared_auth_and_reach_their_engine_function(
    synthesized: Synthesized, engine: str
) -> None:
    api_functions = {
        lid
        for lid, fn in synthesized.resources("AWS::Lambda::Function").items()
        if fn["Metadata"] == {"ecrm:source": f"functions/{engine}", "ecrm:module": "api"}
    }
    assert len(api_functions) == 1
    methods = synthesized.api_methods()
    for route in ENGINES[engine]:
        props = methods[(route.method, route.path)]
        expected = "NONE" if route.public else "COGNITO_USER_POOLS"
        assert props["AuthorizationType"] == expected, route
        assert props["Integration"]["Type"] == "AWS_PROXY", route
        assert set(references(props["Integration"]["Uri"])) == api_functions, route
