"""Brokered-purchase outcomes on the customer's timeline: the transactions contract's PurchaseBrokered and
PurchaseFailed, built from its models, each become one interaction, and a redelivery adds nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ecrm.core.events import DomainEvent, envelope_for
from ecrm.customers.models import CustomerUpsert
from ecrm.customers.purchase_timeline import INTERACTION_TYPES, PurchaseTimeline
from ecrm.customers.service import CustomerService
from ecrm.transactions.models import PurchaseBrokered, PurchaseFailed

from functions.customers import on_purchase_event
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


def test_each_purchase_outcome_becomes_one_interaction_and_a_redelivery_adds_nothing(
    service: CustomerService, lambda_context: Any
) -> None:
    # Given a customer with one brokered and one failed purchase
    customer_id = service.upsert(
        CustomerUpsert.model_validate({"source": "shop", "identities": [{"type": "email", "value": "kim@example.com"}]})
    ).customer_id
    common = {"customer_id": customer_id, "product_id": "prd_stove", "vendor_id": "acme", "currency": "EUR"}
    events = [
        PurchaseBrokered(**common, purchase_id="pur_1", quantity=2, total_minor=9000, order_id="ord_1", brokered_at=AT),
        PurchaseFailed(
            **common,
            purchase_id="pur_2",
            total_minor=4500,
            reason="confirmation_timed_out",
            released=True,
            refunded=True,
            failed_at=AT,
        ),
    ]
    bodies = [bus_body(e) for e in events]
    timeline = PurchaseTimeline(service)

    # When they are delivered, then again
    first = on_purchase_event.handler(sqs_batch(bodies), lambda_context, timeline)
    second = on_purchase_event.handler(sqs_batch(bodies), lambda_context, timeline)

    # Then one interaction each, saying what happened
    assert first["batchItemFailures"] == second["batchItemFailures"] == []
    items, _ = service.timeline(customer_id, limit=50, cursor=None)
    assert sorted(i.type for i in items) == sorted(INTERACTION_TYPES.values())
    failed = next(i for i in items if i.type == "purchase_failed")
    assert failed.source == "transactions"
    assert (failed.properties["reason"], failed.properties["refunded"]) == ("confirmation_timed_out", True)
    brokered = next(i for i in items if i.type == "purchase_brokered")
    assert brokered.properties["order_id"] == "ord_1"


def test_an_outcome_of_an_unknown_customer_is_dropped_and_another_shape_goes_to_the_dlq(
    service: CustomerService, lambda_context: Any
) -> None:
    known = PurchaseBrokered(
        customer_id="cus_gone",
        product_id="p",
        vendor_id="v",
        currency="EUR",
        purchase_id="pur_1",
        quantity=1,
        total_minor=1,
        order_id="ord_1",
        brokered_at=AT,
    )
    bodies = [bus_body(known), bus_body(known).replace('"customer_id"', '"someone"')]
    answer = on_purchase_event.handler(sqs_batch(bodies), lambda_context, PurchaseTimeline(service))
    assert len(answer["batchItemFailures"]) == 1


def test_the_rule_routes_exactly_what_the_timeline_records() -> None:
    from infra.engines.customers import PURCHASE_TIMELINE_EVENTS

    assert set(PURCHASE_TIMELINE_EVENTS) == set(INTERACTION_TYPES)
