"""The tour's platform steps: health, who may call, problems, an event's round trip, the DLQ, Step Functions."""

from __future__ import annotations

import json
import uuid
from typing import Any

from ecrm_ops.tour.context import Step, TourContext, expect, wait_for


def _health(ctx: TourContext) -> str:
    body = expect(ctx.call("GET", "/health"), 200, "GET /health").body
    return f"GET /health -> 200 {body['status']} (version {body['version']})"


def _auth(ctx: TourContext) -> str:
    anonymous = expect(ctx.call("GET", "/whoami"), 401, "GET /whoami without a token")
    customer = expect(
        ctx.call("GET", "/whoami", token=ctx.token(customer_id="cus_demo_0001")), 403, "GET /whoami as a customer"
    )
    staff = expect(ctx.call("GET", "/whoami", token=ctx.token(group="marketer")), 200, "GET /whoami as staff")
    if staff.body["groups"] != ["marketer"]:
        raise AssertionError(f"whoami groups: {staff.body['groups']}")
    return (
        f"no token -> {anonymous.status} {anonymous.body['title']}; customer -> {customer.status} "
        f"{customer.body['title']}; marketer -> 200 {staff.body['email']}"
    )


def _bad_input(ctx: TourContext) -> str:
    result = expect(
        ctx.call("POST", "/pings", token=ctx.token(group="marketer"), body={"message": 42}),
        422,
        "POST /pings with a number as message",
    )
    if "message" not in result.body["detail"] or "problem+json" not in result.headers.get("Content-Type", ""):
        raise AssertionError(f"problem does not name the field: {result.body}")
    return f"POST /pings {{message: 42}} -> 422 {result.body['detail']}"


def _ping(ctx: TourContext) -> str:
    token = ctx.token(group="marketer")
    accepted = expect(ctx.call("POST", "/pings", token=token, body={"message": "hello, eCRM"}), 202, "POST /pings")
    ping_id = accepted.body["ping_id"]
    record = wait_for(
        lambda: (r := ctx.call("GET", f"/pings/{ping_id}", token=token)).status == 200 and r.body,
        what=f"ping {ping_id} to arrive",
    )
    return f"ping {ping_id} recorded after {record['round_trip_ms']} ms"


def _poison(ctx: TourContext) -> str:
    cloud = ctx.cloud
    events = cloud.client("events")
    poison = {
        "metadata": {
            "id": "evt_poison",
            "version": "1",
            "correlation_id": "cor_demo",
            "occurred_at": "2026-01-01T00:00:00Z",
        },
        "data": {"message": "no ping_id here"},
    }
    events.put_events(
        Entries=[
            {
                "EventBusName": cloud.state.event_bus_name,
                "Source": "ecrm.platform",
                "DetailType": "PingRequested",
                "Detail": json.dumps(poison),
            }
        ]
    )
    sqs = cloud.client("sqs")
    dlq_url = cloud.physical_id("AWS::SQS::Queue", "PlatformPingConsumerDeadLetterQueue")

    def parked() -> list[dict[str, Any]]:
        got = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, AttributeNames=["All"])
        return [m for m in got.get("Messages", []) if "evt_poison" in m["Body"]]

    messages = wait_for(parked, timeout=40, interval=1, what="the poison record in the DLQ")
    receives = messages[0]["Attributes"]["ApproximateReceiveCount"]
    for message in messages:
        sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
    return f"poison record received {receives} times, then moved to the DLQ (and cleared)"


def _selfcheck(ctx: TourContext) -> str:
    sfn = ctx.cloud.client("stepfunctions")
    arn = ctx.cloud.physical_id("AWS::StepFunctions::StateMachine", "PlatformSelfCheck")
    execution = sfn.start_execution(stateMachineArn=arn, name=f"demo-{uuid.uuid4()}", input="{}")["executionArn"]
    described = wait_for(
        lambda: (d := sfn.describe_execution(executionArn=execution))["status"] != "RUNNING" and d,
        timeout=60,
        what="the self-check execution",
    )
    if described["status"] != "SUCCEEDED":
        raise AssertionError(f"self-check {described['status']}: {described.get('cause')}")
    output = json.loads(described["output"])
    return f"execution SUCCEEDED, round trip {output['round_trip_ms']} ms"


STEPS: list[Step] = [
    Step("public health check", _health),
    Step("the API refuses callers without the right token", _auth),
    Step("bad input is a 4xx problem naming the field", _bad_input),
    Step("an event travels API -> EventBridge -> SQS -> Lambda -> DynamoDB", _ping),
    Step("a poison event is retried, then parked in the dead-letter queue", _poison),
    Step("the self-check state machine runs on Step Functions", _selfcheck),
]
