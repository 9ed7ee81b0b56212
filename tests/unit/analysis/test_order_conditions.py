"""Segment conditions over orders: validation, reading aloud, and one history both paths read alike.

The property test (`test_segment_equivalence`) proves the SQL and the predicate agree on random orders; these
tests pin the semantics a marketer relies on: a return is never a purchase, a cancelled order is no order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ecrm.analysis.order_rows import major_amount, order_rows_of
from ecrm.analysis.predicate import OrderRow, Subject, compile_predicate
from ecrm.analysis.rule_text import describe
from ecrm.analysis.rules import ORDER_CHANGES, Rule, dependencies, problems
from ecrm.analysis.segment_sql import LakeTables, audience_sql
from ecrm.transactions.models import OrderLineIn, OrderPlaced, OrderReturned, OrderStatusChanged, ReturnedLine
from pydantic import TypeAdapter, ValidationError

from tests.unit.analysis.test_segment_equivalence import CATALOG, load_lake

RULE = TypeAdapter(Rule)
NOW = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
TWO_ORDERS_IN_90_DAYS = {"orders": {"window": {"last_days": 90}, "count": {"op": "gte", "value": 2}}}
WEB_THIS_MONTH = {
    "orders": {"where": [{"property": "channel", "op": "eq", "value": "web"}], "window": {"this": "month"}}
}
SPENT_100 = {"orders": {"spent": {"op": "gte", "value": 100}}}


def bought(order: str, days_ago: float, amount: float, *, channel: str = "web", sku: str = "sku1") -> OrderRow:
    at = NOW - timedelta(days=days_ago)
    return OrderRow(f"{order}-placed", order, "purchase", at, amount, "EUR", sku, "shoes", channel, "shopweb")


def returned(order: str, days_ago: float, amount: float, *, sku: str = "sku1") -> OrderRow:
    return OrderRow(f"{order}-back", order, "return", NOW - timedelta(days=days_ago), -amount, "EUR", sku, "shoes")


def cancelled(order: str, days_ago: float) -> OrderRow:
    return OrderRow(f"{order}-cancel", order, "cancellation", NOW - timedelta(days=days_ago), 0.0, "EUR")


POPULATION = {
    "cus_twoA": [bought("o1", 10, 60.0), bought("o2", 40, 50.0)],
    "cus_oldB": [bought("o3", 10, 60.0), bought("o4", 200, 50.0)],
    "cus_backC": [bought("o5", 4, 120.0), returned("o5", 2, 120.0), bought("o6", 6, 30.0)],
    "cus_cancD": [bought("o7", 3, 80.0), bought("o8", 4, 90.0), cancelled("o8", 1)],
    "cus_storeE": [bought("o9", 1, 500.0, channel="store"), bought("o10", 2, 5.0, channel="store")],
    "cus_noneF": [],
}


def selected_by_both(raw: dict[str, Any]) -> set[str]:
    """The customers a rule selects, asserting the predicate and the SQL on the lake agree."""
    rule = RULE.validate_python(raw)
    subjects = [Subject(customer_id=c, orders=rows) for c, rows in POPULATION.items()]
    predicate = compile_predicate(rule, CATALOG)
    live = {s.customer_id for s in subjects if predicate(s, NOW)}
    connection = load_lake(subjects)
    sql = audience_sql(rule, now=NOW, tables=LakeTables.in_database("lake"), catalog=CATALOG)
    on_lake = {row[0] for row in connection.execute(sql).fetchall()}
    connection.close()
    assert live == on_lake, (live, on_lake)
    return live


def test_two_orders_in_90_days_count_orders_not_returns_nor_cancelled_ones() -> None:
    # A return is no order (cus_backC placed two); a cancelled order is none at all (cus_cancD placed one that
    # stands); an order 200 days ago is outside the window
    assert selected_by_both(TWO_ORDERS_IN_90_DAYS) == {"cus_twoA", "cus_backC", "cus_storeE"}


def test_spent_is_net_of_returns_and_leaves_cancelled_orders_out() -> None:
    # cus_backC bought 150 and returned 120 (30 net); cus_cancD's 90 was cancelled (80 net)
    assert selected_by_both(SPENT_100) == {"cus_twoA", "cus_oldB", "cus_storeE"}


def test_a_channel_filter_reads_the_order_s_channel() -> None:
    # NOW is the 23rd: the web orders of this month, but not cus_storeE's shop orders
    assert selected_by_both(WEB_THIS_MONTH) == {"cus_twoA", "cus_oldB", "cus_backC", "cus_cancD"}


def test_a_fully_returned_order_was_placed_but_spends_nothing() -> None:
    # In the last 5 days cus_backC placed o5 only, and all of it came back
    assert "cus_backC" in selected_by_both({"orders": {"window": {"last_days": 5}}})
    assert selected_by_both({"orders": {"window": {"last_days": 5}, "spent": {"op": "gt", "value": 0}}}) == {
        "cus_cancD",
        "cus_storeE",
    }


def test_order_conditions_read_aloud_and_depend_on_orders() -> None:
    assert describe(RULE.validate_python(TWO_ORDERS_IN_90_DAYS)) == "placed at least 2 orders in the last 90 days"
    assert describe(RULE.validate_python(WEB_THIS_MONTH)) == "placed an order with channel is web this month"
    assert describe(RULE.validate_python(SPENT_100)) == (
        "placed orders spending (net of returns) an amount that is at least 100.0"
    )
    found = dependencies(RULE.validate_python(WEB_THIS_MONTH))
    assert ORDER_CHANGES in found.events
    assert found.time_relative


def test_bad_order_conditions_are_named_by_path() -> None:
    value = {
        "any": [
            {"orders": {"count": {"op": "gte", "value": 1.5}}},
            {"orders": {"where": [{"property": "channel", "op": "gt", "value": "web"}]}},
            {"orders": {"where": [{"property": "store", "op": "in", "value": "paris"}]}},
            {"orders": {"spent": {"op": "between", "value": [100, 10]}}},
        ]
    }
    assert [(p.path, p.message) for p in problems(RULE.validate_python(value))] == [
        ("rule.any[0].orders.count.value", "a count is a whole number, 0 or more"),
        (
            "rule.any[1].orders.where[0].op",
            "gt does not apply to a string; use one of contains, eq, exists, in, ne, not_exists, not_in, starts_with",
        ),
        ("rule.any[2].orders.where[0].value", "in takes a list of 1 to 500 values"),
        ("rule.any[3].orders.spent.value", "between takes [low, high] with low <= high"),
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"orders": {"where": [{"property": "colour", "op": "eq", "value": "red"}]}}, "channel"),
        ({"orders": {"sum": {"op": "gt", "value": 1}}}, "Extra inputs are not permitted"),
        ({"orders": {"window": {"last_days": 0}}}, "greater than or equal to 1"),
    ],
)
def test_an_order_condition_of_the_wrong_shape_is_refused(value: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RULE.validate_python(value)


def test_order_events_become_the_rows_the_lake_holds() -> None:
    # Given an order of two lines in yen, one unit returned, and another order cancelled after payment
    placed = OrderPlaced(
        order_id="ord_1",
        customer_id="cus_1",
        currency="JPY",
        channel="web",
        store="shopweb",
        lines=[
            OrderLineIn(sku="a", name="A", category="shoes", quantity=2, unit_price_minor=1500),
            OrderLineIn(sku="b", name="B", quantity=1, unit_price_minor=300),
        ],
        total_minor=3300,
        placed_at=NOW,
    )
    back = OrderReturned(
        order_id="ord_1",
        customer_id="cus_1",
        return_id="ret_1",
        lines=[ReturnedLine(sku="a", category="shoes", quantity=1, unit_price_minor=1500)],
        refund_minor=1500,
        currency="JPY",
        fully_returned=False,
        returned_at=NOW,
    )
    cancel = OrderStatusChanged(
        order_id="ord_2",
        customer_id="cus_1",
        previous_status="paid",
        status="cancelled",
        refund_minor=1999,
        currency="EUR",
        changed_at=NOW,
    )
    shipped = cancel.model_copy(update={"status": "shipped"})
    # Then purchases are positive per line, in major units; returns and cancellations negative; others nothing
    assert [(r.kind, r.sku, r.amount, r.channel) for r in order_rows_of(placed, event_id="e1")] == [
        ("purchase", "a", 3000.0, "web"),
        ("purchase", "b", 300.0, "web"),
    ]
    assert [(r.kind, r.sku, r.amount) for r in order_rows_of(back, event_id="e2")] == [("return", "a", -1500.0)]
    assert [(r.kind, r.amount) for r in order_rows_of(cancel, event_id="e3")] == [("cancellation", -19.99)]
    assert order_rows_of(shipped, event_id="e4") == []
    assert major_amount(1234, "KWD") == 1.234
