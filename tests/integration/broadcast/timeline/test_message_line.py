"""A message is one line on the customer's timeline, its status moving with broadcast's events (moto table).

The customer store's consumer of broadcast's events, through its handler: events in any order, redelivered
batches, two writers racing on one line; a line publishes no event (segmentation reads broadcast's events).
"""

from __future__ import annotations

import json
from typing import Any

from ecrm.customers.message_lines import LineKey, MessageLineStore
from ecrm.customers.message_timeline import MessageTimeline
from ecrm.customers.models import CustomerErasureRequested, CustomerUpsert, Interaction, TrackedIds
from ecrm.customers.service import CustomerService

from functions.customers import on_broadcast_event
from tests.integration.customers.conftest import TABLE, RecordingPublisher
from tests.samples import sqs_batch

REQUESTED_AT = "2026-11-23T09:58:00+00:00"


def customer(service: CustomerService) -> str:
    record = {"source": "shop", "identities": [{"type": "email", "value": "ada@example.com"}]}
    return service.upsert(CustomerUpsert.model_validate(record)).customer_id


def event(detail_type: str, customer_id: str, *, at: str, channel: str = "email", **data: Any) -> str:
    """A broadcast event as its queue delivers it; its id names the step, so one step is one event."""
    status = detail_type.removeprefix("Message").lower()
    event_id = f"evt_{data.get('message_id', 'msg_A')}_{status}"
    return json.dumps(
        {
            "version": "0",
            "id": f"bus-{event_id}",
            "detail-type": detail_type,
            "source": "ecrm.broadcast",
            "account": "123456789012",
            "time": at,
            "region": "us-east-1",
            "resources": [],
            "detail": {
                "metadata": {"id": event_id, "version": "1", "correlation_id": "cor_1", "occurred_at": at},
                "data": {
                    "message_id": "msg_A",
                    "customer_id": customer_id,
                    "channel": channel,
                    "purpose": "marketing",
                    "topic": None,
                    "source": "campaign:cmp_1",
                    "step": "0",
                    "status": status,
                    "requested_at": REQUESTED_AT,
                    "occurred_at": at,
                    **data,
                },
            },
        }
    )


def lines(service: CustomerService, customer_id: str) -> list[Interaction]:
    items, _ = service.timeline(customer_id, limit=50, cursor=None)
    return items


def test_a_message_is_one_line_at_its_highest_step_whatever_the_order_and_the_redeliveries(
    service: CustomerService, publisher: RecordingPublisher, lambda_context: Any
) -> None:
    # Given a customer and the events of one email, the delivery arriving before the send
    customer_id = customer(service)
    timeline = MessageTimeline(service)
    delivered = event("MessageDelivered", customer_id, at="2026-11-23T10:00:02+00:00")
    sent = event("MessageSent", customer_id, at="2026-11-23T10:00:00+00:00")
    opened = event("MessageOpened", customer_id, at="2026-11-23T11:00:00+00:00", status="delivered")

    # When they are delivered out of order, then every batch again
    answers = [
        on_broadcast_event.handler(sqs_batch(bodies), lambda_context, timeline)
        for bodies in [[delivered], [sent, opened]]
    ]
    answers += [on_broadcast_event.handler(sqs_batch([sent, opened, delivered]), lambda_context, timeline)]

    # Then one line, at its highest step, with each step once in time order, positioned at the request
    assert all(answer["batchItemFailures"] == [] for answer in answers)
    [line] = lines(service, customer_id)
    assert line.interaction_id == "broadcast:msg_A"
    assert line.type == "message_opened"
    assert line.occurred_at.isoformat() == REQUESTED_AT
    assert line.channel == "email"
    assert line.properties["source"] == "campaign:cmp_1"
    assert [step["status"] for step in line.properties["history"]] == ["sent", "delivered", "opened"]
    # And the line published nothing: segmentation takes the message's behaviour from broadcast's events
    assert publisher.of("InteractionRecorded") == []


def test_an_outcome_that_ends_the_message_outranks_engagement_and_keeps_its_reason(
    service: CustomerService, lambda_context: Any
) -> None:
    customer_id = customer(service)
    timeline = MessageTimeline(service)
    bodies = [
        event("MessageSent", customer_id, at="2026-11-23T10:00:00+00:00"),
        event("MessageComplained", customer_id, at="2026-11-23T10:05:00+00:00", reason="abuse"),
        event("MessageClicked", customer_id, at="2026-11-23T10:06:00+00:00", link="https://example.com/x"),
    ]
    on_broadcast_event.handler(sqs_batch(bodies), lambda_context, timeline)

    [line] = lines(service, customer_id)
    assert line.type == "message_complained"
    assert line.properties["reason"] == "abuse"
    assert line.properties["history"][-1] == {
        "status": "clicked",
        "at": "2026-11-23T10:06:00+00:00",
        "link": "https://example.com/x",
    }


class RacedLineStore(MessageLineStore):
    """Another consumer writes the line (the message's next event, in another batch) just before this one does."""

    def __init__(self, client: Any, table: str, racing: Any) -> None:
        super().__init__(client, table)
        self.racing = racing

    def save(self, key: LineKey, line: Interaction, *, applied: frozenset[str], version: int) -> bool:
        racing, self.racing = self.racing, None
        if racing is not None:
            racing()
        return super().save(key, line, applied=applied, version=version)


def test_two_events_of_one_message_racing_both_land_on_the_line(
    service: CustomerService, dynamodb: Any, lambda_context: Any
) -> None:
    # Given a sent email whose delivery is being written by another consumer at the same moment as its open
    customer_id = customer(service)
    plain = MessageTimeline(service)
    on_broadcast_event.handler(
        sqs_batch([event("MessageSent", customer_id, at="2026-11-23T10:00:00+00:00")]), lambda_context, plain
    )
    delivered = event("MessageDelivered", customer_id, at="2026-11-23T10:00:02+00:00")
    raced = MessageTimeline(
        service,
        RacedLineStore(
            dynamodb, TABLE, lambda: on_broadcast_event.handler(sqs_batch([delivered]), lambda_context, plain)
        ),
    )

    # When the open's write finds the line changed since it read it
    answer = on_broadcast_event.handler(
        sqs_batch([event("MessageOpened", customer_id, at="2026-11-23T11:00:00+00:00")]), lambda_context, raced
    )

    # Then it reads again and writes both: nothing the other writer added is lost
    assert answer["batchItemFailures"] == []
    [line] = lines(service, customer_id)
    assert [step["status"] for step in line.properties["history"]] == ["sent", "delivered", "opened"]


class LaggingLineStore(MessageLineStore):
    """An eventually consistent read that does not show the line yet (DynamoDB may answer so within a second);
    strong reads see it. Counts the reads of each kind."""

    def __init__(self, client: Any, table: str) -> None:
        super().__init__(client, table)
        self.reads: list[bool] = []

    def load(self, key: LineKey, *, consistent: bool = True) -> Any:
        self.reads.append(consistent)
        return super().load(key, consistent=True) if consistent else None


def test_a_stale_first_read_of_the_line_is_never_applied_and_a_redelivery_changes_nothing(
    service: CustomerService, dynamodb: Any, lambda_context: Any
) -> None:
    # Given a sent email's line, and a consumer whose cheap first read does not see it yet
    customer_id = customer(service)
    sent = event("MessageSent", customer_id, at="2026-11-23T10:00:00+00:00")
    on_broadcast_event.handler(sqs_batch([sent]), lambda_context, MessageTimeline(service))
    lagging = LaggingLineStore(dynamodb, TABLE)
    timeline = MessageTimeline(service, lagging)
    # When the delivery arrives, then the send is delivered again
    delivered = event("MessageDelivered", customer_id, at="2026-11-23T10:00:02+00:00")
    answers = [on_broadcast_event.handler(sqs_batch([body]), lambda_context, timeline) for body in (delivered, sent)]
    # Then the stale read's write failed and a strong read merged the delivery into the line as it is
    assert all(a["batchItemFailures"] == [] for a in answers)
    [line] = lines(service, customer_id)
    assert [step["status"] for step in line.properties["history"]] == ["sent", "delivered"]
    # And each event read cheaply first, then strongly: the redelivered send found itself on the line
    assert lagging.reads == [False, True, False, True]


def test_an_event_of_an_erased_customer_leaves_no_line(service: CustomerService, lambda_context: Any) -> None:
    customer_id = customer(service)
    request = service.request_erasure(customer_id, requested_by="staff-1")
    service.erase_own_data(
        CustomerErasureRequested(
            request_id=request.request_id,
            customer_id=customer_id,
            customer_ids=[customer_id],
            requested_at=request.requested_at,
            tracked_ids=TrackedIds(),
        )
    )
    timeline = MessageTimeline(service)
    answer = on_broadcast_event.handler(
        sqs_batch([event("MessageSent", customer_id, at="2026-11-23T10:00:00+00:00")]), lambda_context, timeline
    )

    assert answer["batchItemFailures"] == []
    items = dynamodb_items(service, customer_id)
    assert not [i for i in items if i["sk"]["S"].startswith("TL#")]


def dynamodb_items(service: CustomerService, customer_id: str) -> list[dict[str, Any]]:
    answer = service.store.client.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"CUST#{customer_id}"}},
    )
    return list(answer["Items"])
