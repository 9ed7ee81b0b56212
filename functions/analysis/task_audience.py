"""The steps of an audience build (Step Functions `lambda:invoke`): plan, shard, finish, fail."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.analysis.audiences import AudienceSteps
from ecrm.analysis.wiring import AnalysisConfig, audience_steps_for, flush_lake
from ecrm.core.config import load_config
from ecrm.core.observability import Observability

config = load_config(AnalysisConfig)
obs = Observability(config)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: AudienceSteps | None = None) -> dict[str, Any]:
    steps = injected or audience_steps_for(config)
    try:
        return _run(steps, event)
    finally:
        flush_lake(steps.membership)


def _run(steps: AudienceSteps, event: dict[str, Any]) -> dict[str, Any]:
    action = event.get("action")
    if action == "plan":
        return steps.plan(event["audience_id"])
    if action == "shard":
        return steps.shard(event["audience_id"], int(event["index"]), int(event["count"]))
    if action == "finish":
        return steps.finish(event["audience_id"], list(event["results"]))
    if action == "fail":
        return steps.fail(event["audience_id"], event.get("error") or {})
    raise ValueError(f"unknown audience step {action!r}")
