"""Saga step Reserve: the vendor holds the product for the purchase (a refusal is compensated, an outage retried)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core.config import load_config
from ecrm.core.observability import Observability
from ecrm.transactions.purchase_service import PurchaseService
from ecrm.transactions.purchase_wiring import PurchaseConfig, purchase_service_for
from ecrm.transactions.purchases import SagaStepInput

config = load_config(PurchaseConfig)
obs = Observability(config)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: PurchaseService | None = None) -> dict[str, Any]:
    step = SagaStepInput.model_validate(event)
    purchase = (injected or purchase_service_for(config)).reserve(step.purchase_id)
    return {"purchase_id": purchase.purchase_id, "status": purchase.status}
