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
from ecrm.personalization.recommendation_service import RecommendationService
from ecrm.personalization.store import PersonalizationStore
from ecrm.personalization.training import TrainingJob, TrainingSettings, interactions_sql, run_training

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
