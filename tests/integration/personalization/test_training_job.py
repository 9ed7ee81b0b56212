"""The training job on moto: the lake's query, the model written where requests read it, activation, the event."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
from ecrm.analysis.segment_sql import LakeTables
from ecrm.core.clock import FixedClock
from ecrm.core.lake import ORDER_LINE_COLUMNS
from ecrm.personalization.recommendation_service import RecommendationService
from ecrm.personalization.store import PersonalizationStore
from ecrm.personalization.training import TrainingJob, TrainingSettings, interactions_sql, run_training
from ecrm.transactions.lake_records import order_rows
from ecrm.transactions.models import OrderLineIn, OrderPlaced, OrderReturned, OrderStatusChanged, ReturnedLine

from functions.personalization import job_train
from tests.integration.personalization.conftest import BUCKET, RecordingPublisher
from tests.unit.personalization.test_engine_training import NOW, tastes


def test_a_trained_model_serves_requests_and_is_kept_for_audit(
    store: PersonalizationStore, s3: Any, publisher: RecordingPublisher, rules: Any
) -> None:
    # Given nothing serving yet; When a run trains on the synthetic tastes
    clock = FixedClock(NOW)
    report = run_training(
        tastes(), settings=TrainingSettings(), clock=clock, store=store, s3=s3, bucket=BUCKET, publisher=publisher
    )

    # Then the version serves, with its metrics recorded, its full model in S3, and an event
    assert report.activated
    assert report.reason == "no model was serving"
    assert store.active_model() == report.version == "20261123T030000000Z"
    assert report.written["model_items"] == 1 + 5 + 51  # popular lists, 5 categories, 51 items
    assert report.written["for_you_lists"] == 80
    (recorded,) = store.model_versions()
    assert recorded["metrics"]["model"]["ndcg"] > recorded["metrics"]["popularity"]["ndcg"]
    document = json.loads(s3.get_object(Bucket=BUCKET, Key=f"models/recommender/{report.version}.json")["Body"].read())
    assert document["model"]["algorithm"] == report.algorithm
    assert document["metrics"] == report.metrics
    (trained,) = publisher.of("ModelTrained")
    assert (trained.model_version, trained.activated, trained.artifact) == (report.version, True, report.artifact)

    # and a request for a customer known only from the lake gets their precomputed list, of their taste
    service = RecommendationService(store, clock, rules=rules, pointer_ttl_seconds=-1)
    listed = service.recommend("cus_003", k=3)
    assert listed.strategy == "personal"
    assert listed.model_version == report.version
    assert all(item.item_id.startswith("g3_") for item in listed.items)
    similar = service.recommend("cus_003", slot="similar", item="g2_4", k=3)
    assert all(item.item_id.startswith("g2_") for item in similar.items)
    together = service.recommend("cus_003", slot="bought_together", item="g1_0")
    assert [item.item_id for item in together.items] == ["g1_1"]


def test_an_older_run_never_replaces_a_newer_serving_version(store: PersonalizationStore, s3: Any) -> None:
    later = run_training(
        tastes(), settings=TrainingSettings(), clock=FixedClock(NOW), store=store, s3=s3, bucket=BUCKET
    )
    earlier = run_training(
        tastes(seed=3), settings=TrainingSettings(), clock=FixedClock(NOW - timedelta(hours=1)), store=store
    )

    assert later.activated
    assert not earlier.activated
    assert earlier.reason == "a newer version is already serving"
    assert store.active_model() == later.version
    assert "for_you_lists" not in earlier.written


@dataclass
class LakeResult:
    output_location: str


class CsvLake:
    """Athena as the job sees it: the query runs and its CSV result lands in the bucket."""

    database = "ecrm_lake"

    def __init__(self, s3: Any, rows: list[tuple[str, str, str, str, str]]) -> None:
        self.s3, self.rows = s3, rows
        self.queries: list[str] = []

    def run(self, sql: str) -> LakeResult:
        self.queries.append(sql)
        out = io.StringIO()
        writer = csv.writer(out, quoting=csv.QUOTE_ALL)
        writer.writerow(["customer_id", "product_id", "event_type", "category", "occurred_at"])
        writer.writerows(self.rows)
        self.s3.put_object(Bucket=BUCKET, Key="query-results/q1.csv", Body=out.getvalue().encode())
        return LakeResult(f"s3://{BUCKET}/query-results/q1.csv")


def test_the_job_handler_trains_on_the_lakes_interactions(
    store: PersonalizationStore, s3: Any, publisher: RecordingPublisher, lambda_context: Any
) -> None:
    data = tastes(customers=40)
    rows = [
        (c, i, k, data.categories.get(i, ""), datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3])
        for c, i, t, k in zip(data.customers, data.items, data.times, data.kinds, strict=True)
    ]
    lake = CsvLake(s3, rows)
    job = TrainingJob(lake=lake, s3=s3, bucket=BUCKET, store=store, publisher=publisher, clock=FixedClock(NOW))

    handler: Any = job_train.handler  # the decorated handler takes the injected job as a third argument
    result = handler({"days": 90}, lambda_context, job)

    assert result["status"] == "trained"
    assert result["activated"]
    assert result["data"]["interactions"] == 320
    assert "TIMESTAMP '2026-08-25 03:00:00.000000'" in lake.queries[0]
    assert store.active_model() == result["version"]
    empty = TrainingJob(
        lake=CsvLake(s3, []), s3=s3, bucket=BUCKET, store=store, publisher=publisher, clock=FixedClock(NOW)
    )
    assert empty.run()["status"] == "skipped"


def test_the_lake_query_reads_current_customers_interactions_with_items_once() -> None:
    # Given the two lake tables (as DuckDB runs them locally), with a redelivered event, an erased customer,
    # an event without an item and one before the window
    connection = lake_tables()
    connection.execute(
        'INSERT INTO "ecrm_lake"."segment_profiles" VALUES '
        "('cus_a', 1, false), ('cus_b', 1, false), ('cus_b', 2, true)"
    )
    connection.execute(
        'INSERT INTO "ecrm_lake"."behaviour_events" VALUES '
        "('cus_a', 'e1', 'order_completed', '2026-11-20 10:00:00+00', 'sku1', 'shoes', '2026-11-20 10:00:01+00'),"
        "('cus_a', 'e1', 'order_completed', '2026-11-20 10:00:00+00', 'sku1', 'shoes', '2026-11-20 10:00:05+00'),"
        "('cus_a', 'e2', 'page_view', '2026-11-20 11:00:00+00', NULL, NULL, '2026-11-20 11:00:01+00'),"
        "('cus_a', 'e3', 'product_viewed', '2025-01-01 11:00:00+00', 'sku9', NULL, '2025-01-01 11:00:01+00'),"
        "('cus_b', 'e4', 'product_viewed', '2026-11-21 11:00:00+00', 'sku2', NULL, '2026-11-21 11:00:01+00')"
    )

    # When
    sql = interactions_sql(LakeTables.in_database("ecrm_lake"), since=NOW - timedelta(days=365))
    rows = connection.sql(sql).fetchall()

    # Then only cus_a's one order remains, its time readable as text
    assert len(rows) == 1
    customer, item, kind, category, occurred_at = rows[0]
    assert (customer, item, kind, category) == ("cus_a", "sku1", "order_completed", "shoes")
    assert datetime.fromisoformat(occurred_at) == datetime(2026, 11, 20, 10, tzinfo=UTC)


def lake_tables() -> duckdb.DuckDBPyConnection:
    """The three lake tables the query reads, empty, as DuckDB runs them locally."""
    connection = duckdb.connect(":memory:")
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute('CREATE SCHEMA "ecrm_lake"')
    connection.execute(
        'CREATE TABLE "ecrm_lake"."segment_profiles" (customer_id VARCHAR, version BIGINT, deleted BOOLEAN)'
    )
    connection.execute(
        'CREATE TABLE "ecrm_lake"."behaviour_events" (customer_id VARCHAR, event_id VARCHAR, event_type VARCHAR, '
        "occurred_at TIMESTAMPTZ, product_id VARCHAR, category VARCHAR, recorded_at TIMESTAMPTZ)"
    )
    columns = ", ".join(f"{name} {_DUCKDB[kind]}" for name, kind in ORDER_LINE_COLUMNS)
    connection.execute(f'CREATE TABLE "ecrm_lake"."order_lines" ({columns})')
    return connection


_DUCKDB = {"string": "VARCHAR", "int": "INTEGER", "bigint": "BIGINT", "double": "DOUBLE", "timestamp": "TIMESTAMPTZ"}


def placed(order_id: str, customer_id: str, when: datetime, *lines: tuple[str, int]) -> OrderPlaced:
    return OrderPlaced(
        order_id=order_id,
        customer_id=customer_id,
        currency="EUR",
        channel="web",
        lines=[
            OrderLineIn(sku=sku, name=sku, category="shoes", quantity=quantity, unit_price_minor=1000)
            for sku, quantity in lines
        ],
        total_minor=sum(1000 * quantity for _, quantity in lines),
        placed_at=when,
    )


def one_returned(order_id: str, sku: str, when: datetime, *, return_id: str) -> OrderReturned:
    return OrderReturned(
        order_id=order_id,
        customer_id="cus_a",
        return_id=return_id,
        lines=[ReturnedLine(sku=sku, category="shoes", quantity=1, unit_price_minor=1000)],
        refund_minor=1000,
        currency="EUR",
        fully_returned=False,
        returned_at=when,
    )


def insert_order_rows(connection: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    names = [name for name, _ in ORDER_LINE_COLUMNS]
    marks = ", ".join("?" for _ in names)
    for row in rows:
        connection.execute(f'INSERT INTO "ecrm_lake"."order_lines" VALUES ({marks})', [row[n] for n in names])


def test_purchases_come_from_the_orders_net_of_returns_and_cancellations() -> None:
    # Given the transactions engine's rows (as its lake writer makes them): cus_a bought two pairs of sku1 and
    # one sku2, then returned both sku1 (one at a time); cus_a's sku3 order was cancelled; cus_a's tracked
    # "order completed" events duplicate what the engine holds, while cus_c (no order row) has only those
    connection = lake_tables()
    connection.execute(
        'INSERT INTO "ecrm_lake"."segment_profiles" VALUES '
        "('cus_a', 1, false), ('cus_c', 1, false), ('cus_d', 1, false), ('cus_d', 2, true)"
    )
    day = datetime(2026, 11, 20, 10, tzinfo=UTC)
    order = placed("ord_1", "cus_a", day, ("sku1", 2), ("sku2", 1))
    returned = one_returned("ord_1", "sku1", day + timedelta(days=2), return_id="ret_1")
    cancelled = placed("ord_2", "cus_a", day, ("sku3", 1))
    rows = order_rows(order, event_id="ev1") + order_rows(order, event_id="ev1")  # delivered twice
    rows += order_rows(returned, event_id="ev2") + order_rows(
        one_returned("ord_1", "sku1", day, return_id="ret_2"), event_id="ev3"
    )
    rows += order_rows(cancelled, event_id="ev4")
    rows += order_rows(
        OrderStatusChanged(
            order_id="ord_2",
            customer_id="cus_a",
            previous_status="placed",
            status="cancelled",
            currency="EUR",
            refund_minor=1000,
            changed_at=day + timedelta(hours=1),
        ),
        event_id="ev5",
    )
    rows += order_rows(placed("ord_3", "cus_d", day, ("sku4", 1)), event_id="ev6")  # an erased customer's
    insert_order_rows(connection, rows)
    connection.execute(
        'INSERT INTO "ecrm_lake"."behaviour_events" VALUES '
        "('cus_a', 't1', 'order_completed', '2026-11-20 10:00:00+00', 'sku1', 'shoes', '2026-11-20 10:00:01+00'),"
        "('cus_a', 't2', 'product_viewed', '2026-11-19 10:00:00+00', 'sku5', 'shoes', '2026-11-19 10:00:01+00'),"
        "('cus_c', 't3', 'order_completed', '2026-11-18 10:00:00+00', 'sku6', 'bags', '2026-11-18 10:00:01+00')"
    )

    # When the job's query runs
    sql = interactions_sql(LakeTables.in_database("ecrm_lake"), since=NOW - timedelta(days=365))
    found = sorted((c, i, k) for c, i, k, _, _ in connection.sql(sql).fetchall())

    # Then cus_a bought sku2 only (sku1 all returned, sku3 cancelled), once, and viewed sku5; cus_c's tracked
    # purchase stands (nothing else knows it); the erased customer's order is nowhere
    assert found == [
        ("cus_a", "sku2", "order_completed"),
        ("cus_a", "sku5", "product_viewed"),
        ("cus_c", "sku6", "order_completed"),
    ]


def test_a_line_partly_returned_is_still_a_purchase() -> None:
    connection = lake_tables()
    connection.execute('INSERT INTO "ecrm_lake"."segment_profiles" VALUES (\'cus_a\', 1, false)')
    day = datetime(2026, 11, 20, 10, tzinfo=UTC)
    returned = one_returned("ord_1", "sku1", day + timedelta(days=2), return_id="ret_1")
    rows = order_rows(placed("ord_1", "cus_a", day, ("sku1", 2)), event_id="ev1")
    insert_order_rows(connection, rows + order_rows(returned, event_id="ev2"))

    sql = interactions_sql(LakeTables.in_database("ecrm_lake"), since=NOW - timedelta(days=365))
    (row,) = connection.sql(sql).fetchall()

    assert row[:3] == ("cus_a", "sku1", "order_completed")
    assert datetime.fromisoformat(row[4]) == day  # when it was bought, not when half of it came back
