"""OLAP SQL on DuckDB over a small lake whose every figure can be computed by hand.

The lake (tables in a `lake` schema, rows written by the engine's own record functions):

| customer | latest profile        | behaviour (after deduplication)                                       |
|----------|-----------------------|-----------------------------------------------------------------------|
| A        | FR                    | orders 100 (Oct 5, shoes) and 50 (Nov 2, bags), an email opened Nov 3  |
| B        | FR                    | order 30 (Nov 10), delivered twice to the lake                        |
| C        | DE                    | a page view, two messages delivered (Nov 4, Nov 20), one opened       |
| D        | DE (was FR before)    | order 25 (Oct 20)                                                      |
| E        | erased (tombstone)    | order 999 (Nov 5): must never count                                   |
| F        | DE                    | a page view (Nov 6)                                                    |

Segments: A entered seg_X (Nov 1); B entered seg_X (Nov 1) and left it (Nov 15); D entered seg_Y.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from ecrm.analysis.models import OlapRequest
from ecrm.analysis.olap import MEASURES, olap_sql
from ecrm.analysis.predicate import BehaviourEvent, Subject
from ecrm.analysis.segment_sql import (
    BEHAVIOUR_EVENT_COLUMNS,
    LakeTables,
    behaviour_record,
    profile_columns,
    profile_record,
)
from ecrm.core.lake import ORDER_LINE_COLUMNS
from ecrm.transactions.lake_records import order_rows
from ecrm.transactions.models import OrderLineIn, OrderPlaced, OrderReturned, OrderStatusChanged, ReturnedLine

RECORDED = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TABLES = LakeTables.in_database("lake")
_ARROW = {
    "string": pa.string(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "timestamp": pa.timestamp("ms", tz="UTC"),
}


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 12, 0, tzinfo=UTC)


def event(event_id: str, kind: str, when: datetime, **values: Any) -> BehaviourEvent:
    return BehaviourEvent(event_id=event_id, type=kind, occurred_at=when, **values)


def order(event_id: str, when: datetime, amount: float, category: str = "shoes") -> BehaviourEvent:
    return event(event_id, "order_completed", when, amount=amount, category=category, channel="web")


def entered(segment_id: str, when: datetime) -> BehaviourEvent:
    return event(f"mbr_in_{segment_id}_{when:%m%d}", "segment_entered", when, segment_id=segment_id)


def exited(segment_id: str, when: datetime) -> BehaviourEvent:
    return event(f"mbr_out_{segment_id}_{when:%m%d}", "segment_exited", when, segment_id=segment_id)


class Lake:
    """The two segmentation tables and the transactions engine's order lines, as rows the streams receive,
    loaded into DuckDB."""

    def __init__(self) -> None:
        self.profiles: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.order_lines: list[dict[str, Any]] = []

    def profile(self, customer_id: str, version: int, *, deleted: bool = False, **attributes: Any) -> None:
        subject = Subject(customer_id=customer_id, attributes=attributes)
        self.profiles.append(profile_record(subject, version=version, updated_at=RECORDED, deleted=deleted))

    def behaviour(self, customer_id: str, *events: BehaviourEvent, recorded: datetime = RECORDED) -> None:
        self.events += [behaviour_record(customer_id, e, recorded_at=recorded) for e in events]

    def orders(self, *events: OrderPlaced | OrderReturned | OrderStatusChanged) -> None:
        """The rows the transactions engine's lake writer makes of its events, each event id its order's."""
        for n, order_event in enumerate(events):
            self.order_lines += order_rows(order_event, event_id=f"{order_event.order_id}_{n}")

    def connect(self) -> duckdb.DuckDBPyConnection:
        connection = duckdb.connect(":memory:")
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute("CREATE SCHEMA lake")
        for table, columns, rows in (
            ("segment_profiles", profile_columns(), self.profiles),
            ("behaviour_events", BEHAVIOUR_EVENT_COLUMNS, self.events),
            ("order_lines", ORDER_LINE_COLUMNS, self.order_lines),
        ):
            schema = pa.schema([(name, _ARROW[kind]) for name, kind in columns])
            arrow = pa.Table.from_pylist([_typed(row, columns) for row in rows], schema=schema)  # noqa: F841
            connection.execute(f"CREATE TABLE lake.{table} AS SELECT * FROM arrow")
        return connection


def _typed(row: dict[str, Any], columns: list[tuple[str, str]]) -> dict[str, Any]:
    """JSON lake record -> Arrow values, as Firehose's conversion reads them."""
    typed: dict[str, Any] = {}
    for name, kind in columns:
        value = row.get(name)
        if value is not None and kind == "timestamp":
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        elif value is not None and kind == "date":
            value = date.fromisoformat(value)
        typed[name] = value
    return typed


@pytest.fixture(scope="module")
def lake() -> Iterator[duckdb.DuckDBPyConnection]:
    data = Lake()
    data.profile("cus_A", 1, country="FR", tier="gold")
    data.profile("cus_B", 1, country="FR")
    data.profile("cus_C", 1, country="DE")
    data.profile("cus_D", 1, country="FR")
    data.profile("cus_D", 2, country="DE")
    data.profile("cus_E", 1, country="FR")
    data.profile("cus_E", 2, deleted=True)
    data.profile("cus_F", 1, country="DE")
    data.behaviour(
        "cus_A",
        order("o_a1", at(10, 5), 100.0),
        order("o_a2", at(11, 2), 50.0, "bags"),
        event("e_a1", "email_opened", at(11, 3), channel="email"),
        entered("seg_X", at(11, 1)),
    )
    data.behaviour("cus_B", order("o_b1", at(11, 10), 30.0), entered("seg_X", at(11, 1)), exited("seg_X", at(11, 15)))
    data.behaviour("cus_B", order("o_b1", at(11, 10), 30.0), recorded=RECORDED + timedelta(minutes=5))
    data.behaviour(
        "cus_C",
        event("v_c1", "page_viewed", at(11, 4)),
        event("m_c1", "message_delivered", at(11, 4), channel="email"),
        event("m_c2", "message_opened", at(11, 4), channel="email"),
        event("m_c3", "message_delivered", at(11, 20), channel="email"),
    )
    data.behaviour("cus_D", order("o_d1", at(10, 20), 25.0), entered("seg_Y", at(10, 1)))
    data.behaviour("cus_E", order("o_e1", at(11, 5), 999.0))
    data.behaviour("cus_F", event("v_f1", "page_viewed", at(11, 6)))
    connection = data.connect()
    yield connection
    connection.close()


def olap(connection: duckdb.DuckDBPyConnection, **request: Any) -> list[dict[str, Any]]:
    cursor = connection.execute(olap_sql(OlapRequest.model_validate(request), TABLES))
    names = [column[0] for column in cursor.description]
    return [
        {n: round(v, 6) if isinstance(v, float) else v for n, v in zip(names, row, strict=True)}
        for row in cursor.fetchall()
    ]


def test_measures_by_country(lake: duckdb.DuckDBPyConnection) -> None:
    # When orders, revenue, average order value and conversion are asked by country
    rows = olap(
        lake,
        measures=["orders", "revenue", "average_order_value", "conversion_rate", "events", "customers"],
        dimensions=["country"],
    )

    # Then each figure is the hand-computed one: duplicates once, latest profile, the erased customer nowhere
    assert rows == [
        {
            "country": "FR",
            "orders": 3,
            "revenue": 180.0,
            "average_order_value": 60.0,
            "conversion_rate": 1.0,
            "events": 4,
            "customers": 2,
        },
        {
            "country": "DE",
            "orders": 1,
            "revenue": 25.0,
            "average_order_value": 25.0,
            "conversion_rate": 0.333333,
            "events": 6,
            "customers": 3,
        },
    ]


def test_measures_by_month_come_in_time_order(lake: duckdb.DuckDBPyConnection) -> None:
    # When revenue is asked by month
    rows = olap(lake, measures=["orders", "revenue", "average_order_value", "events"], dimensions=["month"])

    # Then months come first to last, October's average order not truncated
    assert rows == [
        {"month": date(2026, 10, 1), "orders": 2, "revenue": 125.0, "average_order_value": 62.5, "events": 2},
        {"month": date(2026, 11, 1), "orders": 2, "revenue": 80.0, "average_order_value": 40.0, "events": 8},
    ]


def test_totals_without_dimensions_and_message_rates(lake: duckdb.DuckDBPyConnection) -> None:
    # When totals are asked, with message measures
    rows = olap(
        lake,
        measures=["orders", "revenue", "customers", "conversion_rate", "messages_delivered", "open_rate", "click_rate"],
    )

    # Then there is one row: three of five active customers ordered; one of two messages was opened, none clicked
    assert rows == [
        {
            "orders": 4,
            "revenue": 205.0,
            "customers": 5,
            "conversion_rate": 0.6,
            "messages_delivered": 2,
            "open_rate": 0.5,
            "click_rate": 0.0,
        }
    ]


def test_the_segment_dimension_counts_current_members_only(lake: duckdb.DuckDBPyConnection) -> None:
    # When revenue is asked by segment
    rows = olap(lake, measures=["revenue", "orders", "events"], dimensions=["segment"])

    # Then seg_X holds A only (B left it), seg_Y holds D; membership moves are not counted as events
    assert rows == [
        {"segment": "seg_X", "revenue": 150.0, "orders": 2, "events": 3},
        {"segment": "seg_Y", "revenue": 25.0, "orders": 1, "events": 1},
    ]


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (
            {"filters": [{"dimension": "country", "op": "eq", "value": "FR"}]},
            {"orders": 3, "revenue": 180.0, "customers": 2},
        ),
        (
            {"filters": [{"dimension": "country", "op": "not_in", "value": ["FR"]}]},
            {"orders": 1, "revenue": 25.0, "customers": 3},
        ),
        (
            {"filters": [{"dimension": "segment", "value": "seg_X"}]},
            {"orders": 2, "revenue": 150.0, "customers": 1},
        ),
        (
            {"filters": [{"dimension": "month", "value": "2026-10-01"}]},
            {"orders": 2, "revenue": 125.0, "customers": 2},
        ),
        (
            {"time_range": {"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}},
            {"orders": 2, "revenue": 80.0, "customers": 4},
        ),
        (
            {
                "filters": [{"dimension": "country", "value": "FR"}],
                "time_range": {"from": "2026-11-01T00:00:00Z", "to": "2026-11-10T12:00:00Z"},
            },
            {"orders": 1, "revenue": 50.0, "customers": 1},
        ),
    ],
)
def test_filters_and_time_range(
    lake: duckdb.DuckDBPyConnection, request_: dict[str, Any], expected: dict[str, Any]
) -> None:
    # When totals are asked with a filter or a time range (from inclusive, to exclusive)
    rows = olap(lake, measures=["orders", "revenue", "customers"], **request_)

    # Then only the matching activity counts
    assert rows == [expected]


def test_order_by_and_limit(lake: duckdb.DuckDBPyConnection) -> None:
    # When the top country by customers is asked
    rows = olap(lake, measures=["revenue", "customers"], dimensions=["country"], order_by="customers", limit=1)

    # Then Germany (three customers) comes first, alone
    assert rows == [{"country": "DE", "revenue": 25.0, "customers": 3}]


def test_a_merged_customers_orders_count_once_under_the_survivor() -> None:
    # Given a loser whose order was moved to the survivor at the merge (the loser's row stays in the lake)
    data = Lake()
    data.profile("cus_S", 1, country="FR")
    data.profile("cus_L", 1, country="FR")
    data.profile("cus_L", 2, deleted=True)
    data.behaviour("cus_L", order("o_l1", at(11, 1), 70.0))
    data.behaviour("cus_S", order("o_s1", at(11, 2), 30.0), order("o_l1", at(11, 1), 70.0))

    # When revenue is asked
    rows = olap(data.connect(), measures=["orders", "revenue", "customers"])

    # Then the moved order counts once
    assert rows == [{"orders": 2, "revenue": 100.0, "customers": 1}]


def test_every_ratio_is_computed_in_double() -> None:
    # Athena divides integers as integers (7 / 2 = 3): every ratio's numerator is cast first
    for name in ("average_order_value", "conversion_rate", "open_rate", "click_rate"):
        assert MEASURES[name].startswith("CAST("), name
        assert " AS DOUBLE) / NULLIF(" in MEASURES[name]


def placed(order_id: str, customer_id: str, when: datetime, *lines: tuple[str, str, int]) -> OrderPlaced:
    """An order of (sku, category, price in cents) lines, one of each."""
    return OrderPlaced(
        order_id=order_id,
        customer_id=customer_id,
        currency="EUR",
        channel="web",
        lines=[
            OrderLineIn(sku=sku, name=sku, category=category, quantity=1, unit_price_minor=price)
            for sku, category, price in lines
        ],
        total_minor=sum(price for _, _, price in lines),
        placed_at=when,
    )


def returned(order_id: str, customer_id: str, when: datetime, sku: str, category: str, price: int) -> OrderReturned:
    return OrderReturned(
        order_id=order_id,
        customer_id=customer_id,
        return_id=f"ret_{order_id}",
        lines=[ReturnedLine(sku=sku, category=category, quantity=1, unit_price_minor=price)],
        refund_minor=price,
        currency="EUR",
        fully_returned=False,
        returned_at=when,
    )


def cancelled(order_id: str, customer_id: str, when: datetime, refund: int) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_id=order_id,
        customer_id=customer_id,
        previous_status="paid",
        status="cancelled",
        refund_minor=refund,
        currency="EUR",
        changed_at=when,
    )


@pytest.fixture(scope="module")
def shop() -> Iterator[duckdb.DuckDBPyConnection]:
    """G: an order of shoes 80 + bag 40 (Nov 2), the bag returned (Nov 9), a second order 20 (Nov 12) cancelled,
    its rows delivered twice. H: an order 60 (Oct 10), and a tracked "order completed" 60 for the same order.
    K: no order row, a tracked "order completed" 15 (Nov 3). L: a page view only (Nov 5)."""
    data = Lake()
    for customer in ("cus_G", "cus_H", "cus_K", "cus_L"):
        data.profile(customer, 1, country="FR")
    data.orders(
        placed("ord_g1", "cus_G", at(11, 2), ("shoe-1", "shoes", 8000), ("bag-1", "bags", 4000)),
        returned("ord_g1", "cus_G", at(11, 9), "bag-1", "bags", 4000),
        placed("ord_g2", "cus_G", at(11, 12), ("hat-1", "fashion", 2000)),
        cancelled("ord_g2", "cus_G", at(11, 13), 2000),
        placed("ord_h1", "cus_H", at(10, 10), ("shoe-2", "shoes", 6000)),
    )
    data.order_lines += data.order_lines  # every row delivered twice
    data.behaviour("cus_H", order("trk_h1", at(10, 10), 60.0))
    data.behaviour("cus_K", order("trk_k1", at(11, 3), 15.0, "bags"))
    data.behaviour("cus_L", event("v_l1", "page_viewed", at(11, 5)))
    connection = data.connect()
    yield connection
    connection.close()


def test_revenue_is_net_of_returns_and_a_cancelled_order_counts_nowhere(shop: duckdb.DuckDBPyConnection) -> None:
    # When totals are asked
    rows = olap(shop, measures=["orders", "revenue", "average_order_value", "customers", "conversion_rate"])

    # Then G's order counts once at 80 (the bag came back), the cancelled order not at all; H's order once
    # (the engine's row, not also its tracked copy); K's tracked order stands, nothing else knowing it
    assert rows == [
        {
            "orders": 3,
            "revenue": 155.0,
            "average_order_value": 51.666667,
            "customers": 4,
            "conversion_rate": 0.75,
        }
    ]


def test_a_return_is_never_an_order_and_lowers_its_category_and_month(shop: duckdb.DuckDBPyConnection) -> None:
    # When revenue is asked by category and by event type
    by_category = olap(shop, measures=["orders", "revenue"], dimensions=["category"], order_by="revenue")
    by_type = olap(shop, measures=["orders", "revenue", "events"], dimensions=["event_type"], order_by="revenue")

    # Then the bag's sale and its return cancel out, and the return is an event but no order
    assert by_category == [
        {"category": "shoes", "orders": 2, "revenue": 140.0},
        {"category": "bags", "orders": 2, "revenue": 15.0},
        {"category": None, "orders": 0, "revenue": 0.0},
    ]
    assert by_type == [
        {"event_type": "order_completed", "orders": 3, "revenue": 195.0, "events": 3},
        {"event_type": "page_viewed", "orders": 0, "revenue": 0.0, "events": 1},
        {"event_type": "order_returned", "orders": 0, "revenue": -40.0, "events": 1},
    ]


def test_a_return_counts_when_it_happened(shop: duckdb.DuckDBPyConnection) -> None:
    # When revenue is asked for the week of the return only
    rows = olap(
        shop,
        measures=["orders", "revenue"],
        time_range={"from": "2026-11-08T00:00:00Z", "to": "2026-11-11T00:00:00Z"},
    )

    # Then the refund lowers that week's revenue, with no order in it
    assert rows == [{"orders": 0, "revenue": -40.0}]
