"""`GET /insights/live` through the function: staff read the counters; a bad window is a 422 naming it."""

from __future__ import annotations

import json
from typing import Any

from functions.insights import api, on_outcome_event
from tests import outcome_counts
from tests.integration.insights.conftest import Engine, window
from tests.samples import api_request, sqs_batch

serve: Any = api.handler
consume: Any = on_outcome_event.handler


def get_live(engine: Engine, lambda_context: Any, query: dict[str, str] | None = None, **claims: Any) -> Any:
    event = api_request("GET", "/insights/live", query=query, **claims)
    return serve(event, lambda_context, engine.service)


def test_an_analyst_reads_the_last_hour(engine: Engine, lambda_context: Any) -> None:
    consume(
        sqs_batch([window("win-1", outcome_counts.message_event("MessageSent", "m1"))]), lambda_context, engine.service
    )
    response = get_live(engine, lambda_context, groups="analyst")
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert (body["window_minutes"], body["total"]["sent"]) == (60, 1)
    assert body["campaigns"][0] | {"rates": {}} == {
        **body["campaigns"][0],
        "campaign_id": "cmp_1",
        "variant": "A",
        "rates": {},
    }


def test_a_window_past_a_day_is_a_422_and_a_customer_or_an_agent_is_refused(
    engine: Engine, lambda_context: Any
) -> None:
    response = get_live(engine, lambda_context, {"window": "1441"})
    assert response["statusCode"] == 422
    assert response["multiValueHeaders"]["Content-Type"] == ["application/problem+json"]
    assert "window" in response["body"]
    refused = get_live(engine, lambda_context, groups=None, customer_id="cus_1")
    assert refused["statusCode"] == 403
    assert get_live(engine, lambda_context, groups="agent")["statusCode"] == 403
