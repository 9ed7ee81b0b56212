"""Segmentation takes a message's behaviour from broadcast's events (`ecrm.analysis.message_behaviour`), through
the consumer's handler on the real store (moto), as the bus delivers them.

Outcomes and engagement are behaviour (a segment on opens follows in real time), once however often delivered;
the `sent` of an email is a step, a push's `sent` its last word; a voice call counts as `phone`; a message to a
customer merged since goes to the survivor; an erased customer's message changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from ecrm.analysis.customer_events import apply_customer_event
from ecrm.analysis.membership import MembershipService
from ecrm.analysis.segment_sql import CROCKFORD
from ecrm.analysis.store import AnalysisStore
from ecrm.broadcast.models import MessageDelivered, MessageEvent, MessageOpened, MessageSent
from ecrm.customers.models import CustomersMerged, ProfileSnapshot

from functions.analysis import on_customer_event
from tests.integration.analysis.conftest import NOW, RecordingPublisher, created, saved_segment
from tests.outcome_counts import bus_body
from tests.samples import sqs_batch

ON_CUSTOMER_EVENT: Callable[..., dict[str, Any]] = on_customer_event.handler
ADA = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"
BOB = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2F"
OPENED_LATELY = {"event": "message_opened", "window": {"last_days": 30}, "count": {"op": "gte", "value": 1}}


def message(kind: type[MessageEvent], customer_id: str, *, channel: str = "email", message_id: str = "msg_1") -> Any:
    fields = {"message_id": message_id, "customer_id": customer_id, "channel": channel, "purpose": "marketing"}
    status = {"Opened": "delivered", "Clicked": "delivered"}.get(kind.detail_type.removeprefix("Message"))
    status = status or kind.detail_type.removeprefix("Message").lower()  # engagement leaves the status delivered
    return kind(**fields, source="campaign:cmp_1", status=status, occurred_at=NOW, requested_at=NOW)  # type: ignore[call-arg]


def delivery(*events: tuple[MessageEvent, str]) -> dict[str, Any]:
    """The SQS batch the bus hands the consumer: each (event, its envelope's id)."""
    return sqs_batch([bus_body(event, event_id=event_id, at=NOW, correlation_id="cor_1") for event, event_id in events])


def behaviour(store: AnalysisStore, customer_id: str) -> list[tuple[str, str, str | None]]:
    return sorted((e.event_id, e.type, e.channel) for e in store.load_customer(customer_id).events if e.source)


def test_outcomes_and_engagement_are_behaviour_once_and_a_segment_on_opens_follows(
    membership: MembershipService, store: AnalysisStore, publisher: RecordingPublisher, lambda_context: Any
) -> None:
    # Given a customer and a segment of those who opened a message lately
    apply_customer_event(membership, created(ADA, country="FR"))
    opened_lately = saved_segment(store, "Opened lately", OPENED_LATELY)
    # When an email's send, delivery and open arrive, a push's send, a voice call's delivery, then the batch again
    batch = delivery(
        (message(MessageSent, ADA), "evt_sent"),
        (message(MessageDelivered, ADA), "evt_delivered"),
        (message(MessageOpened, ADA), "evt_opened"),
        (message(MessageSent, ADA, channel="push", message_id="msg_2"), "evt_push"),
        (message(MessageDelivered, ADA, channel="voice", message_id="msg_3"), "evt_call"),
    )
    answers = [ON_CUSTOMER_EVENT(batch, lambda_context, membership) for _ in range(2)]
    # Then each outcome is behaviour once, by its consent channel; the email's `sent` is not
    assert all(a == {"batchItemFailures": []} for a in answers)
    assert behaviour(store, ADA) == [
        ("broadcast:evt_call", "message_delivered", "phone"),
        ("broadcast:evt_delivered", "message_delivered", "email"),
        ("broadcast:evt_opened", "message_opened", "email"),
        ("broadcast:evt_push", "message_sent", "push"),
    ]
    # And the customer entered the segment on opens, once
    assert [m for m in publisher.moves() if m[1] == opened_lately.segment_id] == [
        ("SegmentEntered", opened_lately.segment_id, ADA)
    ]
    assert set(store.members(opened_lately.segment_id, CROCKFORD)) == {ADA}


def test_a_merged_customers_message_goes_to_the_survivor_and_an_erased_ones_changes_nothing(
    membership: MembershipService, store: AnalysisStore, lambda_context: Any
) -> None:
    # Given two customers, the second merged into the first
    apply_customer_event(membership, created(ADA, country="FR"))
    apply_customer_event(membership, created(BOB, country="FR"))
    merged = CustomersMerged(
        survivor_id=ADA,
        merged_ids=[BOB],
        matched_by=["email"],
        reason="same email",
        merged_at=NOW + timedelta(minutes=1),
        snapshot=ProfileSnapshot(version=2, attributes={"country": "FR"}, identity_types=["email"]),
    )
    apply_customer_event(membership, merged)
    # When a message to the merged customer is opened
    ON_CUSTOMER_EVENT(delivery((message(MessageOpened, BOB), "evt_bob_opened")), lambda_context, membership)
    # Then the open is the survivor's behaviour
    assert ("broadcast:evt_bob_opened", "message_opened", "email") in behaviour(store, ADA)
    # When the survivor is erased, then a late delivery of another message arrives
    membership.remove(ADA, status="erased", merged_into=None, trigger="CustomerErasureRequested")
    ON_CUSTOMER_EVENT(
        delivery((message(MessageDelivered, ADA, message_id="msg_9"), "evt_late")), lambda_context, membership
    )
    # Then nothing of it is kept
    assert ("broadcast:evt_late", "message_delivered", "email") not in behaviour(store, ADA)


def test_behaviour_no_segment_reads_is_kept_without_saving_the_projection_again(
    membership: MembershipService, store: AnalysisStore, lambda_context: Any
) -> None:
    # Given a known customer and no segment on message behaviour
    apply_customer_event(membership, created(ADA, country="FR"))
    version = store.load_customer(ADA).projection.version
    rows = len(membership.behaviour_lake.rows)  # type: ignore[attr-defined]
    # When an email's delivery arrives
    ON_CUSTOMER_EVENT(delivery((message(MessageDelivered, ADA), "evt_d1")), lambda_context, membership)
    # Then it is kept, as an event and a lake row, and the projection was not written again
    assert behaviour(store, ADA) == [("broadcast:evt_d1", "message_delivered", "email")]
    assert len(membership.behaviour_lake.rows) == rows + 1  # type: ignore[attr-defined]
    assert store.load_customer(ADA).projection.version == version
    # When a segment reads deliveries and another delivery arrives, then the projection is saved and evaluated
    delivered = saved_segment(store, "Delivered", {"event": "message_delivered"})
    ON_CUSTOMER_EVENT(
        delivery((message(MessageDelivered, ADA, message_id="msg_2"), "evt_d2")), lambda_context, membership
    )
    assert store.load_customer(ADA).projection.version == version + 1
    assert set(store.members(delivered.segment_id, CROCKFORD)) == {ADA}
