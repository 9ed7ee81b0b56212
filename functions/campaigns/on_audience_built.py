"""The analysis engine's `AudienceBuilt`: the segment's latest audience manifest, which segment campaigns read."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.analysis.models import AudienceBuilt
from ecrm.campaigns.store import CampaignStore
from ecrm.campaigns.wiring import CampaignsConfig, store_for
from ecrm.core.config import load_config
from ecrm.core.consumer import EventConsumer, ReceivedEvent
from ecrm.core.observability import Observability

config = load_config(CampaignsConfig)
obs = Observability(config)
consumer = EventConsumer(obs.logger, accepts=[AudienceBuilt])


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: CampaignStore | None = None) -> dict[str, Any]:
    store = injected or store_for(config)

    def on_event(received: ReceivedEvent[Any]) -> None:
        built: AudienceBuilt = received.data
        store.record_audience(built.segment_id, built.audience_id, built.manifest, built.count, built.built_at)

    return consumer(event, context, on_event)
