"""What the collection function builds from its environment: config, the service, its clients.

The one place where the collection engine is wired to AWS, so the handler stays a few lines.
"""

from __future__ import annotations

from functools import cache

from ecrm.collect.erasure import CollectErasure
from ecrm.collect.lake_records import collected_event_record
from ecrm.collect.service import CollectService, LakeWriter, NoLake
from ecrm.collect.store import CollectStore, FirehoseLakeWriter
from ecrm.core import aws
from ecrm.core.clock import SystemClock
from ecrm.core.config import PublishingConfig
from ecrm.core.ids import new_id
from ecrm.core.lake import AthenaLake, LakeRowEraser, ObjectLeases
from ecrm.core.publisher import EventPublisher


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


class CollectErasureConfig(PublishingConfig):
    """The lake eraser: the engine's table (object leases), the lake and the Athena work group it rewrites with."""

    collect_table_name: str
    lake_bucket_name: str
    lake_database: str
    athena_workgroup: str


@cache
def erasure_for(config: CollectErasureConfig) -> CollectErasure:
    clock = SystemClock()
    leases = ObjectLeases(aws.client("dynamodb"), config.collect_table_name, owner=new_id("eraser_"))
    eraser = LakeRowEraser(
        AthenaLake(aws.client("athena"), workgroup=config.athena_workgroup, database=config.lake_database),
        aws.client("s3"),
        bucket=config.lake_bucket_name,
        leases=leases,
        now=clock.now,
    )
    return CollectErasure(
        eraser=eraser, publisher=EventPublisher(config.event_bus_name, aws.client("events")), clock=clock
    )
