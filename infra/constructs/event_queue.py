"""Queues between engines: an event rule feeding a queue, and a queue drained by a function.

Every queue has a dead-letter queue: a record that keeps failing moves there after
`max_receive_count` receives, and an alarm fires as soon as one is there. `ecrm redrive` moves
them back once the cause is fixed. Consumers report partial batch failures, so one bad record
never makes its batch-mates retry.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.engine_function import EngineFunction
from infra.constructs.foundation import Foundation
from infra.constructs.nag import acknowledge


class QueueConsumer(Construct):
    """A queue with its DLQ, drained by an engine function with partial batch responses."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        foundation: Foundation,
        engine: str,
        module: str,
        environment: dict[str, str] | None = None,
        batch_size: int = 10,
        max_receive_count: int = 5,
        timeout: Duration = Duration.seconds(30),
        max_batching_window: Duration = Duration.seconds(1),
        max_concurrency: int | None = None,
        delivery_delay: Duration | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(self.dead_letter_queue, "AwsSolutions-SQS3", "This queue is itself a dead-letter queue.")
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(timeout.to_seconds() * 6),
            retention_period=Duration.days(4),
            delivery_delay=delivery_delay,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letter_queue, max_receive_count=max_receive_count),
        )
        self.handler = EngineFunction(
            self,
            "Handler",
            engine=engine,
            module=module,
            settings=foundation.settings,
            layers=[foundation.common_layer],
            environment=environment,
            timeout=timeout,
        )
        self.handler.function.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=batch_size,
                report_batch_item_failures=True,
                max_batching_window=max_batching_window,
                max_concurrency=max_concurrency,
            )
        )
        self.dead_letters_alarm = queue_not_empty_alarm(
            self,
            "DeadLettersAlarm",
            self.dead_letter_queue,
            f"Records of {engine}/{module} failed {max_receive_count} times and wait in the DLQ",
        )


def queue_not_empty_alarm(scope: Construct, construct_id: str, queue: sqs.IQueue, description: str) -> cloudwatch.Alarm:
    """An alarm as soon as a queue that should stay empty (a DLQ, an on-failure destination) holds a message."""
    return cloudwatch.Alarm(
        scope,
        construct_id,
        metric=queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(1), statistic="Maximum"),
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        alarm_description=description,
    )


class EventRuleToQueue(Construct):
    """A rule on the bus delivering matching events to a queue (failed deliveries to its DLQ)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        foundation: Foundation,
        pattern: events.EventPattern,
        consumer: QueueConsumer,
        description: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.rule = events.Rule(self, "Rule", event_bus=foundation.bus, event_pattern=pattern, description=description)
        self.rule.add_target(
            targets.SqsQueue(
                consumer.queue,
                dead_letter_queue=consumer.dead_letter_queue,
                retry_attempts=185,
                max_event_age=Duration.hours(24),
            )
        )


def erasure_consumer(
    scope: Construct, *, foundation: Foundation, engine: str, environment: dict[str, str]
) -> QueueConsumer:
    """An engine's part of every erasure: `functions/<engine>/on_erasure_requested.py` fed by the customer
    store's `CustomerErasureRequested`, one request at a time, allowed to publish its acknowledgement. The
    caller grants what the erasure touches (its table, its objects). Children of `scope`, as
    `ErasureConsumer` and `ErasureRequestedRule`."""
    consumer = QueueConsumer(
        scope,
        "ErasureConsumer",
        foundation=foundation,
        engine=engine,
        module="on_erasure_requested",
        environment={**environment, "EVENT_BUS_NAME": foundation.bus.event_bus_name},
        batch_size=1,
    )
    foundation.bus.grant_put_events_to(consumer.handler.function)
    EventRuleToQueue(
        scope,
        "ErasureRequestedRule",
        foundation=foundation,
        consumer=consumer,
        description=f"Erasure requests to the {engine} engine",
        pattern=events.EventPattern(source=["ecrm.customers"], detail_type=["CustomerErasureRequested"]),
    )
    return consumer
