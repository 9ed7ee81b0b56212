"""The model job: orders in, computed traits out (RFM, cluster, churn risk, CLV, P(alive)).

One run reads every customer's orders (the lake's `order_lines`, written by the transactions engine,
through Athena's CSV result in the cloud, DuckDB locally, or any CSV for the CLI): a row per line
bought, a negative row per line returned (it lowers spend and is never a purchase), cancelled orders
left out whole. It trains each model, scores every customer, stores each
model as a versioned JSON artifact with its training metrics, and returns the traits per
customer; the job publishes them as `TraitsComputed` batches, which the segmentation projection
and the customer store consume. Numpy, scipy and scikit-learn are imported here only: this
module runs in the model job (ml layer), never on a request path.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from ecrm.analysis.models import CustomerTraits, TraitsComputed
from ecrm.analysis.rules import DEFAULT_CATALOG
from ecrm.analysis.segment_sql import LakeTables, order_lines_table
from ecrm.analysis.transactions import Transactions, read_transactions_csv, to_day
from ecrm.core.clock import utc_now

TRAITS_PER_EVENT = 200
MIN_CUSTOMERS_FOR_MODELS = 50


@dataclass
class TraitsRun:
    as_of: date
    customers: int
    traits: dict[str, dict[str, Any]]
    metrics: dict[str, Any] = field(default_factory=dict)
    artifacts: list[Any] = field(default_factory=list)
    version: str = ""


def orders_sql(tables: LakeTables) -> str:
    """Every order line of a current customer (latest profile not deleted), its returns as negative rows, cancelled
    orders dropped by `order_id`, rows delivered twice kept once (they are identical copies): the job's input."""
    return (
        "WITH latest AS (SELECT customer_id FROM (SELECT customer_id, deleted, row_number() OVER "
        f"(PARTITION BY customer_id ORDER BY version DESC) AS rn FROM {tables.profiles}) ranked "
        "WHERE rn = 1 AND NOT deleted), "
        "order_rows AS (SELECT DISTINCT event_id, order_id, customer_id, kind, sku, category, amount, occurred_at "
        f"FROM {order_lines_table(tables)} WHERE customer_id IS NOT NULL AND order_id IS NOT NULL "
        "AND amount IS NOT NULL), "
        "cancelled AS (SELECT DISTINCT order_id FROM order_rows WHERE kind = 'cancellation') "
        "SELECT o.customer_id, CAST(CAST(o.occurred_at AS DATE) AS VARCHAR) AS day, o.amount, o.category "
        "FROM order_rows o JOIN latest l ON l.customer_id = o.customer_id "
        "WHERE o.kind IN ('purchase', 'return') AND o.order_id NOT IN (SELECT order_id FROM cancelled)"
    )


def transactions_from_lake(lake: Any, s3: Any) -> Transactions:
    """Run the orders query and read Athena's CSV result straight from S3 (not paged through the API)."""
    result = lake.run(orders_sql(LakeTables.in_database(lake.database)))
    bucket, key = result.output_location.removeprefix("s3://").split("/", 1)
    with tempfile.TemporaryDirectory(prefix="ecrm-orders-") as workdir:
        path = Path(workdir) / "orders.csv"
        s3.download_file(bucket, key, str(path))
        if path.stat().st_size == 0 or len(path.read_bytes().splitlines()) <= 1:
            return Transactions.from_rows([], [], [])
        return read_transactions_csv(
            path, customer_col="customer_id", date_col="day", amount_col="amount", category_col="category"
        )


def compute_traits(tx: Transactions, *, as_of: date, churn_window_days: int = 90, seed: int = 42) -> TraitsRun:
    """Train every model on `tx` up to `as_of` and score each customer who has bought."""
    from ecrm.analysis.artifacts import ModelArtifact
    from ecrm.analysis.churn import churn_artifact, score_churn, train_churn
    from ecrm.analysis.clusters import assign_clusters, clusters_artifact, train_clusters
    from ecrm.analysis.features import customer_features
    from ecrm.analysis.lifetime import (
        bgnbd_expected_purchases,
        bgnbd_probability_alive,
        customer_lifetime_value,
        fit_bgnbd,
        fit_gamma_gamma,
        summarize,
    )
    from ecrm.analysis.rfm import rfm

    now = utc_now()
    as_of_day = to_day(as_of)
    history = tx.until(as_of_day)
    traits: dict[str, dict[str, Any]] = {}
    metrics: dict[str, Any] = {}
    artifacts: list[ModelArtifact] = []
    if len(history) == 0:
        return TraitsRun(as_of=as_of, customers=0, traits={})

    scores = rfm(history, as_of=as_of)
    for i, customer_id in enumerate(scores.customers):
        traits[str(customer_id)] = {
            "rfm_segment": str(scores.segment[i]),
            "rfm_recency": int(scores.r_score[i]),
            "rfm_frequency": int(scores.f_score[i]),
            "rfm_monetary": int(scores.m_score[i]),
            "orders": int(scores.frequency[i]),
            "revenue": round(float(scores.monetary[i]), 2),
        }
    metrics["rfm"] = scores.segment_counts()
    artifacts.append(
        ModelArtifact.create("rfm", trained_at=now, parameters={"as_of": as_of.isoformat()}, metrics=metrics["rfm"])
    )
    if len(scores) < MIN_CUSTOMERS_FOR_MODELS:
        metrics["skipped"] = f"fewer than {MIN_CUSTOMERS_FOR_MODELS} customers: only RFM computed"
        return TraitsRun(as_of=as_of, customers=len(scores), traits=traits, metrics=metrics, artifacts=artifacts)

    features = customer_features(history, as_of_day)
    clusters = train_clusters(features, seed=seed)
    names = [profile.name for profile in clusters.profiles]
    for customer_id, label in zip(features.customer_ids, assign_clusters(clusters.model, features), strict=True):
        traits.setdefault(str(customer_id), {})["cluster"] = names[int(label)]
    metrics["clusters"] = clusters.to_dict()
    artifacts.append(clusters_artifact(clusters, trained_at=now, data={"as_of": as_of.isoformat()}))

    churn = train_churn(history, cutoff_day=as_of_day - churn_window_days, window_days=churn_window_days, seed=seed)
    risk = score_churn(churn.model, features)
    for customer_id, value in zip(features.customer_ids, risk, strict=True):
        traits.setdefault(str(customer_id), {})["churn_risk"] = round(float(value), 4)
    metrics["churn"] = churn.report.to_dict()
    artifacts.append(churn_artifact(churn, trained_at=now, data={"as_of": as_of.isoformat()}))

    summary = summarize(history, calibration_end=as_of, period="W")
    bgnbd = fit_bgnbd(summary.frequency, summary.recency, summary.T)
    spend = fit_gamma_gamma(summary.frequency, summary.monetary)
    degenerate = bgnbd.degenerate_reason
    clv = customer_lifetime_value(bgnbd, spend, summary)
    alive = bgnbd_probability_alive(bgnbd, summary.frequency, summary.recency, summary.T)
    expected = bgnbd_expected_purchases(bgnbd, 90 / 7, summary.frequency, summary.recency, summary.T)
    for i, customer_id in enumerate(summary.customers):
        entry = traits.setdefault(str(customer_id), {})
        # A degenerate fit clears what it would have served (None removes a trait), rather than p_alive = 1
        # for a customer RFM calls lost: a segment on p_alive then holds nobody instead of the wrong people.
        entry["clv"] = None if degenerate else round(float(clv[i]), 2)
        entry["p_alive"] = None if degenerate else round(float(alive[i]), 4)
        entry["expected_orders_90d"] = None if degenerate else round(float(expected[i]), 3)
    metrics["clv"] = {
        "bgnbd": {k: getattr(bgnbd, k) for k in ("r", "alpha", "a", "b", "log_likelihood")},
        "gamma_gamma": {k: getattr(spend, k) for k in ("p", "q", "v")},
        "degenerate": degenerate is not None,
        "degenerate_reason": degenerate,
    }
    artifacts.append(
        ModelArtifact.create(
            "clv", trained_at=now, parameters=metrics["clv"], metrics={"customers": len(summary)}, data={"period": "W"}
        )
    )
    known = set(DEFAULT_CATALOG.traits)
    cleaned = {c: {k: v for k, v in t.items() if k in known} for c, t in traits.items()}
    return TraitsRun(as_of=as_of, customers=len(cleaned), traits=cleaned, metrics=metrics, artifacts=artifacts)


def traits_events(run: TraitsRun, *, model_version: str) -> Iterator[TraitsComputed]:
    """`TraitsComputed` in batches small enough for one EventBridge entry."""
    computed_at = utc_now()
    items = sorted(run.traits.items())
    for start in range(0, len(items), TRAITS_PER_EVENT):
        yield TraitsComputed(
            model="traits",
            model_version=model_version,
            computed_at=computed_at,
            customers=[CustomerTraits(customer_id=c, traits=t) for c, t in items[start : start + TRAITS_PER_EVENT]],
        )


def write_traits_csv(run: TraitsRun, path: Path) -> None:
    names = sorted({name for traits in run.traits.values() for name in traits})
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", *names])
        for customer_id, traits in sorted(run.traits.items()):
            writer.writerow([customer_id, *[traits.get(n, "") for n in names]])
