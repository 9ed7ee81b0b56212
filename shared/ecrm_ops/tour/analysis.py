"""The tour's analysis steps: segments in real time and on the lake, the model job, OLAP.

They run after the customer store and collection steps (`ecrm_ops.tour.run`), so the customers
and the shop's tracked orders already exist.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from ecrm_ops.tour.context import Step, TourContext, expect, queue_drained, wait_for
from ecrm_ops.tour.order_history import backfill_order_history

SEGMENTS: list[dict[str, Any]] = [
    {
        "name": "France, email marketing allowed",
        "rule": {"all": [{"attribute": "country", "op": "eq", "value": "FR"}, {"consent": "email"}]},
    },
    {
        "name": "Ordered on the web shop this month",
        "rule": {
            "orders": {"where": [{"property": "channel", "op": "eq", "value": "web"}], "window": {"this": "month"}}
        },
    },
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


def _models(ctx: TourContext) -> str:
    from ecrm_ops.local_cloud import invoke_function

    orders, customers = backfill_order_history(ctx)  # beside the shop's checkouts of the collection step
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
        f"{result['traits_published']} customers scored; "
        + "; ".join(f"{n}: {c}" for n, c in counts)
        + (f"; CLV not served: {result['clv_degenerate']}" if result.get("clv_degenerate") else "")
    )


def _olap(ctx: TourContext) -> str:
    analyst = ctx.token(group="analyst")
    since = (datetime.now(UTC) - timedelta(days=365)).replace(microsecond=0)
    body = {
        "measures": ["orders", "revenue", "average_order_value", "customers"],
        "dimensions": ["country"],
        "filters": [{"dimension": "event_type", "op": "in", "value": ["order_completed", "order_returned"]}],
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


STEPS: list[Step] = [
    Step("segments: rules a marketer reads, members kept current in real time and built on the lake", _segments),
    Step("models trained on the lake (RFM, clusters, churn, CLV) write traits back to profiles", _models),
    Step("OLAP: orders, revenue and customers by country and by month, from the lake", _olap),
]
