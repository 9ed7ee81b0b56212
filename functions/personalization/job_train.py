"""The recommender training job (scheduled, or `ecrm local invoke`): the lake's interactions -> a new version.

Runs with the ml layer (numpy, scipy). The event may hold `{"days": N}`, how far back to read (default
`PERSONALIZATION_TRAINING_DAYS`). Returns the training report: version, held-out metrics against popularity,
whether it now serves and why.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core.config import load_config
from ecrm.core.observability import Observability
from ecrm.personalization.training import TrainingJob
from ecrm.personalization.wiring import PersonalizationConfig, training_job_for

config = load_config(PersonalizationConfig)
obs = Observability(config)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: TrainingJob | None = None) -> dict[str, Any]:
    job = injected or training_job_for(config)
    days = event.get("days") if isinstance(event, dict) else None
    report = job.run(days=int(days) if days else None)
    obs.logger.info("recommender trained", extra={k: v for k, v in report.items() if k != "data"})
    return report
