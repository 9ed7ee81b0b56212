"""Order events as the lake's signed order lines, and the lake writer's handler with a fake stream."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from ecrm.core.events import DomainEvent, envelope_for
from ecrm.core.lake import ORDER_LINE_COLUMNS
from ecrm.customers.models import CustomersMerged
from ecrm.transactions import orders
from ecrm.transactions.lake_records import change_id, history_events, order_rows
from ecrm.transactions.models import (
    OrderIn,
    OrderLineIn,
    OrderPlaced,
    OrderReturned,
    OrderStatusChanged,
    ReturnedLine,
    ReturnIn,
    StatusChangeIn,
)
from ecrm.transactions.order_lake import OrderLakeRows

from functions.transactions import on_order_changed
from tests.samples import sqs_batch

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CUSTOMER = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"
ORDER = "ord_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"
PLACED = OrderPlaced(
    order_id=ORDER,
    customer_id=CUSTOMER,
    currency="EUR",
    channel="web",
    store="shop.example",
    lines=[
        OrderLineIn(sku="SHOE-1", name="Shoe", category="shoes", quantity=2, unit_price_minor=4999),
        OrderLineIn(sku="SOCK-1", name="Socks", quantity=1, unit_price_minor=599),
    ],
    total_minor=10597,
    placed_at=NOW,
)
RETURNED = OrderReturned(
    order_id=ORDER,
    customer_id=CUSTOMER,
    return_id="ret_1",
    lines=[ReturnedLine(sku="SHOE-1", category="shoes", quantity=1, unit_price_minor=4999)],
    refund_minor=4999,
    currency="EUR",
    fully_returned=False,
    returned_at=NOW,
)


def cancelled(refund: int) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_id=ORDER,
        customer_id=CUSTOMER,
        previous_status="paid",
        status="cancelled",
        refund_minor=refund,
        currency="EUR",
        changed_at=NOW,
    )


def test_a_purchase_is_a_positive_row_per_line_with_every_column() -> None:
    rows = order_rows(PLACED, event_id="evt_1")
    assert [(r["kind"], r["sku"], r["amount_minor"], r["amount"]) for r in rows] == [
        ("purchase", "SHOE-1", 9998, 99.98),
        ("purchase", "SOCK-1", 599, 5.99),
    ]
    assert all(list(row) == [name for name, _ in ORDER_LINE_COLUMNS] for row in rows)
    assert rows[0]["occurred_at"] == "2026-11-23T10:00:00.000Z"


def test_returns_and_cancellations_are_negative_rows_never_purchases() -> None:
    (returned,) = order_rows(RETURNED, event_id="evt_2")
    assert (returned["kind"], returned["quantity"], returned["amount"]) == ("return", -1, -49.99)
    (cancel,) = order_rows(cancelled(10597), event_id="evt_3")
    assert (cancel["kind"], cancel["sku"], cancel["amount_minor"]) == ("cancellation", None, -10597)
    paid = cancelled(0).model_copy(update={"status": "paid"})
    assert order_rows(paid, event_id="evt_4") == []


class FakeWriter:
    def __init__(self, refuse: bool = False) -> None:
        self.rows: list[dict[str, Any]] = []
        self.refuse = refuse

    def write(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.refuse:
            return rows
        self.rows += rows
        return []


def bus_body(event: DomainEvent, n: int) -> str:
    return json.dumps(
        {
            "id": f"eb-{n}",
            "source": event.source,
            "detail-type": event.detail_type,
            "time": NOW.isoformat(),
            "detail": envelope_for(event),
        }
    )


class NoMerges:
    def survivor_of(self, customer_id: str) -> str:
        return customer_id


LAKE_ROWS = OrderLakeRows(orders=None, merges=NoMerges())  # type: ignore[arg-type]


def test_the_handler_writes_each_events_rows_and_fails_a_record_the_stream_refused(lambda_context: Any) -> None:
    writer = FakeWriter()
    handler: Any = on_order_changed.handler
    batch = sqs_batch([bus_body(PLACED, 0), bus_body(RETURNED, 1), bus_body(RETURNED, 2)])
    assert handler(batch, lambda_context, writer, LAKE_ROWS) == {"batchItemFailures": []}
    assert [r["kind"] for r in writer.rows] == ["purchase", "purchase", "return", "return"]
    assert writer.rows[2] == writer.rows[3]  # a redelivery is the same row: named by its change, not its envelope
    with pytest.raises(BatchProcessingError):
        handler(sqs_batch([bus_body(PLACED, 2)]), lambda_context, FakeWriter(refuse=True), LAKE_ROWS)


def test_an_orders_history_rebuilt_from_its_state_is_the_rows_its_events_made() -> None:
    # Given an order whose events are kept: placed, paid, shipped, two returns; and one placed then cancelled
    body = OrderIn(customer_id=CUSTOMER, currency="EUR", channel="web", store="shop.example", lines=PLACED.lines)
    order, placed = orders.new_order(ORDER, body, NOW)
    events: list[Any] = [placed]
    for status in ("paid", "shipped"):
        order, _ = orders.change_status(order, StatusChangeIn(status=status), NOW)
    for n, sku in enumerate(("SHOE-1", "SOCK-1")):
        back = ReturnIn.model_validate({"lines": [{"sku": sku, "quantity": 1}]})
        order, returned = orders.apply_return(order, back, f"ret_{n}", NOW)
        events.append(returned)
    other, other_placed = orders.new_order("ord_2", body, NOW)
    for status in ("paid", "cancelled"):
        other, changed = orders.change_status(other, StatusChangeIn(status=status), NOW)

    # Then the history rebuilt from each order's state is exactly the rows of its events, row ids included
    def rows(of: list[Any]) -> list[dict[str, Any]]:
        return [row for event in of for row in order_rows(event, event_id=change_id(event))]

    assert rows(history_events(order, CUSTOMER)) == rows(events)
    assert rows(history_events(other, CUSTOMER)) == rows([other_placed, changed])
    assert [r["kind"] for r in rows(history_events(other, "cus_other"))] == ["purchase", "purchase", "cancellation"]


class MergesRecorded:
    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    def attribute_merge(self, survivor_id: str, merged_ids: list[str], merged_at: datetime) -> list[dict[str, Any]]:
        self.calls.append((survivor_id, list(merged_ids)))
        return order_rows(PLACED.model_copy(update={"customer_id": survivor_id}), event_id=change_id(PLACED))


def test_a_merge_of_customers_writes_the_rows_the_service_attributes_to_the_survivor(lambda_context: Any) -> None:
    merged = CustomersMerged(
        survivor_id="cus_SURVIVOR",
        merged_ids=["cus_SURVIVOR", CUSTOMER],
        matched_by=["email"],
        reason="r",
        merged_at=NOW,
    )
    writer, lake_rows = FakeWriter(), MergesRecorded()
    handler: Any = on_order_changed.handler
    assert handler(sqs_batch([bus_body(merged, 0)]), lambda_context, writer, lake_rows) == {"batchItemFailures": []}
    assert lake_rows.calls == [("cus_SURVIVOR", ["cus_SURVIVOR", CUSTOMER])]
    assert {row["customer_id"] for row in writer.rows} == {"cus_SURVIVOR"}
