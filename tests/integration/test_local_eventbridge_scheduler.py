"""EventBridge Scheduler on the local clock: moto keeps the schedules, `SchedulerEmulation` fires them.

A moto server on 127.0.0.1 holds the schedules, queues, buses and state machines; the clock starts
at a chosen instant (so daylight saving changes are reached) and is only ever advanced. Each
occurrence is observed through an SQS target whose Input carries `<aws.scheduler.scheduled-time>`.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto.awslambda.models import LambdaFunction
from moto.core.config import default_user_config
from moto.server import ThreadedMotoServer

from infra.local import stepfunctions_clock
from infra.local.clock import LocalClock
from infra.local.eventbridge_scheduler import SchedulerEmulation

ACCOUNT, REGION = "123456789012", "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/scheduler"
FLEX_OFF = {"Mode": "OFF"}


def clock_at(start: datetime) -> LocalClock:
    """A clock whose 'real' time starts at `start` and runs on."""
    began = time.monotonic()
    return LocalClock(real=lambda: start + timedelta(seconds=time.monotonic() - began), settle_timeout=10)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from infra.local.cloud import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


class Local:
    def __init__(self, endpoint: str, start: datetime) -> None:
        self.endpoint = endpoint
        self.clock = clock_at(start)
        self.errors: list[str] = []
        self.scheduler = SchedulerEmulation(
            client=self.client,
            account=ACCOUNT,
            region=REGION,
            clock=self.clock,
            on_error=lambda where, exc: self.errors.append(f"{where}: {exc}"),
        )
        self.clock.add_source(self.scheduler)
        self.api = self.client("scheduler")
        self.sqs = self.client("sqs")

    def client(self, service: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def queue(self, name: str) -> tuple[str, str]:
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        return url, f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"

    def received(self, url: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while batch := self.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", []):
            messages.extend(batch)
            self.sqs.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
            )
        return messages

    def times(self, url: str) -> list[str]:
        return [json.loads(m["Body"])["at"] for m in self.received(url)]

    def schedule(self, name: str, expression: str, target: dict[str, Any], **extra: Any) -> None:
        self.api.create_schedule(
            Name=name,
            ScheduleExpression=expression,
            FlexibleTimeWindow=extra.pop("FlexibleTimeWindow", FLEX_OFF),
            Target={"RoleArn": ROLE, **target},
            **extra,
        )


def timed(arn: str) -> dict[str, Any]:
    return {"Arn": arn, "Input": json.dumps({"at": "<aws.scheduler.scheduled-time>"})}


@pytest.fixture
def local(endpoint: str, request: pytest.FixtureRequest) -> Local:
    start = getattr(request, "param", datetime(2026, 3, 27, 12, 0, tzinfo=UTC))
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10)
    return Local(endpoint, start)


def test_a_paris_cron_fires_at_nine_paris_time_across_the_march_change(local: Local) -> None:
    # Given a schedule at 09:00 every day in Europe/Paris, two days before summer time starts
    url, arn = local.queue("paris")
    local.schedule("paris-9am", "cron(0 9 * * ? *)", timed(arn), ScheduleExpressionTimezone="Europe/Paris")
    # When the clock is advanced three days
    local.clock.advance(timedelta(days=3))
    # Then it fired at 09:00 Paris: 08:00 UTC in winter time, 07:00 UTC from 29 March on
    assert local.times(url) == ["2026-03-28T08:00:00Z", "2026-03-29T07:00:00Z", "2026-03-30T07:00:00Z"]


@pytest.mark.parametrize("local", [datetime(2026, 10, 23, 12, 0, tzinfo=UTC)], indirect=True)
def test_a_paris_cron_fires_at_nine_paris_time_across_the_october_change(local: Local) -> None:
    url, arn = local.queue("paris-autumn")
    local.schedule("paris-9am", "cron(0 9 * * ? *)", timed(arn), ScheduleExpressionTimezone="Europe/Paris")
    local.clock.advance(timedelta(days=3))
    assert local.times(url) == ["2026-10-24T07:00:00Z", "2026-10-25T08:00:00Z", "2026-10-26T08:00:00Z"]


def test_a_daily_schedule_fires_once_per_day_advanced_never_twice(local: Local) -> None:
    url, arn = local.queue("daily")
    local.schedule("daily", "cron(0 6 * * ? *)", timed(arn))
    local.clock.advance(timedelta(days=3))
    local.clock.advance(timedelta(hours=1))
    assert local.times(url) == ["2026-03-28T06:00:00Z", "2026-03-29T06:00:00Z", "2026-03-30T06:00:00Z"]
    assert [i.outcome for i in local.scheduler.invocations] == ["ok"] * 3


def test_a_rate_schedule_starts_at_once_and_stops_after_its_end_date(local: Local) -> None:
    url, arn = local.queue("rate")
    end = local.clock.now() + timedelta(hours=2, minutes=30)
    local.schedule("hourly", "rate(1 hour)", timed(arn), EndDate=end, ActionAfterCompletion="DELETE")
    local.clock.advance(timedelta(hours=5))
    assert len(local.times(url)) == 3  # now, +1 h, +2 h
    assert local.api.list_schedules()["Schedules"] == []


def test_an_at_schedule_fires_once_in_its_time_zone_and_is_deleted(local: Local) -> None:
    # Given a one-time schedule at 10:00 in New York the next day, deleted after completion
    url, arn = local.queue("once")
    local.schedule(
        "once",
        "at(2026-03-28T10:00:00)",
        timed(arn),
        ScheduleExpressionTimezone="America/New_York",
        ActionAfterCompletion="DELETE",
    )
    local.schedule("kept", "at(2026-03-28T10:00:00)", timed(arn), ActionAfterCompletion="NONE")
    # When two days pass
    local.clock.advance(timedelta(days=2))
    # Then each fired once (10:00 EDT is 14:00 UTC); the DELETE one is gone, the NONE one stays
    assert sorted(local.times(url)) == ["2026-03-28T10:00:00Z", "2026-03-28T14:00:00Z"]
    assert [s["Name"] for s in local.api.list_schedules()["Schedules"]] == ["kept"]
    local.clock.advance(timedelta(days=2))
    assert local.times(url) == []


def test_deleting_a_schedule_or_its_group_stops_it_and_a_disabled_one_never_fires(local: Local) -> None:
    url, arn = local.queue("stopped")
    local.api.create_schedule_group(Name="journeys")
    local.schedule("in-group", "rate(1 hour)", timed(arn), GroupName="journeys")
    local.schedule("deleted", "rate(1 hour)", timed(arn))
    local.schedule("disabled", "rate(1 hour)", timed(arn), State="DISABLED")
    local.clock.advance(timedelta(minutes=30))
    assert len(local.times(url)) == 2  # the two enabled ones, at once
    local.api.delete_schedule_group(Name="journeys")
    local.api.delete_schedule(Name="deleted")
    local.clock.advance(timedelta(hours=3))
    assert local.times(url) == []


def test_a_flexible_window_invokes_within_the_window_at_a_stable_time(local: Local) -> None:
    url, arn = local.queue("flexible")
    local.schedule(
        "flexible",
        "cron(0 12 * * ? *)",
        timed(arn),
        FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15},
    )
    local.clock.advance(timedelta(days=2, minutes=15))
    (first, second) = local.scheduler.invocations
    for invocation in (first, second):
        delay = invocation.invoked_at - invocation.scheduled_time
        assert timedelta(0) <= delay < timedelta(minutes=15)
    assert local.times(url) == ["2026-03-28T12:00:00Z", "2026-03-29T12:00:00Z"]


def test_templated_and_universal_targets(local: Local, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a function, a state machine, a bus with a rule to a queue, and a queue for a universal target
    invoked: list[Any] = []

    def record(self: Any, event: Any = None) -> tuple[str, bool, str]:
        invoked.append((self.function_name, json.loads(event) if isinstance(event, str | bytes) else event))
        return "null", False, ""

    monkeypatch.setattr(LambdaFunction, "_invoke_lambda", record)
    monkeypatch.setitem(default_user_config["stepfunctions"], "execute_state_machine", True)
    stepfunctions_clock.install(local.clock)
    try:
        role = local.client("iam").create_role(
            RoleName="job", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
        )["Role"]["Arn"]
        function = local.client("lambda").create_function(
            FunctionName="job",
            Runtime="python3.12",
            Role=role,
            Handler="job.handler",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )["FunctionArn"]
        sfn = local.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="journey",
            definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
            roleArn=ROLE,
        )["stateMachineArn"]
        events = local.client("events")
        bus = events.create_event_bus(Name="ecrm")["EventBusArn"]
        bus_url, bus_queue = local.queue("from-bus")
        events.put_rule(Name="campaigns", EventBusName="ecrm", EventPattern=json.dumps({"source": ["ecrm.campaigns"]}))
        events.put_targets(Rule="campaigns", EventBusName="ecrm", Targets=[{"Id": "q", "Arn": bus_queue}])
        sdk_url, _ = local.queue("universal")
        local.schedule("fn", "rate(1 day)", {"Arn": function, "Input": '{"job": "nightly"}'})
        local.schedule("sm", "rate(1 day)", {"Arn": machine, "Input": '{"journey": "welcome"}'})
        local.schedule(
            "bus",
            "rate(1 day)",
            {
                "Arn": bus,
                "Input": '{"campaign_id": "cmp_1"}',
                "EventBridgeParameters": {"DetailType": "CampaignDue", "Source": "ecrm.campaigns"},
            },
        )
        local.schedule(
            "sdk",
            "rate(1 day)",
            {
                "Arn": "arn:aws:scheduler:::aws-sdk:sqs:sendMessage",
                "Input": json.dumps({"QueueUrl": sdk_url, "MessageBody": "from <aws.scheduler.schedule-arn>"}),
            },
        )
        # When the schedules fire
        local.clock.advance(timedelta(minutes=1))
        # Then each target got what Scheduler sends it
        assert invoked == [("job", {"job": "nightly"})]
        (execution,) = sfn.list_executions(stateMachineArn=machine)["executions"]
        assert json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"]) == {
            "journey": "welcome"
        }
        (event,) = [json.loads(m["Body"]) for m in local.received(bus_url)]
        assert (event["source"], event["detail-type"], event["detail"]) == (
            "ecrm.campaigns",
            "CampaignDue",
            {"campaign_id": "cmp_1"},
        )
        (message,) = local.received(sdk_url)
        assert message["Body"] == f"from arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/sdk"
        assert local.errors == []
    finally:
        stepfunctions_clock.uninstall()


def test_a_failing_target_is_retried_then_dead_lettered_in_scheduler_s_shape(local: Local) -> None:
    # Given a schedule whose target queue does not exist, with a dead-letter queue
    dlq_url, dlq_arn = local.queue("schedule-dlq")
    missing = f"arn:aws:sqs:{REGION}:{ACCOUNT}:no-such-queue"
    local.schedule(
        "broken",
        "cron(0 7 * * ? *)",
        {
            "Arn": missing,
            "Input": '{"hello": "world"}',
            "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600},
            "DeadLetterConfig": {"Arn": dlq_arn},
        },
    )
    # When it fires
    local.clock.advance(timedelta(days=1))
    # Then the dead-letter event carries the input and says what failed
    (dead,) = local.received(dlq_url)
    assert json.loads(dead["Body"]) == {"hello": "world"}
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes["SCHEDULE_ARN"] == f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/broken"
    assert attributes["TARGET_ARN"] == missing
    assert attributes["ERROR_CODE"]
    assert attributes["EXECUTION_ID"]
    assert [i.outcome for i in local.scheduler.invocations] == ["dead-lettered"]


def test_a_schedule_declared_in_the_template_fires_from_the_local_clock(local: Local, tmp_path: Any) -> None:
    from pathlib import Path

    from infra.local.provision import Provisioner
    from infra.local.runtime import FunctionRuntime
    from infra.local.template import Template

    # Given a template, as CDK writes it, with a queue and a schedule group holding a Paris cron on the queue
    template = {
        "Resources": {
            "Reminders": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "Group": {"Type": "AWS::Scheduler::ScheduleGroup", "Properties": {"Name": "journeys"}},
            "Morning": {
                "Type": "AWS::Scheduler::Schedule",
                "Properties": {
                    "GroupName": {"Ref": "Group"},
                    "ScheduleExpression": "cron(0 9 * * ? *)",
                    "ScheduleExpressionTimezone": "Europe/Paris",
                    "FlexibleTimeWindow": {"Mode": "OFF"},
                    "Target": {
                        "Arn": {"Fn::GetAtt": ["Reminders", "Arn"]},
                        "RoleArn": ROLE,
                        "Input": json.dumps({"at": "<aws.scheduler.scheduled-time>"}),
                    },
                },
            },
        }
    }
    path = Path(tmp_path) / "template.json"
    path.write_text(json.dumps(template))
    provisioned = Provisioner(
        Template.load(path, "SchedulerTemplate"), local.client, FunctionRuntime(local.endpoint, REGION, Path(tmp_path))
    ).run()
    assert local.api.get_schedule(Name=provisioned.physical["Morning"], GroupName="journeys")["State"] == "ENABLED"

    # When the clock is advanced three days across the change to summer time
    local.clock.advance(timedelta(days=3))

    # Then it fired at 09:00 Paris each day, into the template's queue
    url = str(provisioned.physical["Reminders"])
    assert local.times(url) == ["2026-03-28T08:00:00Z", "2026-03-29T07:00:00Z", "2026-03-30T07:00:00Z"]
