"""What every analysis function builds from its environment: config, services, clients.

The one place where the analysis engine is wired to AWS, so each handler stays a few lines.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ecrm.analysis.audiences import AudienceSteps
from ecrm.analysis.erasure import AnalysisLakeErasure
from ecrm.analysis.membership import MembershipService
from ecrm.analysis.segments import DEFAULT_SHARDS, SegmentService, StepFunctionsStarter
from ecrm.analysis.store import AnalysisStore
from ecrm.core import aws
from ecrm.core.clock import SystemClock
from ecrm.core.config import PublishingConfig
from ecrm.core.ids import new_id
from ecrm.core.lake import AthenaLake, BufferedLakeWriter, FirehoseLakeWriter, LakeRowEraser, ObjectLeases
from ecrm.core.publisher import EventPublisher


class AnalysisConfig(PublishingConfig):
    analysis_table_name: str
    lake_bucket_name: str = ""
    lake_database: str = ""
    athena_workgroup: str = ""
    audience_state_machine_arn: str = ""
    lake_segment_profiles_stream_name: str = ""
    lake_behaviour_events_stream_name: str = ""
    analysis_shards: int = DEFAULT_SHARDS


def _rows(row: Any) -> Any:
    return row


@cache
def membership_for(config: AnalysisConfig) -> MembershipService:
    firehose = aws.client("firehose")
    return MembershipService(
        store=AnalysisStore(aws.client("dynamodb"), config.analysis_table_name),
        publisher=EventPublisher(config.event_bus_name, aws.client("events")),
        clock=SystemClock(),
        profiles_lake=BufferedLakeWriter(FirehoseLakeWriter(firehose, config.lake_segment_profiles_stream_name, _rows)),
        behaviour_lake=BufferedLakeWriter(
            FirehoseLakeWriter(firehose, config.lake_behaviour_events_stream_name, _rows)
        ),
    )


def flush_lake(service: MembershipService) -> None:
    """Write what the invocation buffered for the lake (raises so the whole batch is retried)."""
    for sink in (service.profiles_lake, service.behaviour_lake):
        if isinstance(sink, BufferedLakeWriter):
            sink.flush()


@cache
def segments_for(config: AnalysisConfig) -> SegmentService:
    return SegmentService(
        store=AnalysisStore(aws.client("dynamodb"), config.analysis_table_name),
        lake=AthenaLake(aws.client("athena"), workgroup=config.athena_workgroup, database=config.lake_database),
        builds=StepFunctionsStarter(aws.client("stepfunctions"), config.audience_state_machine_arn),
        clock=SystemClock(),
        shards=config.analysis_shards,
    )


@cache
def audience_steps_for(config: AnalysisConfig) -> AudienceSteps:
    return AudienceSteps(
        segments=segments_for(config),
        membership=membership_for(config),
        s3=aws.client("s3"),
        bucket=config.lake_bucket_name,
    )


@cache
def lake_erasure_for(config: AnalysisConfig) -> AnalysisLakeErasure:
    clock = SystemClock()
    eraser = LakeRowEraser(
        AthenaLake(aws.client("athena"), workgroup=config.athena_workgroup, database=config.lake_database),
        aws.client("s3"),
        bucket=config.lake_bucket_name,
        leases=ObjectLeases(aws.client("dynamodb"), config.analysis_table_name, owner=new_id("eraser_")),
        now=clock.now,
    )
    publisher = EventPublisher(config.event_bus_name, aws.client("events"))
    return AnalysisLakeErasure(eraser=eraser, publisher=publisher, clock=clock)
