"""The base of every pydantic model in the runtime package: built on first use, not at import.

A function imports every model of its engine, and the contracts of the engines it reads, while
one invocation uses a few of them. Building each model's validator and serializer when its module
is imported was most of what an API function's cold start cost beyond boto3, Powertools and pydantic
themselves; with `defer_build` a model is built the first time it validates, serializes or gives its
JSON Schema, and behaves exactly as before from then on (same errors, same schema). A subclass's
`model_config` is merged with this one, so it keeps the deferral and adds its own settings.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

# The same deferral for a module-level `TypeAdapter` of a union of models: `TypeAdapter(Rule, config=DEFERRED)`.
DEFERRED = ConfigDict(defer_build=True)


class Contract(BaseModel):
    model_config = DEFERRED
