"""The templates function: the broadcast engine asks for a stored template's version (invoked directly).

`{"operation": "template", "template_id": "tpl_...", "version": 3 | null}` -> `{"found": true, "template":
{"template_id", "version", "latest_version", "name", "channel", "body": <the template as saved>}}`, or
`{"found": false, "reason": ...}` when the template or the version does not exist. A bad payload raises
`InvalidInput` (the invoker sees its message as the function error). It only reads, straight from the store:
it answers on the request path of `POST /messages`, so its cold start builds no recommendation or offer
service it would never use.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core.config import load_config
from ecrm.core.contract import Contract
from ecrm.core.errors import InvalidInput
from ecrm.core.observability import Observability
from ecrm.personalization.store import PersonalizationStore
from ecrm.personalization.wiring import PersonalizationConfig, store_for
from pydantic import ConfigDict, Field, StringConstraints, ValidationError

config = load_config(PersonalizationConfig)
obs = Observability(config)


class TemplateLookup(Contract):
    model_config = ConfigDict(extra="forbid")

    operation: Literal["template"]
    template_id: Annotated[str, StringConstraints(pattern=r"^tpl_[0-9A-Z]{26}$")]
    version: Annotated[int, Field(ge=1)] | None = None


@obs.entrypoint()
def handler(
    event: dict[str, Any], context: LambdaContext, injected: PersonalizationStore | None = None
) -> dict[str, Any]:
    try:
        lookup = TemplateLookup.model_validate(event)
    except ValidationError as error:
        wrong = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in error.errors()[:5])
        raise InvalidInput(f"not a template lookup ({wrong})") from None
    stored = (injected or store_for(config)).template(lookup.template_id, lookup.version)
    if stored is None:
        which = f"version {lookup.version} of template" if lookup.version else "template"
        return {"found": False, "reason": f"{which} {lookup.template_id} does not exist"}
    return {
        "found": True,
        "template": {
            "template_id": stored.template_id,
            "version": stored.version,
            "latest_version": stored.latest_version,
            "name": stored.name,
            "channel": stored.channel,
            "body": stored.template,
        },
    }
