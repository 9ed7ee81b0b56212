"""Saga step RequestConfirmation (`.waitForTaskToken`): keeps the execution's task token on the purchase and
asks the vendor to confirm; the execution waits until the vendor's callback resumes it or the wait times out."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core.config import load_config
from ecrm.core.errors import InvalidInput
from ecrm.core.observability import Observability
from ecrm.transactions.purchase_service import PurchaseService
from ecrm.transactions.purchase_wiring import PurchaseConfig, purchase_service_for
from ecrm.transactions.purchases import SagaStepInput

config = load_config(PurchaseConfig)
obs = Observability(config)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: PurchaseService | None = None) -> dict[str, Any]:
    step = SagaStepInput.model_validate(event)
    if not step.task_token:
        raise InvalidInput("the confirmation request is invoked with the execution's task token")
    purchase = (injected or purchase_service_for(config)).request_confirmation(step.purchase_id, step.task_token)
    return {"purchase_id": purchase.purchase_id, "status": purchase.status}
