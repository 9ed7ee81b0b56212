"""The platform slice in process: publisher -> EventBridge rule -> SQS -> consumer -> DynamoDB."""

from __future__ import annotations

from datetime import UTC, datetime

from ecrm.core.clock import SystemClock
from ecrm.core.publisher import EventPublisher
from ecrm.platform.models import PingRequested
from ecrm.platform.store import DynamoPingStore

from functions.platform import on_ping_requested
from tests.integration.queues import drain
from tests.samples import sqs_batch

CORRELATION_ID = "cor_01JD3Z6Q5N8V4W7X2Y9A0B1C2E"


def _lambda_event(messages: list[dict]) -> dict:
    """The event Lambda's SQS event source mapping would build from the received messages."""
    event = sqs_batch([m["Body"] for m in messages], message_ids=[m["MessageId"] for m in messages])
    for record, message in zip(event["Records"], messages, strict=True):
        record["receiptHandle"] = message["ReceiptHandle"]
        record["md5OfBody"] = message["MD5OfBody"]
        record["attributes"]["ApproximateReceiveCount"] = message["Attributes"]["ApproximateReceiveCount"]
    return event


def test_a_published_ping_ends_up_in_the_table(ping_route, events_client, sqs_client, platform_table, lambda_context):
    # Given two pings published on the bus
    requested_at = datetime.now(UTC)
    pings = [
        PingRequested(ping_id=f"png_{n:026d}", message=f"ping {n}", requested_by="selfcheck", requested_at=requested_at)
        for n in range(2)
    ]
    EventPublisher(ping_route.bus_name, events_client).publish_all(pings, correlation_id=CORRELATION_ID)

    # When the queue's messages are handed to the consumer, as Lambda would
    messages = drain(sqs_client, ping_route.queue_url)
    deps = on_ping_requested.Deps(store=DynamoPingStore(platform_table), clock=SystemClock())
    response = on_ping_requested.handler(_lambda_event(messages), lambda_context, deps)

    # Then both records were processed and their arrivals are in the table
    assert response == {"batchItemFailures": []}
    for ping in pings:
        item = platform_table.get_item(Key={"pk": f"PING#{ping.ping_id}", "sk": "PING"})["Item"]
        assert item["message"] == ping.message
        assert item["status"] == "received"
        assert int(item["round_trip_ms"]) >= 0


def test_a_redelivered_batch_leaves_one_item_per_ping(
    ping_route, events_client, sqs_client, platform_table, lambda_context
):
    # Given a ping that was consumed once
    ping = PingRequested(
        ping_id="png_01JD3Z6Q5N8V4W7X2Y9A0B1C2D",
        message="once",
        requested_by="selfcheck",
        requested_at=datetime.now(UTC),
    )
    EventPublisher(ping_route.bus_name, events_client).publish_all([ping])
    event = _lambda_event(drain(sqs_client, ping_route.queue_url))
    deps = on_ping_requested.Deps(store=DynamoPingStore(platform_table), clock=SystemClock())
    on_ping_requested.handler(event, lambda_context, deps)
    first = platform_table.get_item(Key={"pk": f"PING#{ping.ping_id}", "sk": "PING"})["Item"]

    # When the same batch is delivered again
    response = on_ping_requested.handler(event, lambda_context, deps)

    # Then it succeeds and the table still holds the first arrival only
    assert response == {"batchItemFailures": []}
    assert platform_table.scan()["Count"] == 1
    assert platform_table.get_item(Key={"pk": f"PING#{ping.ping_id}", "sk": "PING"})["Item"] == first
