"""A template's scheduled EventBridge rules on the local clock follow the rule's state as EventBridge holds it.

In AWS, `DisableRule` stops a scheduled rule and `EnableRule` starts it again; the local scheduler reads the
state from moto's rule at each occurrence, so an operator (or a test) turning a rule off through the API is
obeyed, and a disabled daily rule is no stop for a clock moved days ahead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.local.scheduler import LocalScheduler

ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        yield boto3.client("events", region_name=REGION), boto3.client("sqs", region_name=REGION)


def scheduler_for(events: Any, sqs: Any, name: str, expression: str) -> tuple[LocalScheduler, str]:
    """A rule put as the local cloud provisions a template's, targeting a queue, and the scheduler over it."""
    url = sqs.create_queue(QueueName=f"{name}-target")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, ScheduleExpression=expression, State="ENABLED")
    targets = [{"Id": "queue", "Arn": arn}]
    events.put_targets(Rule=name, Targets=targets)
    schedule = {"name": name, "bus": "default", "expression": expression, "state": "ENABLED", "targets": targets}
    no_functions: Any = None  # the rules here target a queue
    scheduler = LocalScheduler(
        [schedule], runtime=no_functions, stepfunctions=None, account=ACCOUNT, region=REGION, sqs=sqs
    )
    return scheduler, url


def received(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    for message in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return [json.loads(m["Body"]) for m in messages]


def test_a_disabled_rule_does_not_fire_and_fires_again_once_enabled(aws: tuple[Any, Any]) -> None:
    events, sqs = aws
    scheduler, url = scheduler_for(events, sqs, "hourly-job", "rate(1 hour)")
    start = scheduler.started
    # Given the rule fired at its first occurrence
    scheduler.run_due(start + timedelta(hours=1, minutes=1))
    assert [e["detail-type"] for e in received(sqs, url)] == ["Scheduled Event"]
    # When it is disabled through the API, its next occurrence passes without a firing
    events.disable_rule(Name="hourly-job")
    scheduler.run_due(start + timedelta(hours=2, minutes=1))
    assert received(sqs, url) == []
    assert scheduler.fired == {"hourly-job": 1}
    assert scheduler.due["hourly-job"] > start + timedelta(hours=2, minutes=1), "a passed occurrence stays due"
    # And once enabled again, it fires at the occurrence after
    events.enable_rule(Name="hourly-job")
    scheduler.run_due(start + timedelta(hours=3, minutes=1))
    assert len(received(sqs, url)) == 1
    assert scheduler.fired == {"hourly-job": 2}


def test_a_disabled_daily_rule_is_no_stop_for_the_clock(aws: tuple[Any, Any]) -> None:
    events, sqs = aws
    scheduler, _ = scheduler_for(events, sqs, "nightly-job", "cron(0 3 * * ? *)")
    assert scheduler.next_due(scheduler.started) is not None
    events.disable_rule(Name="nightly-job")
    assert scheduler.next_due(scheduler.started) is None
