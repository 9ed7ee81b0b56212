"""The platform slice wired to AWS: what its API and self-check task are built from."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from ecrm.core import aws
from ecrm.core.clock import Clock, SystemClock
from ecrm.core.config import PublishingConfig
from ecrm.core.publisher import EventPublisher
from ecrm.platform.store import DynamoPingStore, PingStore


class PlatformConfig(PublishingConfig):
    platform_table_name: str


@dataclass(frozen=True)
class Deps:
    publisher: EventPublisher
    store: PingStore
    clock: Clock


@cache
def deps_for(config: PlatformConfig) -> Deps:
    table = aws.resource("dynamodb").Table(config.platform_table_name)
    return Deps(EventPublisher(config.event_bus_name, aws.client("events")), DynamoPingStore(table), SystemClock())
