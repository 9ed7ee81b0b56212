"""Events through the local cloud: bus -> queue -> consumer -> table, partial failures, DLQ, redrive."""

from __future__ import annotations

import json
from typing import Any

from ecrm.core.events import envelope_for
from ecrm.platform.models import PingRequested
from ecrm_ops.local_cloud import redrive_dead_letters
from ecrm_ops.tour.context import TourContext, wait_for

from infra.local.cloud import LocalCloud


def ping(ping_id: str) -> PingRequested:
    return PingRequested.model_validate(
        {"ping_id": ping_id, "message": "e2e", "requested_by": "e2e", "requested_at": "2026-11-23T10:00:00Z"}
    )


def platform_item(cloud: LocalCloud, ping_id: str) -> dict[str, Any] | None:
    table = cloud.physical_id("AWS::DynamoDB::Table", "Platform")
    item = cloud.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": f"PING#{ping_id}"}, "sk": {"S": "PING"}})
    return item.get("Item")  # type: ignore[no-any-return]


def bus_event(detail: dict[str, Any]) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": "e2e",
            "source": "ecrm.platform",
            "detail-type": "PingRequested",
            "account": "123456789012",
            "time": "2026-11-23T10:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        }
    )


def test_an_api_request_reaches_dynamodb_through_the_bus(tour: TourContext, staff_token: str) -> None:
    # When a ping is posted
    accepted = tour.call("POST", "/pings", token=staff_token, body={"message": "through the bus"})
    assert accepted.status == 202
    ping_id = accepted.body["ping_id"]
    # Then the consumer records it within seconds, and the API reads it back
    wait_for(lambda: platform_item(tour.cloud, ping_id), timeout=15, what="the ping in DynamoDB")
    assert tour.call("GET", f"/pings/{ping_id}", token=staff_token).body["message"] == "through the bus"


def test_an_event_put_on_the_bus_reaches_its_consumer(cloud: LocalCloud) -> None:
    cloud.client("events").put_events(
        Entries=[
            {
                "EventBusName": cloud.state.event_bus_name,
                "Source": "ecrm.platform",
                "DetailType": "PingRequested",
                "Detail": json.dumps(envelope_for(ping("png_01E2EBUS0000000000000000A1"))),
            }
        ]
    )
    item = wait_for(lambda: platform_item(cloud, "png_01E2EBUS0000000000000000A1"), timeout=15, what="the item")
    assert item["message"]["S"] == "e2e"


def test_one_bad_record_is_retried_alone_then_dead_lettered_and_can_be_redriven(cloud: LocalCloud) -> None:
    sqs = cloud.client("sqs")
    queue = cloud.physical_id("AWS::SQS::Queue", "PlatformPingConsumerQueue")
    dlq = cloud.physical_id("AWS::SQS::Queue", "PlatformPingConsumerDeadLetterQueue")
    good_id = "png_01E2EGOOD000000000000000A1"
    bad = envelope_for(ping("png_01E2EBAD0000000000000000A1"))
    del bad["data"]["ping_id"]
    invocations_before = cloud.runtime.invocations.copy()
    # When one good and one bad record arrive in the same batch
    sqs.send_message_batch(
        QueueUrl=queue,
        Entries=[
            {"Id": "good", "MessageBody": bus_event(envelope_for(ping(good_id)))},
            {"Id": "bad", "MessageBody": bus_event(bad)},
        ],
    )
    # Then the good one is stored once, and the bad one ends in the DLQ after maxReceiveCount receives
    wait_for(lambda: platform_item(cloud, good_id), timeout=15, what="the good record")

    def dead_lettered() -> list[dict[str, Any]]:
        attrs = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"]) >= 1  # type: ignore[return-value]

    wait_for(dead_lettered, timeout=40, interval=0.5, what="the bad record in the DLQ")
    max_receives = json.loads(
        sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
    )["maxReceiveCount"]
    consumer = next(p.function for p in cloud.pollers if getattr(p, "queue_url", None) == queue)
    calls = cloud.runtime.invocations[consumer] - invocations_before.get(consumer, 0)
    # one batch per receive of the bad record (plus one if a poller took the good record on its own)
    assert calls in {max_receives, max_receives + 1}, "the bad record alone was retried until the redrive limit"
    log = (cloud.state_dir / "logs").glob("*PingConsumer*.log")
    assert not any("already recorded" in p.read_text() and good_id in p.read_text() for p in log)

    # And the operator can send it back once the cause is fixed (here: it fails again, and returns)
    moved = redrive_dead_letters(dlq, sqs=sqs)
    assert moved == 1
    wait_for(dead_lettered, timeout=40, interval=0.5, what="the record to return to the DLQ")
    sqs.purge_queue(QueueUrl=dlq)
