"""The steps of a campaign run (Step Functions `lambda:invoke`): `fire` (an execution the schedule started
takes the campaign's next run), freeze, send_chunk, pick_winner (an auto-winner's test phase is over), finish."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.campaigns.runs import CampaignRunSteps
from ecrm.campaigns.service import CampaignService
from ecrm.campaigns.wiring import CampaignsConfig, campaign_service_for, run_steps_for
from ecrm.core.config import load_config
from ecrm.core.observability import Observability

config = load_config(CampaignsConfig)
obs = Observability(config)


@obs.entrypoint()
def handler(
    event: dict[str, Any],
    context: LambdaContext,
    injected: CampaignRunSteps | None = None,
    injected_service: CampaignService | None = None,
) -> dict[str, Any]:
    action = event.get("action")
    campaign_id = str(event["campaign_id"])
    if action == "fire":
        campaign = (injected_service or campaign_service_for(config)).fire(campaign_id, correlation_id=None)
        return {"started": campaign is not None, "run": campaign.run if campaign else 0}
    steps = injected or run_steps_for(config)
    run = int(event["run"])
    if action == "freeze":
        return steps.freeze(campaign_id, run)
    if action == "send_chunk":
        customer_ids = [str(c) for c in event["customer_ids"]]
        phase = str(event.get("phase") or "all")
        return steps.send_chunk(campaign_id, run, int(event["chunk"]), customer_ids, phase)
    if action == "pick_winner":
        return steps.pick_winner(campaign_id, run)
    if action == "finish":
        return steps.finish(campaign_id, run, int(event["chunks"]))
    raise ValueError(f"unknown campaign run step {action!r}")
