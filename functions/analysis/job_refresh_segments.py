"""On a schedule: membership builds for segments whose rules change with time passing alone."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.analysis.segments import SegmentService
from ecrm.analysis.wiring import AnalysisConfig, segments_for
from ecrm.core.config import load_config
from ecrm.core.observability import Observability

config = load_config(AnalysisConfig)
obs = Observability(config)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: SegmentService | None = None) -> dict[str, Any]:
    builds = (injected or segments_for(config)).refresh_time_relative()
    return {"started": [b.audience_id for b in builds]}
