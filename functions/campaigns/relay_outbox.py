"""Relays the campaigns engine's outbox (campaign and journey events) from the table's stream to the bus."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core import aws
from ecrm.core.config import PublishingConfig, load_config
from ecrm.core.observability import Observability
from ecrm.core.outbox_relay import OutboxRelay

config = load_config(PublishingConfig)
obs = Observability(config)


@cache
def default_relay() -> OutboxRelay:
    return OutboxRelay(config.event_bus_name, aws.client("events"), logger=obs.logger)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: OutboxRelay | None = None) -> dict[str, Any]:
    return (injected or default_relay()).handle(event)
