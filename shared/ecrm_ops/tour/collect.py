"""The tour's event collection step: a web shop's tracking, stitched to customers and counted in the lake; the
shoppers who started checkout complete their orders through `POST /orders`, as the shop's backend does."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ecrm_ops.tour.context import Step, TourContext, expect, http, queue_drained, wait_for

DEMO_VISITORS = int(os.environ.get("ECRM_DEMO_VISITORS", "100"))


def _collection(ctx: TourContext) -> str:
    import base64
    from collections import Counter

    from ecrm.collect.logic import sign_user_id

    from ecrm_ops.collect.demo_sessions import generate as sessions
    from infra.local.lake import LocalLake

    admin = ctx.token(group="admin")
    source = expect(
        ctx.call(
            "POST", "/sources", token=admin, body={"name": "shopweb", "kind": "web", "description": "the demo shop"}
        ),
        201,
        "POST /sources",
    )
    basic = "Basic " + base64.b64encode(f"{source.body['write_key']}:".encode()).decode()
    stream = sessions(DEMO_VISITORS)
    # The shop's backend signs each signed-in user id (ADR 9): a web source's write key is public, so
    # only a signed identify may link the browser's anonymous journey to the shop's user.
    for message in stream.messages:
        if message["type"] == "identify":
            message["context"]["userHash"] = sign_user_id(source.body["identity_secret"], message["userId"])
    # Someone holding the public key claims another customer's email from their own, signed-in browser.
    victim = expect(
        ctx.call(
            "POST",
            "/customers",
            token=ctx.token(group="marketer"),
            body={"source": "erp", "identities": [{"type": "email", "value": "tour.victim@example.com"}]},
        ),
        201,
        "POST /customers (the customer whose email is claimed)",
    ).body["customer_id"]
    claimant = next(v for v in stream.visitors if v.identified)
    claim = {
        "type": "identify",
        "messageId": "tour-unsigned-claim",
        "anonymousId": claimant.anonymous_id,
        "timestamp": "2026-11-23T23:59:00Z",
        "traits": {"email": "tour.victim@example.com"},
    }
    messages = [*stream.messages, claim]
    accepted = 0
    for start in range(0, len(messages), 100):
        result = http("POST", f"{ctx.api}/v1/batch", token=basic, body={"batch": messages[start : start + 100]})
        if result.status != 200:
            raise AssertionError(f"POST /v1/batch -> {result.status}: {result.body}")
        accepted += result.body["accepted"]
    identified = [v for v in stream.visitors if v.identified]
    expected = {v.user_id: len([m for m in v.messages if m["type"] != "identify"]) for v in identified}

    def stitched() -> int:
        total = 0
        for user_id, count in expected.items():
            found = ctx.call("GET", f"/customers?external_id=shopweb:{user_id}", token=admin)
            if found.status != 200:
                return 0
            page = ctx.call("GET", f"/customers/{found.body['customer_id']}/timeline?limit=200", token=admin).body
            if len(page["items"]) < count:
                return 0
            total += len(page["items"])
        return total

    sqs = ctx.cloud.client("sqs")
    queue = ctx.cloud.physical_id("AWS::SQS::Queue", "CustomersCollectedEventConsumerQueue")

    def drained() -> bool:  # cheap to ask, unlike reading every timeline
        counts = sqs.get_queue_attributes(
            QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return all(v == "0" for v in counts.values())

    wait_for(drained, timeout=600, interval=2, what="the customer store to process the collected events")
    on_known = wait_for(stitched, timeout=60, interval=3, what="every signed-in visitor's journey on their timeline")
    trackable = len([m for m in messages if m["type"] != "identify"])
    owner = expect(
        ctx.call("GET", "/customers?email=tour.victim@example.com", token=admin), 200, "GET /customers?email="
    ).body
    claimant_customer = expect(
        ctx.call("GET", f"/customers?external_id=shopweb:{claimant.user_id}", token=admin), 200, "claimant"
    ).body
    claimed = [c for c in claimant_customer.get("claims", []) if c["field"] == "email"]
    if (
        owner["customer_id"] != victim
        or owner["merged_ids"]
        or owner["customer_id"] == claimant_customer["customer_id"]
    ):
        raise AssertionError(f"an unsigned identify claiming another customer's email changed them: {owner}")
    if not any(c["value"] == "tour.victim@example.com" for c in claimed):
        raise AssertionError(f"the unsigned claim is not kept on the claimant: {claimant_customer.get('claims')}")
    cloud = ctx.cloud
    bucket = cloud.physical_id("AWS::S3::Bucket", "LakeBucket")
    lake = LocalLake(cloud.client("s3"), bucket)
    rows = lake.query("select type, count(*) as n from {collected_events} group by type order by type")
    per_type = Counter({r["type"]: r["n"] for r in rows})
    if sum(per_type.values()) < accepted:
        raise AssertionError(f"the lake holds {sum(per_type.values())} events, {accepted} were accepted")
    ordered = _complete_checkouts(ctx, identified)
    return (
        f"{accepted} events from {len(stream.visitors)} visitors; in the lake by type: "
        f"{', '.join(f'{k} {v}' for k, v in sorted(per_type.items()))}; {len(identified)} visitors signed in and "
        f"{on_known} of {trackable} page/track events ({on_known / trackable:.0%}) are stitched to known "
        "customers, including everything browsed before sign-in; an unsigned identify claiming another "
        f"customer's email merged nothing and is kept as a claim; {ordered}"
    )


def checkout_order(visitor: Any, customer_id: str) -> dict[str, Any] | None:
    """The order a shopper who started checkout places: their cart (one line per product added), on the web shop."""
    started = any(m.get("event") == "Checkout Started" for m in visitor.messages)
    added = [m["properties"] for m in visitor.messages if m.get("event") == "Product Added"]
    if not started or not added:
        return None
    lines: dict[str, dict[str, Any]] = {}
    for product in added:
        line = lines.setdefault(
            product["product_id"],
            {
                "sku": product["product_id"],
                "name": product["name"],
                "category": product["category"],
                "quantity": 0,
                "unit_price_minor": round(product["price"] * 100),
            },
        )
        line["quantity"] += int(product.get("quantity") or 1)
    return {
        "customer_id": customer_id,
        "currency": "EUR",
        "channel": "web",
        "store": "shopweb",
        "lines": [*lines.values()],
    }


def _complete_checkouts(ctx: TourContext, identified: list[Any]) -> str:
    """Each signed-in shopper with a cart completes the order (`Idempotency-Key` from their checkout); then the
    order events have reached segmentation and the lake's `order_lines` before the analysis steps read them."""
    from infra.local.lake import LocalLake

    admin, agent = ctx.token(group="admin"), ctx.token(group="agent")

    def place(visitor: Any) -> str | None:
        found = expect(
            ctx.call("GET", f"/customers?external_id=shopweb:{visitor.user_id}", token=admin), 200, "the shopper"
        ).body
        body = checkout_order(visitor, found["customer_id"])
        if body is None:
            return None
        key = {"Idempotency-Key": f"shopweb-checkout-{visitor.user_id}"}
        for _ in range(3):  # a gateway error is retried with the same key: the order is placed once (201, then 200)
            placed = ctx.call("POST", "/orders", token=agent, body=body, headers=key)
            if placed.status < 500:
                break
        if placed.status not in {200, 201}:
            raise AssertionError(f"POST /orders (checkout) -> {placed.status}: {placed.body}")
        return str(placed.body["order_id"])

    with ThreadPoolExecutor(max_workers=4) as pool:
        orders = [order_id for order_id in pool.map(place, identified) if order_id]
    if not orders:
        raise AssertionError("no signed-in shopper had a cart to check out")
    cloud = ctx.cloud
    lake = LocalLake(cloud.client("s3"), cloud.physical_id("AWS::S3::Bucket", "LakeBucket"))
    placed = set(orders)

    def in_the_lake() -> bool:
        rows = lake.query("select distinct order_id from {order_lines} where channel = 'web' and store = 'shopweb'")
        return placed <= {r["order_id"] for r in rows}

    wait_for(in_the_lake, timeout=120, interval=1, what="the shop's orders in the lake's order_lines")
    wait_for(
        lambda: queue_drained(ctx, "AnalysisMembershipConsumerQueue"),
        timeout=120,
        interval=1,
        what="the shop's orders to reach segmentation",
    )
    return f"{len(orders)} shoppers completed their checkout through POST /orders (channel web, in the lake)"


STEPS: list[Step] = [
    Step("a web shop's tracking: anonymous browsing, sign-in, stitching, the lake", _collection),
]
