"""The campaigns API on moto: who may call what, bad bodies refused with nothing saved, the journeys' routes."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.campaigns.conftest import Engine
from tests.samples import api_request
from tests.unit.campaigns.factories import EMAIL

CAMPAIGN = {
    "name": "Spring sale",
    "audience": {"customer_ids": ["c1", "c2", "c3"]},
    "variants": [{"key": "a", "share": 50, "content": EMAIL}, {"key": "b", "share": 40, "content": EMAIL}],
    "holdout_share": 10,
}
JOURNEY = {
    "name": "Welcome",
    "trigger": {"event": "CustomerCreated"},
    "steps": [{"type": "send", "id": "hello", "content": EMAIL}],
}


def call(
    engine: Engine,
    context: Any,
    method: str,
    resource: str,
    *,
    body: Any = None,
    groups: str = "marketer",
    path: dict[str, str] | None = None,
) -> tuple[int, Any]:
    from functions.campaigns import api

    event = api_request(method, resource, path_parameters=path, body=body, groups=groups)
    handler: Any = api.handler
    response = handler(event, context, api.Deps(engine.campaigns, engine.journeys))
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def test_a_marketer_defines_dry_runs_and_launches_an_analyst_reads_the_report(
    engine: Engine, lambda_context: Any
) -> None:
    status, created = call(engine, lambda_context, "POST", "/campaigns", body=CAMPAIGN)
    assert status == 201, created
    path = {"campaign_id": created["campaign_id"]}
    status, dry = call(engine, lambda_context, "POST", "/campaigns/{campaign_id}/dry-run", path=path)
    assert (status, dry["audience"]) == (200, 3)
    status, campaign = call(engine, lambda_context, "POST", "/campaigns/{campaign_id}/launch", path=path)
    assert (status, campaign["status"], campaign["run"]) == (200, "running", 1)
    status, report = call(engine, lambda_context, "GET", "/campaigns/{campaign_id}/report", path=path, groups="analyst")
    assert status == 200
    assert [a["arm"] for a in report["arms"]] == ["a", "b", "holdout"]
    status, page = call(engine, lambda_context, "GET", "/campaigns", groups="analyst")
    assert [c["campaign_id"] for c in page["items"]] == [created["campaign_id"]]


def test_an_analyst_may_not_launch_and_an_agent_may_not_read(engine: Engine, lambda_context: Any) -> None:
    _, created = call(engine, lambda_context, "POST", "/campaigns", body=CAMPAIGN)
    path = {"campaign_id": created["campaign_id"]}
    assert (
        call(engine, lambda_context, "POST", "/campaigns/{campaign_id}/launch", path=path, groups="analyst")[0] == 403
    )
    assert call(engine, lambda_context, "GET", "/campaigns/{campaign_id}", path=path, groups="agent")[0] == 403


def test_bad_input_is_a_clear_4xx_and_nothing_is_saved(engine: Engine, lambda_context: Any) -> None:
    status, problem = call(engine, lambda_context, "POST", "/campaigns", body={**CAMPAIGN, "holdout_share": 30})
    assert status == 422
    assert "add up to 120" in json.dumps(problem)
    assert engine.campaigns.page(10, None).items == []
    missing = {"campaign_id": "cmp_nothing"}
    assert call(engine, lambda_context, "GET", "/campaigns/{campaign_id}", path=missing)[0] == 404
    status, problem = call(engine, lambda_context, "POST", "/campaigns/{campaign_id}/resume", path=missing)
    assert status == 404


def test_journeys_are_defined_activated_and_reported(engine: Engine, lambda_context: Any) -> None:
    status, journey = call(engine, lambda_context, "POST", "/journeys", body=JOURNEY)
    assert (status, journey["status"]) == (201, "draft")
    path = {"journey_id": journey["journey_id"]}
    status, active = call(engine, lambda_context, "POST", "/journeys/{journey_id}/activate", path=path)
    assert (status, active["status"]) == (200, "active")
    status, report = call(engine, lambda_context, "GET", "/journeys/{journey_id}/report", path=path, groups="analyst")
    assert (status, report["entered"]) == (200, 0)
    status, listed = call(engine, lambda_context, "GET", "/journeys")
    assert [j["journey_id"] for j in listed["items"]] == [journey["journey_id"]]
    bad = {**JOURNEY, "steps": [{"type": "wait", "id": "w", "until_event": "OrderPlaced"}]}
    assert call(engine, lambda_context, "POST", "/journeys", body=bad)[0] == 422
