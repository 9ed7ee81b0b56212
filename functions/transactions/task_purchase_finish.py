"""The saga's ends: Complete (the confirmed purchase becomes a paid order, PurchaseBrokered), Compensate (the
failure named from the caught error) and MarkFailed (PurchaseFailed once refunded and released)."""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core.config import load_config
from ecrm.core.observability import Observability
from ecrm.transactions.purchase_service import PurchaseService
from ecrm.transactions.purchase_wiring import PurchaseConfig, purchase_service_for
from ecrm.transactions.purchases import SagaStepInput

config = load_config(PurchaseConfig)
obs = Observability(config)


class FinishInput(SagaStepInput):
    step: Literal["complete", "compensate", "fail"]


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: PurchaseService | None = None) -> dict[str, Any]:
    task = FinishInput.model_validate(event)
    service = injected or purchase_service_for(config)
    if task.step == "complete":
        purchase = service.complete(task.purchase_id)
    elif task.step == "compensate":
        purchase = service.compensate(task.purchase_id, task.error, task.cause)
    else:
        purchase = service.fail(task.purchase_id)
    obs.logger.append_keys(purchase_step=task.step, purchase_status=purchase.status)
    return {"purchase_id": purchase.purchase_id, "status": purchase.status, "failure": purchase.failure}
