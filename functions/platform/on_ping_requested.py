"""Consumes `PingRequested` from the platform queue and records its arrival."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.core import aws
from ecrm.core.clock import Clock, SystemClock
from ecrm.core.config import FunctionConfig, load_config
from ecrm.core.consumer import EventConsumer, ReceivedEvent
from ecrm.core.observability import Observability
from ecrm.platform import logic
from ecrm.platform.models import PingRequested
from ecrm.platform.store import DynamoPingStore, PingStore


class ConsumerConfig(FunctionConfig):
    platform_table_name: str


config = load_config(ConsumerConfig)
obs = Observability(config)
consumer = EventConsumer(obs.logger, accepts=[PingRequested])


@dataclass(frozen=True)
class Deps:
    store: PingStore
    clock: Clock


@cache
def default_deps() -> Deps:
    return Deps(DynamoPingStore(aws.resource("dynamodb").Table(config.platform_table_name)), SystemClock())


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: Deps | None = None) -> dict[str, Any]:
    deps = injected or default_deps()

    def on_event(received: ReceivedEvent[Any]) -> None:
        record = logic.receive_ping(received.data, deps.clock.now())
        if not deps.store.save(record):
            obs.logger.info("ping already recorded", extra={"ping_id": record.ping_id})
        obs.metrics.add_metric(name="PingsReceived", unit="Count", value=1)

    return consumer(event, context, on_event)
