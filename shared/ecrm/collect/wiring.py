"""What the collection function builds from its environment: config, the service, its clients.

The one place where the collection engine is wired to AWS, so the handler stays a few lines.
"""

from __future__ import annotations

from functools import cache

from ecrm.collect.service import CollectService, LakeWriter, NoLake
from ecrm.collect.store import CollectStore, FirehoseLakeWriter
from ecrm.core import aws
from ecrm.core.clock import SystemClock
from ecrm.core.config import PublishingConfig
from ecrm.core.publisher import EventPublisher
from ecrm.lake import collected_event_record


class CollectConfig(PublishingConfig):
    collect_table_name: str
    # The Firehose stream feeding the lake; empty: events go on the bus only.
    lake_events_stream_name: str = ""


def lake_writer_for(config: CollectConfig) -> LakeWriter:
    if not config.lake_events_stream_name:
        return NoLake()
    return FirehoseLakeWriter(aws.client("firehose"), config.lake_events_stream_name, collected_event_record)


@cache
def service_for(config: CollectConfig) -> CollectService:
    return CollectService(
        store=CollectStore(aws.client("dynamodb"), config.collect_table_name),
        publisher=EventPublisher(config.event_bus_name, aws.client("events")),
        lake=lake_writer_for(config),
        clock=SystemClock(),
    )
