"""Every dead-letter queue of the app alarms as soon as it holds a message, whichever engine declared it.

`AlarmOnEveryDeadLetterQueue` is an aspect on the root stack. At synth it finds every queue something sends
its failures to, in the root and in every engine's nested stack, today's and any added later:
- a queue's redrive policy (`deadLetterTargetArn`), an SNS subscription's redrive policy;
- an event rule target's dead-letter config, a schedule's;
- an event source mapping's or an asynchronous invocation's on-failure destination, a function's DLQ.
A queue already watched by an alarm on its `ApproximateNumberOfMessagesVisible` (the queue constructs alarm
their own) keeps that alarm; any other gets one, so a new engine cannot forget. The alarms it adds are
children of their queue, so `NotifyOnAlarms` sends them to the alarm topic like every other.

The dead-letter queues and their alarms are also handed to `on_found`, which the insights dashboard uses for
its dead-letter widgets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jsii
from aws_cdk import CfnResource, Duration, IAspect, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

QUEUE_DEPTH = "ApproximateNumberOfMessagesVisible"
ALARM_ID = "NotEmptyAlarm"


@dataclass(frozen=True)
class DeadLetterQueue:
    queue: sqs.CfnQueue
    alarm: cloudwatch.IAlarm


def _get_att_target(value: Any) -> str | None:
    """The logical id of `{"Fn::GetAtt": [id, "Arn"]}`, else None (a parameter, an ARN of another service)."""
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else target.split(".", 1)[0])
    return None


def _failure_arns(node: IConstruct) -> Iterator[Any]:
    """The resolved ARNs `node` sends its failures to (nothing for a resource that sends none)."""
    stack = Stack.of(node)
    if isinstance(node, sqs.CfnQueue | sns.CfnSubscription) and node.redrive_policy:
        yield (stack.resolve(node.redrive_policy) or {}).get("deadLetterTargetArn")
    elif isinstance(node, events.CfnRule) and node.targets:
        for target in stack.resolve(node.targets) or []:
            yield (target.get("deadLetterConfig") or {}).get("arn")
    elif isinstance(node, scheduler.CfnSchedule) and node.target:
        yield ((stack.resolve(node.target) or {}).get("deadLetterConfig") or {}).get("arn")
    elif isinstance(node, lambda_.CfnEventSourceMapping | lambda_.CfnEventInvokeConfig) and node.destination_config:
        yield ((stack.resolve(node.destination_config) or {}).get("onFailure") or {}).get("destination")
    elif isinstance(node, lambda_.CfnFunction) and node.dead_letter_config:
        yield (stack.resolve(node.dead_letter_config) or {}).get("targetArn")


def _watched_queue(node: IConstruct) -> str | None:
    """The logical id of the queue an alarm watches the depth of, else None."""
    if not isinstance(node, cloudwatch.CfnAlarm) or node.metric_name != QUEUE_DEPTH:
        return None
    for dimension in Stack.of(node).resolve(node.dimensions) or []:
        if dimension.get("name") == "QueueName" and isinstance(dimension.get("value"), dict):
            return _get_att_target(dimension["value"])
    return None


@jsii.implements(IAspect)
class AlarmOnEveryDeadLetterQueue:
    """Visits the root stack once and alarms every dead-letter queue under it that no alarm watches yet."""

    def __init__(self, on_found: Callable[[list[DeadLetterQueue]], None] | None = None) -> None:
        self.on_found = on_found
        self.done = False

    def visit(self, node: IConstruct) -> None:
        if self.done or not isinstance(node, Stack) or node.nested_stack_parent is not None:
            return
        self.done = True
        found = self.dead_letter_queues(node)
        if self.on_found is not None:
            self.on_found(found)

    @staticmethod
    def dead_letter_queues(root: Stack) -> list[DeadLetterQueue]:
        queues: dict[tuple[str, str], sqs.CfnQueue] = {}
        targets: set[tuple[str, str]] = set()
        alarms: dict[tuple[str, str], cloudwatch.IAlarm] = {}
        for node in root.node.find_all():
            if not isinstance(node, CfnResource):
                continue
            stack = Stack.of(node)
            if isinstance(node, sqs.CfnQueue):
                queues[(stack.node.path, stack.get_logical_id(node))] = node
            for arn in _failure_arns(node):
                target = _get_att_target(arn)
                if target is not None:
                    targets.add((stack.node.path, target))
            watched = _watched_queue(node)
            if watched is not None and isinstance(node.node.scope, cloudwatch.Alarm):
                alarms.setdefault((stack.node.path, watched), node.node.scope)
        found = []
        for key in sorted(targets):
            queue = queues.get(key)
            if queue is None:
                continue  # an on-failure destination that is not a queue (a topic, a bucket)
            alarm = alarms.get(key) or _not_empty_alarm(queue)
            found.append(DeadLetterQueue(queue, alarm))
        return found


def _not_empty_alarm(queue: sqs.CfnQueue) -> cloudwatch.Alarm:
    """An alarm beside the queue's L1 resource, under its construct (the `sqs.Queue`)."""
    scope = queue.node.scope
    return cloudwatch.Alarm(
        scope if isinstance(scope, Construct) else queue,
        ALARM_ID,
        metric=cloudwatch.Metric(
            namespace="AWS/SQS",
            metric_name=QUEUE_DEPTH,
            dimensions_map={"QueueName": queue.attr_queue_name},
            period=Duration.minutes(1),
            statistic="Maximum",
        ),
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        alarm_description=f"Dead-letter queue {queue.node.path} holds failed records (found by the DLQ aspect)",
    )
