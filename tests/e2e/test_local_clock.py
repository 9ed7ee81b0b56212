"""The local cloud's clock moved from outside, as `ecrm local clock advance` does, through its control route."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import timedelta
from typing import Any

from infra.local.cloud import LocalCloud
from infra.local.timekeeping import CONTROL_FILE


def advance(cloud: LocalCloud, by: str) -> dict[str, Any]:
    url = json.loads((cloud.state_dir / CONTROL_FILE).read_text())["clock_url"]
    request = urllib.request.Request(f"{url}/clock/advance", data=json.dumps({"by": by}).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=120) as response:
        return dict(json.loads(response.read()))


def test_a_two_day_wait_completes_after_advancing_two_days(cloud: LocalCloud) -> None:
    # Given an execution waiting two days
    sfn = cloud.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="e2e-two-day-wait",
        definition=json.dumps(
            {
                "StartAt": "Wait",
                "States": {"Wait": {"Type": "Wait", "Seconds": 172800, "Next": "Done"}, "Done": {"Type": "Succeed"}},
            }
        ),
        roleArn="arn:aws:iam::123456789012:role/e2e",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, name="e2e-wait-1", input="{}")["executionArn"]
    assert cloud.clock.until_waiting(execution)
    # When the clock is advanced two days
    advance(cloud, "2d")
    # Then the execution has completed (the run after the wait takes milliseconds)
    deadline = time.monotonic() + 30
    while (status := sfn.describe_execution(executionArn=execution)["status"]) == "RUNNING":
        assert time.monotonic() < deadline, "the execution still waits"
        time.sleep(0.1)
    assert status == "SUCCEEDED"


def test_a_schedule_created_at_run_time_fires_when_the_clock_passes_it(cloud: LocalCloud) -> None:
    sqs, scheduler = cloud.client("sqs"), cloud.client("scheduler")
    url = sqs.create_queue(QueueName="e2e-scheduled")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    at = (cloud.clock.now() + timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:00")
    scheduler.create_schedule(
        Name="e2e-once",
        ScheduleExpression=f"at({at})",
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        Target={"Arn": arn, "RoleArn": "arn:aws:iam::123456789012:role/e2e", "Input": '{"reminder": 1}'},
    )
    advance(cloud, "6h")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"]) for m in messages] == [{"reminder": 1}]
    assert "e2e-once" not in {s["Name"] for s in scheduler.list_schedules()["Schedules"]}


def test_functions_read_the_local_clock(cloud: LocalCloud) -> None:
    from datetime import UTC, datetime

    from ecrm_ops.tour.context import TourContext, expect, wait_for

    # Given the local clock a day ahead of real time
    advance(cloud, "1d")
    assert cloud.clock.offset >= timedelta(days=1)
    tour = TourContext(cloud)
    token = tour.token(group="marketer")

    # When a ping travels API -> EventBridge -> SQS -> consumer
    ping = expect(tour.call("POST", "/pings", token=token, body={"message": "what time is it"}), 202, "POST /pings")
    record = wait_for(
        lambda: (r := tour.call("GET", f"/pings/{ping.body['ping_id']}", token=token)).status == 200 and r.body,
        timeout=60,
        what="the ping to be recorded",
    )

    # Then both functions stamped it with the local time, not the host's
    host_now = datetime.now(UTC)
    for stamp in (record["requested_at"], record["received_at"]):
        assert datetime.fromisoformat(stamp) - host_now > timedelta(hours=23)
