"""The recommend function: another engine asks for a customer's recommendations (invoked directly).

`{"operation": "recommend", "customer_id": "...", "slot": "for_you", "k": 5}` -> the `Recommendations` that
`GET /customers/{id}/recommendations` answers. The transactions engine asks it beside a comparison of offers;
the list comes from precomputed data, like the API's (no numpy). A bad payload raises `InvalidInput` (the
invoker sees its message as the function error).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core.config import load_config
from ecrm.core.contract import Contract
from ecrm.core.errors import InvalidInput
from ecrm.core.observability import Observability
from ecrm.personalization.recommendation_service import MAX_K, RecommendationService
from ecrm.personalization.service_models import CUSTOMER_ID_PATTERN, ITEM_ID_PATTERN, Slot
from ecrm.personalization.wiring import PersonalizationConfig, services_for
from pydantic import ConfigDict, Field, StringConstraints, ValidationError

config = load_config(PersonalizationConfig)
obs = Observability(config)


class RecommendRequest(Contract):
    model_config = ConfigDict(extra="forbid")

    operation: Literal["recommend"]
    customer_id: Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)]
    slot: Slot = "for_you"
    item: Annotated[str, StringConstraints(pattern=ITEM_ID_PATTERN)] | None = None
    k: int = Field(default=10, ge=1, le=MAX_K)


@obs.entrypoint()
def handler(
    event: dict[str, Any], context: LambdaContext, injected: RecommendationService | None = None
) -> dict[str, Any]:
    try:
        request = RecommendRequest.model_validate(event)
    except ValidationError as error:
        first = error.errors()[0]
        raise InvalidInput(f"{'.'.join(map(str, first['loc'])) or 'payload'}: {first['msg']}") from None
    service = injected or services_for(config).recommendations
    answer = service.recommend(request.customer_id, slot=request.slot, item=request.item, k=request.k)
    return answer.model_dump(mode="json")
