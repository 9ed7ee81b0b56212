"""The tour's personalization step: the item catalogue, the recommender trained on the lake, offers, and what three
customers get.

It runs after the analysis steps (`ecrm_ops.tour.run`), so the customers, their backfilled orders in the lake
(each with a product of its category, `order_history`), the segments and the computed traits exist.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from ecrm.core.vocabulary import CHANNELS

from ecrm_ops.tour.context import Step, TourContext, expect, queue_drained, wait_for
from ecrm_ops.tour.order_history import (
    HISTORY_PRODUCT_NAMES,
    HISTORY_PRODUCTS_PER_CATEGORY,
    history_product_id,
    history_product_price,
)

PROFILING_DENIED = " or ".join(f"coalesce(c_{channel}_profiling, '') = 'denied'" for channel in CHANNELS)
LATEST_PROFILES = (
    "select customer_id, t_rfm_segment, t_churn_risk from (select *, row_number() over "  # noqa: S608 - constants
    "(partition by customer_id order by version desc) rn from {segment_profiles}) "
    f"where rn = 1 and not deleted and c_email_marketing = 'granted' and not ({PROFILING_DENIED}) "
    "order by customer_id"
)
LOYAL = ("champions", "loyal customers")
AT_RISK = 0.6
TRAINING_DAYS = 365  # the job's default window (PERSONALIZATION_TRAINING_DAYS)


def catalogue() -> list[dict[str, Any]]:
    """The backfill's products and the demo web shop's, as `PUT /items` takes them."""
    from ecrm_ops.analysis.synthetic import CATEGORIES
    from ecrm_ops.collect.demo_sessions import PRODUCTS

    if set(HISTORY_PRODUCT_NAMES) != set(CATEGORIES):
        raise AssertionError(f"the catalogue's categories {sorted(HISTORY_PRODUCT_NAMES)} are not {CATEGORIES}")
    items = [
        {
            "item_id": history_product_id(category, shelf),
            "name": name,
            "category": category,
            "price": history_product_price(category, shelf),
            "currency": "EUR",
        }
        for category, names in HISTORY_PRODUCT_NAMES.items()
        for shelf, name in enumerate(names[:HISTORY_PRODUCTS_PER_CATEGORY], start=1)
    ]
    shop = [
        {"item_id": sku, "name": name, "category": category, "price": price, "currency": "EUR"}
        for sku, name, category, price in PRODUCTS
    ]
    return items + shop


def _offers(segment_id: str) -> list[dict[str, Any]]:
    start = (datetime.now(UTC) - timedelta(minutes=5)).replace(microsecond=0).isoformat()
    return [
        {
            "name": "Early access to the new collection",
            "description": "For our best customers: the new collection a week before everyone else.",
            "channels": ["email", "in_app", "web"],
            "eligibility": {"segments": {"any_of": [segment_id]}},
            "valid_from": start,
            "value": 20.0,
            "cap": {"max_presentations": 5},
        },
        {
            "name": "Come back: 20% off your next order",
            "description": "We miss you: 20% off your next order, this month.",
            "code": "COMEBACK20",
            "channels": ["email", "sms", "web"],
            "eligibility": {"conditions": [{"trait": "churn_risk", "op": ">=", "value": AT_RISK}]},
            "valid_from": start,
            "valid_until": (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0).isoformat(),
            "value": 12.0,
            "cap": {"max_acceptances": 1},
            "budget": {"max_acceptances": 500},
        },
    ]


def _best_offer(ctx: TourContext, token: str, customer: str, *, present: bool) -> dict[str, Any]:
    path = f"/customers/{customer}/next-best-offer"
    if present:
        return dict(expect(ctx.call("POST", path, token=token, body={"channel": "email"}), 200, "POST nbo").body)
    return dict(expect(ctx.call("GET", f"{path}?channel=email", token=token), 200, "GET next-best-offer").body)


def _offered(ctx: TourContext, token: str, customer: str, expected: str | None) -> bool:
    """Whether the customer's best offer by email is `expected` (looked at only: nothing counted or decided)."""
    offer = _best_offer(ctx, token, customer, present=False)["offer"]
    return (offer["offer_id"] if offer else None) == expected


def _expected_offer(row: dict[str, Any], offers: list[dict[str, Any]]) -> str | None:
    """What the offers' rules give this customer: the loyal first (more value), then the at-risk, else nothing."""
    if row["t_rfm_segment"] in LOYAL:
        return str(offers[0]["offer_id"])
    if row["t_churn_risk"] is not None and row["t_churn_risk"] >= AT_RISK:
        return str(offers[1]["offer_id"])
    return None


def _three_customers(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One loyal customer, one at risk (not loyal), one neither, as far as the data have them."""
    loyal = [r for r in rows if r["t_rfm_segment"] in LOYAL]
    at_risk = [r for r in rows if r not in loyal and (r["t_churn_risk"] or 0) >= AT_RISK]
    neither = [r for r in rows if r not in loyal and r not in at_risk and r["t_rfm_segment"] is not None]
    chosen = [group[len(group) // 2] for group in (loyal, at_risk, neither) if group]
    for row in rows:  # fewer kinds than three: fill with whoever is left
        if len(chosen) >= 3:
            break
        if row not in chosen:
            chosen.append(row)
    return chosen


def _personalization(ctx: TourContext) -> str:
    from ecrm_ops.local_cloud import invoke_function
    from ecrm_ops.personalization.train_commands import TRAINING_FUNCTION, report_lines
    from infra.local.lake import LocalLake

    marketer = ctx.token(group="marketer")
    segment_ids = ctx.facts.get("segment_ids") or []
    if len(segment_ids) < 3:
        raise AssertionError("the analysis steps saved no segments: nothing to target offers at")
    items = catalogue()
    upserted = expect(ctx.call("PUT", "/items", token=marketer, body={"items": items}), 200, "PUT /items").body
    names = {item["item_id"]: item["name"] for item in items}

    started = time.monotonic()
    _, failed, report = invoke_function(TRAINING_FUNCTION, {}, ctx.cloud.state)
    if failed or not isinstance(report, dict) or report.get("status") != "trained":
        raise AssertionError(f"the recommender training job failed: {report}")
    if not report["metrics"]:
        raise AssertionError(f"the training job measured nothing against popularity: {report['evaluation']}")
    trained = time.monotonic() - started

    offers = [
        expect(ctx.call("POST", "/offers", token=marketer, body=body), 201, "POST /offers").body
        for body in _offers(segment_ids[2])
    ]
    wait_for(
        lambda: (
            queue_drained(ctx, "PersonalizationCustomerEventConsumerQueue")
            and queue_drained(ctx, "AnalysisMembershipConsumerQueue")
        ),
        timeout=300,
        interval=2,
        what="personalization to take in segment moves and traits",
    )
    cloud = ctx.cloud
    lake = LocalLake(cloud.client("s3"), cloud.physical_id("AWS::S3::Bucket", "LakeBucket"))
    chosen = _three_customers(lake.query(LATEST_PROFILES))
    if not chosen:
        raise AssertionError("no customer with an email marketing consent and profiling allowed in the lake")
    ids = ", ".join(f"'{row['customer_id']}'" for row in chosen)
    bought: dict[str, set[str]] = {}
    # What the job read of them (its default window, a year): its "for you" lists leave all of it out
    history = (
        f"select customer_id, product_id from {{behaviour_events}} where customer_id in ({ids}) "  # noqa: S608
        "and product_id is not null and occurred_at >= ?"
    )
    for row in lake.query(history, [datetime.now(UTC) - timedelta(days=TRAINING_DAYS)]):
        bought.setdefault(row["customer_id"], set()).add(row["product_id"])

    lines = ["", *(f"      {line}" for line in report_lines(report))]
    given = 0
    for row in chosen:
        customer = row["customer_id"]
        listed = expect(
            ctx.call("GET", f"/customers/{customer}/recommendations?k=4", token=marketer), 200, "GET recommendations"
        ).body
        shown = [item["item_id"] for item in listed["items"]]
        if not shown:
            raise AssertionError(f"no recommendation for {customer}: {listed}")
        again = set(shown) & bought.get(customer, set())
        if again:
            raise AssertionError(f"{customer} is recommended what they bought already: {sorted(again)}")
        expected = _expected_offer(row, offers)
        wait_for(
            partial(_offered, ctx, marketer, customer, expected),
            # The traits just published reach the personalization projection through its queue, behind the
            # scoring's whole batch: seconds on an idle machine, more under load.
            timeout=120,
            interval=1,
            what=f"{customer}'s offers to follow their segment and traits (expected {expected})",
        )
        best = _best_offer(ctx, marketer, customer, present=True)
        offer = best["offer"]["name"] if best["offer"] else "none (" + _why_none(best) + ")"
        given += best["offer"] is not None
        churn = f"{row['t_churn_risk']:.2f}" if row["t_churn_risk"] is not None else "-"
        lines.append(
            f"      {customer} ({row['t_rfm_segment'] or 'no RFM segment'}, churn risk {churn}): "
            f"{listed['strategy']} -> " + ", ".join(names.get(i, i) for i in shown) + f"; best offer by email: {offer}"
        )
    if not given:
        raise AssertionError("none of the three customers gets an offer")
    return (
        f"{upserted['upserted']} items in the catalogue; recommender {report['algorithm']} trained on the lake in "
        f"{trained:.0f}s; {len(offers)} offers (by segment, by trait)" + "\n".join(lines)
    )


def _why_none(best: dict[str, Any]) -> str:
    reasons = sorted({exclusion["reason"] for exclusion in best.get("excluded", [])})
    return ", ".join(reasons) or "no offer"


STEPS: list[Step] = [
    Step(
        "personalization: the recommender trained on the lake, offers by segment and trait, three customers",
        _personalization,
    ),
]
