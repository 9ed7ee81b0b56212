"""The hourly birthday bonus (scheduled, or `ecrm local invoke`): customers whose birthday it is now in their
own zone earn the rules' birthday points, once per year.

Re-running it changes nothing: each bonus is recorded under `birthday:<year>`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core.config import load_config
from ecrm.core.observability import Observability
from ecrm.transactions.loyalty_birthdays import grant_birthday_bonuses
from ecrm.transactions.loyalty_service import LoyaltyService
from ecrm.transactions.loyalty_zones import TimeZones
from ecrm.transactions.wiring import TransactionsConfig, loyalty_service_for, time_zones_for

config = load_config(TransactionsConfig)
obs = Observability(config)


@obs.entrypoint()
def handler(
    event: dict[str, Any],
    context: LambdaContext,
    injected: LoyaltyService | None = None,
    zones: TimeZones | None = None,
) -> dict[str, Any]:
    given = grant_birthday_bonuses(injected or loyalty_service_for(config), zones or time_zones_for(config))
    obs.logger.info("birthday points given", extra={"points": given})
    return {"birthday_points": given}
