"""The outbox relay of an engine table: its stream drained by a function that publishes to the bus (ADR 11).

The table must stream NEW_AND_OLD_IMAGES. The event source mapping:
- only delivers writes that carry events (inserts and modifications whose new image has the `outbox`
  attribute: outbox items, `sk = OUTBOX`, and an aggregate's own item when its change had events), so
  the function is not invoked for every other change of the table;
- starts at the trim horizon, so nothing written before the mapping existed is skipped;
- takes partial batch responses (the relay names the first record it could not publish) and bisects
  a batch whose invocation failed, so one bad record cannot hold its batch-mates back for long;
- retries a failing batch for up to `max_record_age` and then sends its position (shard, sequence
  numbers) to the on-failure queue, which alarms; the outbox items stay in the table for their
  retention, longer than the stream keeps records.
An alarm on the function's iterator age tells that the relay is falling behind before anything is lost.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from ecrm.core.outbox import OUTBOX_ATTRIBUTE

from infra.constructs.engine_function import EngineFunction
from infra.constructs.event_queue import queue_not_empty_alarm
from infra.constructs.foundation import Foundation
from infra.constructs.nag import acknowledge

# What the mapping delivers: writes that carry events, the outbox attribute in the new image (DynamoDB JSON):
# an outbox item's (`<pk>` / `OUTBOX`), or an aggregate's own item's when its change had events.
# Two patterns (Lambda delivers a record matching any): the events as JSON, or packed (binary).
OUTBOX_FILTERS = [
    {
        "eventName": lambda_.FilterRule.or_("INSERT", "MODIFY"),
        "dynamodb": {"NewImage": {OUTBOX_ATTRIBUTE: {kind: lambda_.FilterRule.exists()}}},
    }
    for kind in ("S", "B")
]


class StreamConsumer(Construct):
    """A function draining an engine table's stream (ADR 11): what no record may be lost by.

    The mapping starts at the trim horizon (nothing written before it existed is skipped) and delivers only the
    records `filters` match; a failing batch is retried for up to `max_record_age`, then its position (shard,
    sequence numbers) goes to the on-failure queue, which alarms; an alarm on the iterator age tells that the
    function is falling behind before anything is lost.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        foundation: Foundation,
        engine: str,
        table: dynamodb.ITable,
        module: str,
        name: str,
        description: str,
        behind: str,
        filters: list[dict[str, Any]],
        environment: dict[str, str],
        batch_size: int,
        tumbling_window: Duration | None = None,
        max_record_age: Duration = Duration.hours(12),
        retry_attempts: int = 10_000,
        iterator_age_alarm: Duration = Duration.minutes(5),
    ) -> None:
        super().__init__(scope, construct_id)
        self.failures = sqs.Queue(
            self,
            "FailedBatches",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.failures,
            "AwsSolutions-SQS3",
            f"This queue is itself a dead-letter queue: the {name}'s on-failure destination for stream batches.",
        )
        self.handler = EngineFunction(
            self,
            "Handler",
            engine=engine,
            module=module,
            settings=foundation.settings,
            layers=[foundation.common_layer],
            environment=environment,
            timeout=Duration.seconds(30),
            description=f"eCRM {engine}: {description}",
        )
        self.handler.function.add_event_source(
            sources.DynamoEventSource(
                table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=batch_size,
                bisect_batch_on_error=True,
                report_batch_item_failures=True,
                tumbling_window=tumbling_window,
                retry_attempts=retry_attempts,
                max_record_age=max_record_age,
                on_failure=sources.SqsDlq(self.failures),
                filters=[lambda_.FilterCriteria.filter(f) for f in filters],
            )
        )
        acknowledge(
            self.handler.role,
            "AwsSolutions-IAM5",
            "Reading a DynamoDB stream needs dynamodb:ListStreams, which has no resource to scope to.",
            applies_to=["Resource::*"],
        )
        self.failed_batches_alarm = queue_not_empty_alarm(
            self,
            "FailedBatchesAlarm",
            self.failures,
            f"The {engine} {name} gave up on a batch: replay it from the stream or the table",
        )
        self.iterator_age_alarm = cloudwatch.Alarm(
            self,
            "IteratorAgeAlarm",
            metric=self.handler.function.metric("IteratorAge", period=Duration.minutes(1), statistic="Maximum"),
            threshold=iterator_age_alarm.to_milliseconds(),
            evaluation_periods=3,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"The {engine} {name} is behind: {behind}",
        )


class OutboxRelay(StreamConsumer):
    """The relay itself: takes partial batch responses (the relay names the first record it could not publish)
    and bisects a batch whose invocation failed, so one bad record cannot hold its batch-mates back for long."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        foundation: Foundation,
        engine: str,
        table: dynamodb.ITable,
        module: str = "relay_outbox",
        batch_size: int = 100,
        max_record_age: Duration = Duration.hours(12),
        retry_attempts: int = 10_000,
        iterator_age_alarm: Duration = Duration.minutes(5),
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            foundation=foundation,
            engine=engine,
            table=table,
            module=module,
            name="outbox relay",
            description="outbox relay from the table stream to the bus",
            behind="events wait to be published",
            filters=OUTBOX_FILTERS,
            environment={"EVENT_BUS_NAME": foundation.bus.event_bus_name},
            batch_size=batch_size,
            max_record_age=max_record_age,
            retry_attempts=retry_attempts,
            iterator_age_alarm=iterator_age_alarm,
        )
        foundation.bus.grant_put_events_to(self.handler.function)
