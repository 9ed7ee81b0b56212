"""The tour's transactions steps: orders placed through the API from the generated data, and the loyalty ledger.

They run after personalization (`ecrm_ops.tour.run`): the imported customers exist, and the backfilled
history's products (`order_history`) name what they buy. Each order carries an `Idempotency-Key`; one is
sent twice and stays one order; one line comes back; the loyalty queue earns and takes back the points. Then
a customer compares three vendors' offers and buys through the brokered-purchase saga from a vendor served on
127.0.0.1 (`TourVendor`: it stands for a partner system, signs and verifies as `ecrm.transactions.vendors` says,
and answers a confirmation request with its signed callback from a thread, as a vendor answers later).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ecrm.transactions.vendors import SIGNATURE_HEADER, signature, verify_signature

from ecrm_ops.http import http
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


class TourVendor:
    """Sells everything it is asked to; `requests` holds (path, body) of each signed request it took."""

    def __init__(self, vendor_id: str, secret: str, callbacks_url: str, now: Callable[[], float]) -> None:
        self.vendor_id, self.secret, self.callbacks_url, self.now = vendor_id, secret, callbacks_url, now
        self.requests: list[tuple[str, dict[str, Any]]] = []
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                signed = verify_signature(
                    vendor.secret, self.headers.get(SIGNATURE_HEADER), body, now_s=vendor.now(), tolerance_s=300
                )
                request = json.loads(body) if signed else {}
                if signed:
                    vendor.requests.append((self.path, request))
                answer = json.dumps({"reference": f"{vendor.vendor_id}-{len(vendor.requests)}"}).encode()
                self.send_response(201 if signed else 401)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                if signed and self.path.endswith("/confirmations"):
                    threading.Thread(target=vendor.confirm, args=(request["purchase_id"],), daemon=True).start()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def confirm(self, purchase_id: str) -> None:
        time.sleep(0.2)  # the vendor answers after its own checks, not inside the request
        body = json.dumps({"purchase_id": purchase_id, "outcome": "confirmed", "vendor_reference": "TOUR-SALE"})
        stamp = int(self.now())
        http(
            "POST",
            f"{self.callbacks_url}/vendors/{self.vendor_id}/callbacks",
            body=body.encode(),
            headers={SIGNATURE_HEADER: signature(self.secret, stamp, body.encode())},
        )

    def close(self) -> None:
        self.server.shutdown()


VENDORS = (("outdoor-hub", 18900, 4, "4.2"), ("quick-gear", 19900, 1, "4.7"), ("budget-camp", 17900, 6, "3.9"))


def _brokered_purchase(ctx: TourContext) -> str:
    """A product offered by three vendors; the customer compares them and buys through the saga; the vendor on
    127.0.0.1 confirms by its signed callback; a purchase over what the payment provider accepts is compensated."""
    customer = ctx.facts.get("loyalty_customer")
    if not customer:
        raise AssertionError("the orders step did not run")
    admin, me = ctx.token(group="admin"), ctx.token(customer_id=customer)
    product = ctx.call("POST", "/catalog/products", token=admin, body={"name": "Two-person tent", "category": "sports"})
    product_id = expect(product, 201, "the product").body["product_id"]
    secret = "tour-vendor-secret-" + "v" * 24
    vendors = {v: TourVendor(v, secret, ctx.api, lambda: ctx.cloud.clock.now().timestamp()) for v, *_ in VENDORS}
    try:
        for vendor_id, price, days, rating in VENDORS:
            offer = {
                "vendor_id": vendor_id,
                "vendor_name": vendor_id.replace("-", " ").title(),
                "price_minor": price,
                "currency": "EUR",
                "stock": 50,
                "delivery_days": days,
                "vendor_rating": rating,
                "return_days": 30,
            }
            added = ctx.call("POST", f"/catalog/products/{product_id}/offers", token=admin, body=offer)
            expect(added, 201, f"{vendor_id}'s offer")
            endpoint = {"name": vendor_id, "endpoint": vendors[vendor_id].url, "secret": secret}
            expect(ctx.call("PUT", f"/vendors/{vendor_id}", token=admin, body=endpoint), 200, f"vendor {vendor_id}")
        compared = expect(ctx.call("GET", f"/me/compare?product={product_id}", token=me), 200, "the comparison").body
        best = compared["ranked"][0]
        chosen = best["offer"]["vendor_id"]

        def purchase(quantity: int, key: str) -> str:
            body = {"product_id": product_id, "vendor_id": chosen, "quantity": quantity}
            placed = ctx.call("POST", "/me/purchases", token=me, body=body, headers={"Idempotency-Key": key})
            return str(expect(placed, 202, "the purchase").body["purchase_id"])

        def settled(purchase_id: str) -> dict[str, Any] | None:
            found = expect(ctx.call("GET", f"/me/purchases/{purchase_id}", token=me), 200, "my purchase").body
            return dict(found) if found["status"] in ("completed", "failed") else None

        bought = purchase(1, f"tour-purchase-{customer}")
        declined = purchase(60, f"tour-purchase-declined-{customer}")  # over what the payment double accepts
        done = wait_for(lambda: settled(bought), timeout=60, interval=0.5, what="the purchase to complete")
        failed = wait_for(lambda: settled(declined), timeout=60, interval=0.5, what="the declined purchase to settle")
    finally:
        for vendor in vendors.values():
            vendor.close()
    if done["status"] != "completed" or failed["status"] != "failed":
        raise AssertionError(f"expected one completed and one failed purchase: {done}, {failed}")
    return (
        f"ranked {len(compared['ranked'])} offers, best {chosen} ({'; '.join(best['reasons'][:2])}); bought through "
        f"the saga: {done['status']} as order {done['order_id']} ({done['total_minor'] / 100:.2f} EUR, confirmed by "
        f"the vendor's signed callback); 60 units: {failed['status']} ({failed['failure']}), "
        f"released {failed['released']}, refunded {failed['refunded']}"
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
    Step("Transactions: vendors compared for a customer, a purchase brokered by the saga", _brokered_purchase),
    Step("Loyalty: a customer's statement, each line traceable to its cause", _statement),
]
