"""The transactions engine's part of an erasure, on moto: loyalty and comparison state deleted, orders kept without
their customer, acknowledged from this engine; a redelivered request and a late order event change nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from ecrm.core.erasure import CustomerErasureRequested
from ecrm.core.events import envelope_for
from ecrm.transactions.catalog import ComparePreferences
from ecrm.transactions.catalog_store import CatalogStore
from ecrm.transactions.erasure import TransactionsErasure
from ecrm.transactions.loyalty_store import LoyaltyStore
from ecrm.transactions.models import OrderPlaced, TransactionsDataErased
from ecrm.transactions.order_store import OrderStore

from functions.transactions import on_erasure_requested
from tests.integration.transactions.conftest import CUSTOMER, NOW, TABLE, Engine, order_body
from tests.samples import sqs_batch


class RecordingPublisher:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def publish_all(self, events: Any, *, correlation_id: str | None = None) -> None:
        self.events.extend(events)


def request_body() -> str:
    request = CustomerErasureRequested(
        request_id="era_01JD3Z6Q5N8V4W7X2Y9A0B1C2D", customer_id=CUSTOMER, customer_ids=[CUSTOMER], requested_at=NOW
    )
    return json.dumps(
        {
            "id": "eb-erasure",
            "source": request.source,
            "detail-type": request.detail_type,
            "time": NOW.isoformat(),
            "detail": envelope_for(request),
        }
    )


def test_an_erasure_deletes_loyalty_detaches_orders_and_is_acknowledged(
    engine: Engine, dynamodb: Any, clock: Any, lambda_context: Any
) -> None:
    # Given a customer with an order and its points
    engine.call("POST", "/loyalty/rules", body={"minimum_redemption": 10}, groups="admin")
    _, order = engine.call("POST", "/orders", body=order_body(), headers={"Idempotency-Key": "k"})
    engine.relay()
    engine.deliver_order_events()
    assert engine.loyalty.account(CUSTOMER).balance > 0
    placed = [e for e in engine.events if isinstance(e, OrderPlaced)]
    # And what comparisons keep of them: stated preferences beside the counted history
    shoppers = CatalogStore(dynamodb, TABLE)
    shoppers.save_preferences(CUSTOMER, ComparePreferences())
    assert shoppers.shopper(CUSTOMER)[0] is not None
    # When the erasure request is delivered twice
    erasure = TransactionsErasure(OrderStore(dynamodb, TABLE), LoyaltyStore(dynamodb, TABLE), shoppers, clock)
    acks = RecordingPublisher()
    handler: Any = on_erasure_requested.handler
    batch = sqs_batch([request_body(), request_body()])
    assert handler(batch, lambda_context, (erasure, acks)) == {"batchItemFailures": []}
    # Then the account is empty with no statement, and the order is kept without its customer
    account = engine.loyalty.account(CUSTOMER)
    assert (account.balance, account.statement) == (0, [])
    kept = engine.call("GET", "/orders/{order_id}", path={"order_id": order["order_id"]})[1]
    assert kept["customer_id"] == "erased"
    assert kept["total_minor"] == order["total_minor"]
    listed = engine.call("GET", "/customers/{customer_id}/orders", path={"customer_id": CUSTOMER})[1]
    assert listed["items"] == []
    assert shoppers.shopper(CUSTOMER) == (None, None)
    assert (
        shoppers.client.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"SHOPPER#{CUSTOMER}"}},
        )["Items"]
        == []
    )
    assert [type(a) for a in acks.events] == [TransactionsDataErased] * 2
    assert acks.events[0].engine == "transactions"
    # And a late redelivery of the order's OrderPlaced earns nothing back
    clock.advance(seconds=timedelta(minutes=5).total_seconds())
    assert engine.loyalty.earn_for_order(placed[0]) == 0
    assert engine.loyalty.account(CUSTOMER).balance == 0
