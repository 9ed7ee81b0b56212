"""Typed environment configuration.

Every function declares a pydantic model of the environment it needs and reads it once at cold
start with `load_config`. Field names are the lower-case environment variable names, so
`event_bus_name` reads `EVENT_BUS_NAME`. Nothing else in the code base reads `os.environ`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ecrm.core.contract import Contract
from ecrm.core.errors import ConfigurationError


class FunctionConfig(Contract):
    """What every eCRM function needs; engines subclass it to add their own settings."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    powertools_service_name: str = "ecrm"
    ecrm_stage: str = "dev"
    ecrm_tracing: bool = False
    aws_region: str = "us-east-1"


class PublishingConfig(FunctionConfig):
    """A function that publishes domain events."""

    event_bus_name: str


ConfigT = TypeVar("ConfigT", bound=BaseModel)


def load_config(model: type[ConfigT], environ: Mapping[str, str] | None = None) -> ConfigT:
    """Build `model` from the environment, failing loudly with every missing or invalid variable."""
    source = os.environ if environ is None else environ
    values = {key.lower(): value for key, value in source.items()}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors())
        raise ConfigurationError(f"invalid environment for {model.__name__}: {problems}") from exc
