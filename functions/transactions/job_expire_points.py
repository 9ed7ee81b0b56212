"""The daily points expiry (scheduled, or `ecrm local invoke`): lots due by today's date leave the accounts.

Re-running it on a day changes nothing: an account's expired lots are gone from it after the first run.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core.config import load_config
from ecrm.core.observability import Observability
from ecrm.transactions.loyalty_service import LoyaltyService
from ecrm.transactions.wiring import TransactionsConfig, loyalty_service_for

config = load_config(TransactionsConfig)
obs = Observability(config)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: LoyaltyService | None = None) -> dict[str, Any]:
    expired = (injected or loyalty_service_for(config)).expire_due()
    obs.logger.info("points expired", extra={"points": expired})
    return {"expired_points": expired}
