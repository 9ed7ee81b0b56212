"""Order changes on the customer's timeline: the transactions contract's OrderPlaced, OrderStatusChanged and
OrderReturned, built from its models, each become one interaction, and a redelivery adds nothing. The types
and properties chosen are checked against what segmentation and personalization read of an interaction, so an
order on the timeline is never a second purchase or a second return to them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ecrm.analysis.olap import ORDER, RETURNED
from ecrm.analysis.projection import behaviour_from_interaction
from ecrm.core.events import DomainEvent, envelope_for
from ecrm.customers.models import CustomerUpsert
from ecrm.customers.order_timeline import INTERACTION_TYPES, ORDER_EVENTS, OrderTimeline
from ecrm.customers.service import CustomerService
from ecrm.personalization.projection import PURCHASE_TYPES
from ecrm.transactions.models import (
    OrderLineIn,
    OrderPlaced,
    OrderReturned,
    OrderStatusChanged,
    ReturnedLine,
)

from functions.customers import on_order_event
from tests.integration.customers.conftest import RecordingPublisher
from tests.samples import sqs_batch

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def bus_body(event: DomainEvent) -> str:
    detail = envelope_for(event, "cor_1", AT)
    return json.dumps(
        {
            "version": "0",
            "id": f"bus-{detail['metadata']['id']}",
            "detail-type": event.detail_type,
            "source": event.source,
            "account": "123456789012",
            "time": "2026-12-01T09:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        }
    )


def order_life(customer_id: str) -> list[DomainEvent]:
    """An order placed on the web, paid, shipped, delivered, then partly returned and refunded."""
    common = {"order_id": "ord_1", "customer_id": customer_id, "currency": "EUR"}
    moves = [("placed", "paid"), ("paid", "shipped"), ("shipped", "delivered")]
    return [
        OrderPlaced(
            **common,
            channel="web",
            store="eu-shop",
            lines=[
                OrderLineIn(sku="mug", name="Mug", category="kitchen", quantity=2, unit_price_minor=1500),
                OrderLineIn(sku="pot", name="Pot", quantity=1, unit_price_minor=4000),
            ],
            total_minor=7000,
            placed_at=AT,
        ),
        *(OrderStatusChanged(**common, previous_status=a, status=b, changed_at=AT) for a, b in moves),
        OrderReturned(
            **common,
            return_id="ret_1",
            lines=[ReturnedLine(sku="mug", category="kitchen", quantity=1, unit_price_minor=1500)],
            refund_minor=1500,
            fully_returned=False,
            returned_at=AT,
        ),
    ]


def customer(service: CustomerService) -> str:
    body = {"source": "shop", "identities": [{"type": "email", "value": "kim@example.com"}]}
    return service.upsert(CustomerUpsert.model_validate(body)).customer_id


def test_each_order_change_becomes_one_interaction_and_a_redelivery_adds_nothing(
    service: CustomerService, publisher: RecordingPublisher, lambda_context: Any
) -> None:
    # Given a customer and the whole life of one order
    customer_id = customer(service)
    bodies = [bus_body(e) for e in order_life(customer_id)]
    timeline = OrderTimeline(service)

    # When the events are delivered, then delivered again (the queue's at-least-once)
    first = on_order_event.handler(sqs_batch(bodies), lambda_context, timeline)
    second = on_order_event.handler(sqs_batch(list(reversed(bodies))), lambda_context, timeline)

    # Then one interaction per change, saying what happened, and one InteractionRecorded each
    assert first["batchItemFailures"] == second["batchItemFailures"] == []
    items, _ = service.timeline(customer_id, limit=50, cursor=None)
    assert sorted(i.type for i in items) == sorted(
        ["order_received", "order_paid", "order_shipped", "order_delivered", "order_refunded"]
    )
    assert len(publisher.of("InteractionRecorded")) == 5
    placed = next(i for i in items if i.type == "order_received")
    assert (placed.source, placed.channel) == ("transactions", "web")
    assert placed.properties["total_minor"] == 7000
    assert (placed.properties["skus"], placed.properties["units"]) == (["mug", "pot"], 3)
    refunded = next(i for i in items if i.type == "order_refunded")
    assert (refunded.properties["refund_minor"], refunded.properties["return_id"]) == (1500, "ret_1")


def test_a_cancellation_is_on_the_timeline_with_its_refund(service: CustomerService, lambda_context: Any) -> None:
    customer_id = customer(service)
    cancelled = OrderStatusChanged(
        order_id="ord_2",
        customer_id=customer_id,
        previous_status="paid",
        status="cancelled",
        reason="changed my mind",
        refund_minor=2500,
        currency="EUR",
        changed_at=AT,
    )
    answer = on_order_event.handler(sqs_batch([bus_body(cancelled)]), lambda_context, OrderTimeline(service))
    assert answer["batchItemFailures"] == []
    (item,), _ = service.timeline(customer_id, limit=50, cursor=None)
    assert (item.type, item.properties["refund_minor"], item.properties["reason"]) == (
        "order_cancelled",
        2500,
        "changed my mind",
    )


def test_no_order_interaction_is_a_purchase_return_amount_or_item_to_the_other_engines(
    service: CustomerService, publisher: RecordingPublisher, lambda_context: Any
) -> None:
    # Given every order change recorded on the timeline
    customer_id = customer(service)
    bodies = [bus_body(e) for e in order_life(customer_id)]
    on_order_event.handler(sqs_batch(bodies), lambda_context, OrderTimeline(service))
    recorded = publisher.of("InteractionRecorded")
    assert len(recorded) == 5

    for event in recorded:
        # Then personalization does not take it for a purchase, nor OLAP for an order or a return fact
        assert event.type in INTERACTION_TYPES
        assert event.type not in PURCHASE_TYPES | {ORDER, RETURNED}
        # and segmentation's behaviour event has no amount, product or category to add to the order's own
        behaviour = behaviour_from_interaction(
            event.interaction_id, event.type, event.occurred_at, event.channel, event.properties, event.record_source
        )
        assert (behaviour.amount, behaviour.product_id, behaviour.category) == (None, None, None)


def test_an_order_of_an_unknown_customer_is_dropped_and_another_shape_goes_to_the_dlq(
    service: CustomerService, lambda_context: Any
) -> None:
    gone = bus_body(order_life("cus_gone")[0])
    answer = on_order_event.handler(
        sqs_batch([gone, gone.replace('"order_id"', '"number"')]), lambda_context, OrderTimeline(service)
    )
    assert len(answer["batchItemFailures"]) == 1


def test_the_rule_routes_exactly_what_the_timeline_records() -> None:
    from infra.engines.customers import ORDER_TIMELINE_EVENTS

    assert set(ORDER_TIMELINE_EVENTS) == set(ORDER_EVENTS)
