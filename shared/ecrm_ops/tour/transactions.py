"""The tour's transactions steps: orders placed through the API from the generated data, and the loyalty ledger.

They run after personalization (`ecrm_ops.tour.run`): the imported customers exist, and the backfilled
history's products (`order_history`) name what they buy. Each order carries an `Idempotency-Key`; one is
sent twice and stays one order; one line comes back; the loyalty queue earns and takes back the points.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ecrm_ops.tour.context import Step, TourContext, expect, wait_for
from ecrm_ops.tour.order_history import (
    HISTORY_PRODUCT_NAMES,
    HISTORY_PRODUCTS_PER_CATEGORY,
    history_product_id,
    history_product_price,
)

ORDERING_CUSTOMERS = 24
RULES = {
    "points_per_unit": "1",
    "category_multipliers": {"electronics": "2"},
    "minimum_redemption": 100,
    "expiry_months": 12,
    "tiers": [
        {"name": "member", "threshold": 0},
        {"name": "silver", "threshold": 150},
        {"name": "gold", "threshold": 400},
    ],
}


def _tour_customers(ctx: TourContext, count: int) -> list[str]:
    """The first `count` imported customers (by id), as the lake's latest profiles list them."""
    from infra.local.lake import LocalLake

    cloud = ctx.cloud
    lake = LocalLake(cloud.client("s3"), cloud.physical_id("AWS::S3::Bucket", "LakeBucket"))
    rows = lake.query(
        "select customer_id from (select customer_id, deleted, row_number() over "
        "(partition by customer_id order by version desc) rn from {segment_profiles}) where rn = 1 and not deleted "
        "order by customer_id"
    )
    return [str(r["customer_id"]) for r in rows][:count]


def _basket(customer_index: int, rng: random.Random) -> list[dict[str, Any]]:
    """One to three lines of the history's products, priced as the personalization step's catalogue prices them."""
    categories = rng.sample(sorted(HISTORY_PRODUCT_NAMES), k=1 + customer_index % 3)
    lines = []
    for category in categories:
        shelf = 1 + (customer_index + len(category)) % HISTORY_PRODUCTS_PER_CATEGORY
        lines.append(
            {
                "sku": history_product_id(category, shelf),
                "name": HISTORY_PRODUCT_NAMES[category][shelf - 1],
                "category": category,
                "quantity": 1 + rng.randrange(2),
                "unit_price_minor": round(history_product_price(category, shelf) * 100),
            }
        )
    return lines


def _orders(ctx: TourContext) -> str:
    admin, agent = ctx.token(group="admin"), ctx.token(group="agent")
    expect(ctx.call("POST", "/loyalty/rules", token=admin, body=RULES), 201, "loyalty rules")
    customers = _tour_customers(ctx, ORDERING_CUSTOMERS)
    if len(customers) < 2:
        raise AssertionError(f"the tour needs imported customers to order, found {len(customers)}")
    rng = random.Random(20261206)  # noqa: S311 - demo baskets, the same on every tour
    bodies = [
        {"customer_id": c, "currency": "EUR", "channel": "web", "store": "shopweb", "lines": _basket(n, rng)}
        for n, c in enumerate(customers)
    ]

    def place(n: int) -> dict[str, Any]:
        placed = ctx.call("POST", "/orders", token=agent, body=bodies[n], headers={"Idempotency-Key": f"tour-{n}"})
        return dict(expect(placed, 201, f"order {n}").body)

    with ThreadPoolExecutor(max_workers=4) as pool:
        orders = list(pool.map(place, range(len(bodies))))
    again = ctx.call("POST", "/orders", token=agent, body=bodies[0], headers={"Idempotency-Key": "tour-0"})
    if expect(again, 200, "the same order again").body["order_id"] != orders[0]["order_id"]:
        raise AssertionError("a retry with the same Idempotency-Key placed a second order")

    # The first customer's order is paid, shipped, and one unit of its first line comes back.
    first = orders[0]
    for status in ("paid", "shipped", "delivered"):
        expect(
            ctx.call("POST", f"/orders/{first['order_id']}/status", token=agent, body={"status": status}), 200, status
        )
    line = first["lines"][0]
    returned = ctx.call(
        "POST",
        f"/orders/{first['order_id']}/returns",
        token=agent,
        body={"lines": [{"sku": line["sku"], "quantity": 1}]},
    )
    refunded = expect(returned, 201, "the return").body["refunded_minor"]

    def accounts() -> list[dict[str, Any]] | None:
        views = [ctx.call("GET", f"/customers/{c}/loyalty", token=agent) for c in customers]
        bodies_ = [dict(v.body) for v in views if v.status == 200]
        settled = len(bodies_) == len(customers) and all(b["statement"] for b in bodies_)
        reversed_ = settled and any(s["kind"] == "reversed" for s in bodies_[0]["statement"])
        return bodies_ if reversed_ else None

    held = wait_for(accounts, timeout=120, interval=1, what="every order's points, and the return's reversal")
    ctx.facts["loyalty_customer"] = customers[0]
    tiers: dict[str, int] = {}
    for account in held:
        tiers[account["tier"]] = tiers.get(account["tier"], 0) + 1
    points = sum(a["balance"] for a in held)
    return (
        f"{len(orders)} orders from {len(customers)} customers (one sent twice with its Idempotency-Key: one order), "
        f"a return refunded {refunded / 100:.2f} EUR; {points} points held, tiers "
        + ", ".join(f"{name} {count}" for name, count in sorted(tiers.items()))
    )


def _statement(ctx: TourContext) -> str:
    customer = ctx.facts.get("loyalty_customer")
    if not customer:
        raise AssertionError("the orders step did not run")
    me = ctx.token(customer_id=customer)
    account = expect(ctx.call("GET", "/me/loyalty", token=me), 200, "my loyalty").body
    lines = "; ".join(f"{s['kind']} {s['points']:+d} ({s['cause'].split(':')[0]})" for s in account["statement"])
    return (
        f"{customer}: balance {account['balance']} points, tier {account['tier']}, "
        f"{account['expiring_soon']} expiring within 30 days; statement: {lines}"
    )


STEPS: list[Step] = [
    Step("Transactions: orders placed once per Idempotency-Key, a return, points earned and taken back", _orders),
    Step("Loyalty: a customer's statement, each line traceable to its cause", _statement),
]
