"""The tour's analysis steps: segments in real time and on the lake, the model job, OLAP.

Registered after the customer store and collection steps (`ecrm_ops.tour.run` imports this module), so
the customers and the shop's tracked orders already exist.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from ecrm_ops.tour.context import TourContext, expect, queue_drained, wait_for
from ecrm_ops.tour.run import tour_step

SEGMENTS: list[dict[str, Any]] = [
    {
        "name": "France, email marketing allowed",
        "rule": {"all": [{"attribute": "country", "op": "eq", "value": "FR"}, {"consent": "email"}]},
    },
    {"name": "Ordered on the web shop this month", "rule": {"event": "order_completed", "window": {"this": "month"}}},
    {
        "name": "Champions and loyal customers",
        "rule": {"trait": "rfm_segment", "op": "in", "value": ["champions", "loyal customers"]},
    },
    {"name": "At risk of churn", "rule": {"trait": "churn_risk", "op": "gte", "value": 0.6}},
    {
        "name": "High value at risk",
        "rule": {
            "all": [
                {"trait": "clv", "op": "gte", "value": 300},
                {"trait": "p_alive", "op": "lt", "value": 0.5},
            ]
        },
    },
]
HISTORY_CATEGORIES_SOURCE = "erp-history"
HISTORY_PRODUCTS_PER_CATEGORY = 5
HISTORY_TASTE_SHARE = 0.6  # orders at the customer's own shelf position in the category, the rest at bestsellers


def history_product_id(category: str, shelf: int) -> str:
    """The backfilled orders' products: `<category>-<shelf>`, shelf 1 to HISTORY_PRODUCTS_PER_CATEGORY."""
    return f"{category}-{shelf}"


def _history_product(category: str, customer_index: int, rng: random.Random) -> str:
    """A customer favours one shelf position in every category (a taste a recommender can learn); other orders
    go to the category's bestsellers, the first shelves most."""
    if rng.random() < HISTORY_TASTE_SHARE:
        shelf = customer_index % HISTORY_PRODUCTS_PER_CATEGORY
    else:
        shelf = min(int(rng.expovariate(0.8)), HISTORY_PRODUCTS_PER_CATEGORY - 1)
    return history_product_id(category, shelf + 1)


def _wait_for_membership(ctx: TourContext, timeout: float = 900) -> None:
    wait_for(
        lambda: queue_drained(ctx, "AnalysisMembershipConsumerQueue"),
        timeout=timeout,
        interval=2,
        what="segmentation to process the customer store's events",
    )


def _counts(ctx: TourContext, token: str, ids: list[str]) -> list[tuple[str, int]]:
    return [
        (s["name"], s["member_count"])
        for s in (ctx.call("GET", f"/segments/{segment_id}", token=token).body for segment_id in ids)
    ]


@tour_step("segments: rules a marketer reads, members kept current in real time and built on the lake")
def _segments(ctx: TourContext) -> str:
    marketer = ctx.token(group="marketer")
    _wait_for_membership(ctx)
    ids = []
    for definition in SEGMENTS:
        created = expect(ctx.call("POST", "/segments", token=marketer, body=definition), 201, "POST /segments").body
        ids.append(created["segment_id"])

    def built() -> bool:
        for segment_id in ids:
            audience = ctx.call("GET", f"/segments/{segment_id}", token=marketer).body["last_audience_id"]
            if ctx.call("GET", f"/audiences/{audience}", token=marketer).body["status"] == "running":
                return False
        return True

    wait_for(built, timeout=600, interval=2, what="the first membership builds")
    ctx.facts["segment_ids"] = ids
    french = ctx.call("GET", f"/segments/{ids[0]}", token=marketer).body
    build = expect(ctx.call("POST", f"/segments/{ids[0]}/build", token=marketer), 202, "POST build").body
    done = wait_for(
        lambda: (
            (b := ctx.call("GET", f"/audiences/{build['audience_id']}", token=marketer).body)["status"] != "running"
            and b
        ),
        timeout=300,
        interval=2,
        what="the audience build",
    )
    if done["status"] != "completed" or done["count"] != french["member_count"]:
        raise AssertionError(f"the lake's audience ({done}) disagrees with the live count {french['member_count']}")
    shown = "; ".join(f"{name}: {count}" for name, count in _counts(ctx, marketer, ids[:2]))
    return (
        f"{len(ids)} segments saved; {shown}; '{french['rule_text']}' built on the lake in "
        f"{done['shards']} shards: {done['count']} customers, manifest {done['manifest']}"
    )


def _backfill_order_history(ctx: TourContext) -> tuple[int, int]:
    """Two years of orders for the imported customers, as an ERP backfill writes them to the lake's stream."""
    from ecrm.analysis.transactions import from_day
    from ecrm.lake import LocalLake, lake_chunks

    from ecrm_ops.analysis.synthetic import synthetic_transactions

    cloud = ctx.cloud
    lake = LocalLake(cloud.client("s3"), cloud.physical_id("AWS::S3::Bucket", "LakeBucket"))
    rows = lake.query(
        "select customer_id from (select customer_id, deleted, row_number() over "
        "(partition by customer_id order by version desc) rn from {segment_profiles}) where rn = 1 and not deleted"
    )
    customers = sorted(r["customer_id"] for r in rows)
    today = datetime.now(UTC).date()
    data = synthetic_transactions(max(len(customers), 8), mean_orders=6, seed=11, cutoff=today, days_after_cutoff=1)
    tx = data.transactions.until(data.cutoff_day)
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    products = random.Random(11)  # noqa: S311 - demo data, reproducible by seed
    records = []
    for n in range(len(tx)):
        index = int(tx.customer_index[n])
        if index >= len(customers):
            continue
        day = from_day(int(tx.day[n]))
        category = None
        if tx.categories is not None and tx.category_index is not None:
            category = str(tx.categories[int(tx.category_index[n])])
        records.append(
            {
                "customer_id": customers[index],
                "event_id": f"erp-{index}-{n}",
                "event_type": "order_completed",
                "occurred_at": f"{day.isoformat()}T12:00:00.000Z",
                "amount": float(tx.amount[n]),
                "category": category,
                "product_id": _history_product(category, index, products) if category else None,
                "channel": "store",
                "source": HISTORY_CATEGORIES_SOURCE,
                "recorded_at": stamp,
            }
        )
    firehose = cloud.client("firehose")
    stream = cloud.physical_id("AWS::KinesisFirehose::DeliveryStream", "LakeBehaviourEvents")
    lines = [(r, (json.dumps(r) + "\n").encode()) for r in records]
    for chunk in lake_chunks(lines):
        firehose.put_record_batch(DeliveryStreamName=stream, Records=[{"Data": data} for _, data in chunk])
    return len(records), len(customers)


@tour_step("models trained on the lake (RFM, clusters, churn, CLV) write traits back to profiles")
def _models(ctx: TourContext) -> str:
    from ecrm_ops.local_cloud import invoke_function

    orders, customers = _backfill_order_history(ctx)
    started = time.monotonic()
    _, failed, result = invoke_function("ModelJob", {"as_of": datetime.now(UTC).date().isoformat()}, ctx.cloud.state)
    if failed:
        raise AssertionError(f"the model job failed: {result}")
    trained = time.monotonic() - started
    marketer = ctx.token(group="marketer")
    ids = ctx.facts.get("segment_ids", [])
    wait_for(
        lambda: (
            queue_drained(ctx, "AnalysisMembershipConsumerQueue")
            and queue_drained(ctx, "CustomersAnalysisConsumerQueue")
        ),
        timeout=900,
        interval=3,
        what="traits to reach the projections and the profiles",
    )
    counts = _counts(ctx, marketer, ids[2:]) if ids else []
    if counts and counts[0][1] == 0:
        raise AssertionError(f"no champions after scoring: {counts}")
    rfm = result["rfm"] or {}
    top = ", ".join(f"{k} {v}" for k, v in sorted(rfm.items(), key=lambda kv: -kv[1])[:4])
    return (
        f"{orders} historical orders of {customers} customers backfilled into the lake; trained in {trained:.0f}s: "
        f"churn AUC {result['churn_auc']:.2f} on held-out customers, {result['clusters']} clusters, RFM {top}; "
        f"{result['traits_published']} customers scored; " + "; ".join(f"{n}: {c}" for n, c in counts)
    )


@tour_step("OLAP: orders, revenue and customers by country and by month, from the lake")
def _olap(ctx: TourContext) -> str:
    analyst = ctx.token(group="analyst")
    since = (datetime.now(UTC) - timedelta(days=365)).replace(microsecond=0)
    body = {
        "measures": ["orders", "revenue", "average_order_value", "customers"],
        "dimensions": ["country"],
        "filters": [{"dimension": "event_type", "op": "eq", "value": "order_completed"}],
        "time_range": {"from": since.isoformat(), "to": datetime.now(UTC).replace(microsecond=0).isoformat()},
        "order_by": "revenue",
        "limit": 5,
    }
    rows = expect(ctx.call("POST", "/analysis/olap", token=analyst, body=body), 200, "POST /analysis/olap").body["rows"]
    if not rows:
        raise AssertionError("OLAP found no orders in the last year")
    table = ["", f"      {'country':<8} {'orders':>7} {'revenue':>11} {'avg order':>10} {'customers':>10}"]
    for row in rows:
        table.append(
            f"      {row['country'] or '-'!s:<8} {row['orders']:>7} {row['revenue']:>11,.2f} "
            f"{(row['average_order_value'] or 0):>10,.2f} {row['customers']:>10}"
        )
    return "top countries by revenue over the last 12 months" + "\n".join(table)


import ecrm_ops.tour.personalization  # noqa: E402, F401 - registers the personalization step after the ones above
