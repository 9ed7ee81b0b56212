"""What API Gateway lets through without a token is exactly what the engines declare public.

The gateway checks the token (Cognito authorizer) and the function checks the route's declared
access (`EngineApi.access_rules`); a route public at one and not the other is either unreachable or
unprotected at the gateway, so the two tables must agree route by route.
"""

from __future__ import annotations

import re

import pytest

from tests.infra.test_routes import ENGINES, engine_api

pytestmark = pytest.mark.xdist_group("infra")


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_a_route_is_public_at_the_gateway_exactly_when_its_engine_declares_it_public(engine: str) -> None:
    declared = {
        (method, re.sub(r"<(\w+)>", r"{\1}", rule)): access.audience == "public"
        for (method, rule), access in engine_api(engine).app.access_rules.items()
    }
    at_the_gateway = {(route.method.upper(), route.path): route.public for route in ENGINES[engine]}
    assert declared == at_the_gateway
