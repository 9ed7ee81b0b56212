"""The contacts function: the broadcast engine asks for contact cards and records consents (invoked directly).

`{"operation": "cards", "customer_ids": [...]}` -> `{"cards": {...}, "missing": [...]}`;
`{"operation": "record_consents", ...}` -> `{"card": {...}}`. A bad payload raises `InvalidInput`
(the invoker sees its message as the function error): nothing is changed.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core.config import load_config
from ecrm.core.observability import Observability
from ecrm.customers.contacts import ContactDirectory
from ecrm.customers.wiring import CustomersConfig, service_for

config = load_config(CustomersConfig)
obs = Observability(config)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: ContactDirectory | None = None) -> dict[str, Any]:
    directory = injected or ContactDirectory(service_for(config))
    answer = directory.answer(event, correlation_id=getattr(context, "aws_request_id", None))
    return answer.model_dump(mode="json")
