"""A merge of customers in the lake's order lines, on moto: the merged customer's orders become the survivor's
rows, an order event that arrives after the merge is written for the survivor, and the model job's query
counts those orders once, under the survivor (the merged customer's own rows are dropped with them)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb
from ecrm.analysis.training import orders_sql
from ecrm.core.clock import FixedClock
from ecrm.core.lake import ORDER_LINE_COLUMNS, LakeTables
from ecrm.transactions.merge_map import MergeMap
from ecrm.transactions.models import OrderIn, ReturnIn, StatusChangeIn
from ecrm.transactions.order_lake import OrderLakeRows
from ecrm.transactions.order_service import OrderService
from ecrm.transactions.order_store import OrderStore

from tests.integration.transactions.conftest import TABLE, Engine, order_body

SURVIVOR = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"
LOSER = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2F"
LATER_SURVIVOR = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2G"


def place(orders: OrderService, customer_id: str, key: str) -> str:
    body = OrderIn.model_validate(order_body(customer_id=customer_id))
    return orders.place(body, idempotency_key=key, caller="shop", correlation_id="c").order.order_id


def merge(lake: OrderLakeRows, survivor: str, loser: str, minutes: int) -> list[dict[str, Any]]:
    """The lake writer's part of the customer store's `CustomersMerged` (its merged ids include the survivor)."""
    return lake.attribute_merge(survivor, [survivor, loser], datetime(2026, 11, 23, 11, minutes, tzinfo=UTC))


def keys(rows: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {tuple(row.values()) for row in rows}


def test_a_merge_makes_the_losers_orders_the_survivors_once(engine: Engine, dynamodb: Any) -> None:
    orders = engine.deps.orders
    lake = OrderLakeRows(OrderStore(dynamodb, TABLE), MergeMap(dynamodb, TABLE))
    # Given the loser's order with a shoe sent back, the loser's cancelled order, and the survivor's order
    kept = place(orders, LOSER, "k1")
    for status in ("paid", "shipped"):
        orders.change_status(kept, StatusChangeIn(status=status), correlation_id="c")
    cancelled = place(orders, LOSER, "k2")
    orders.change_status(cancelled, StatusChangeIn(status="cancelled"), correlation_id="c")
    place(orders, SURVIVOR, "k3")
    before = [row for event in engine.relay() for row in lake.rows_for(event)]  # type: ignore[arg-type]
    assert {row["customer_id"] for row in before} == {LOSER, SURVIVOR}

    # When the customer store merges the loser into the survivor (delivered twice)
    moved = merge(lake, SURVIVOR, LOSER, 0)
    assert merge(lake, SURVIVOR, LOSER, 0) == moved

    # Then the loser's orders are the survivor's rows, the same rows their events made (a reader keeps each once)
    assert {row["customer_id"] for row in moved} == {SURVIVOR}
    as_survivors = [{**row, "customer_id": SURVIVOR} for row in before if row["customer_id"] == LOSER]
    assert keys(moved) == keys(as_survivors)

    # And a return of the loser's order handled after the merge is written for the survivor
    orders.take_return(kept, ReturnIn.model_validate({"lines": [{"sku": "SHOE-1", "quantity": 1}]}), correlation_id="c")
    (returned,) = engine.relay()
    late = lake.rows_for(returned)  # type: ignore[arg-type]
    assert [(row["customer_id"], row["kind"], row["amount"]) for row in late] == [(SURVIVOR, "return", -49.99)]

    # When the survivor is merged in turn, every order merged into them follows to the new survivor
    chained = merge(lake, LATER_SURVIVOR, SURVIVOR, 5)
    assert {row["customer_id"] for row in chained} == {LATER_SURVIVOR}
    assert {row["order_id"] for row in chained} == {row["order_id"] for row in before}
    assert lake.merges.survivor_of(LOSER) == LATER_SURVIVOR

    # And the model job's query, over every row the lake got, counts the orders once under the last survivor
    every_row = before + moved + moved + late + late + chained
    assert _model_job_revenue(every_row, live=[LATER_SURVIVOR], gone=[LOSER, SURVIVOR]) == {
        LATER_SURVIVOR: round(2 * (99.98 + 17.97) - 49.99, 2)  # the loser's kept order net of the shoe, and the
    }  # survivor's; the cancelled order counts nowhere


def _model_job_revenue(rows: list[dict[str, Any]], *, live: list[str], gone: list[str]) -> dict[str, float]:
    db = duckdb.connect()
    types = {"string": "VARCHAR", "int": "INTEGER", "bigint": "BIGINT", "double": "DOUBLE", "timestamp": "TIMESTAMP"}
    db.execute(f"CREATE TABLE order_lines ({', '.join(f'{n} {types[t]}' for n, t in ORDER_LINE_COLUMNS)})")
    for row in rows:
        at = datetime.fromisoformat(row["occurred_at"].replace("Z", "+00:00")).replace(tzinfo=None)
        db.execute(
            f"INSERT INTO order_lines VALUES ({', '.join('?' for _ in ORDER_LINE_COLUMNS)})",
            [*(row[n] for n, _ in ORDER_LINE_COLUMNS[:-1]), at],
        )
    db.execute("CREATE TABLE segment_profiles (customer_id VARCHAR, version BIGINT, deleted BOOLEAN)")
    for customer_id in live:
        db.execute("INSERT INTO segment_profiles VALUES (?, 1, false)", [customer_id])
    for customer_id in gone:
        db.execute("INSERT INTO segment_profiles VALUES (?, 1, false), (?, 2, true)", [customer_id, customer_id])
    sql = orders_sql(LakeTables(profiles="segment_profiles", events="behaviour_events"))
    revenue: dict[str, float] = {}
    for customer_id, _day, amount, _category in db.execute(sql).fetchall():
        revenue[customer_id] = round(revenue.get(customer_id, 0.0) + amount, 2)
    return revenue


def test_without_a_merge_an_order_is_its_customers(engine: Engine, dynamodb: Any) -> None:
    lake = OrderLakeRows(OrderStore(dynamodb, TABLE), MergeMap(dynamodb, TABLE))
    place(engine.deps.orders, SURVIVOR, "k1")
    (placed,) = engine.relay()
    rows = lake.rows_for(placed)  # type: ignore[arg-type]
    assert {(row["customer_id"], row["event_id"]) for row in rows} == {(SURVIVOR, f"{rows[0]['order_id']}:placed")}


def test_an_order_placed_for_a_merged_customer_is_the_survivors(dynamodb: Any, clock: FixedClock) -> None:
    # Given the loser merged into the survivor (the lake writer noted the merge)
    merges = MergeMap(dynamodb, TABLE)
    merges.note(LOSER, SURVIVOR, clock.now())
    orders = OrderService(OrderStore(dynamodb, TABLE), clock, merges)

    # When a shop that kept the loser's id places an order, and retries it
    order_id = place(orders, LOSER, "k1")
    assert place(orders, LOSER, "k1") == order_id

    # Then the order is the survivor's: in their orders, none under the loser
    assert orders.get(order_id).customer_id == SURVIVOR
    assert [order.order_id for order in orders.for_customer(SURVIVOR)] == [order_id]
    assert orders.for_customer(LOSER) == []
