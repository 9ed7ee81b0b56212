"""Orders placed through the API reach segmentation and the model job on the local cloud.

`POST /orders` -> the transactions engine's outbox -> the bus -> segmentation's projection (real time) and the
lake's `order_lines` (batch path, model job). A return lowers spend and is never a purchase on every path.
Times are the local cloud's clock: windows are relative to it.
"""

from __future__ import annotations

from typing import Any

from ecrm.core.ids import new_id
from ecrm_ops.local_cloud import invoke_function
from ecrm_ops.tour.context import TourContext, expect, wait_for

from infra.local.cloud import LocalCloud

TWO_WEB_ORDERS = {
    "orders": {
        "where": [{"property": "channel", "op": "eq", "value": "web"}],
        "window": {"last_days": 30},
        "count": {"op": "gte", "value": 2},
    }
}


def _customer(tour: TourContext, token: str) -> str:
    body = {
        "source": "web",
        "identities": [{"type": "email", "value": f"{new_id('e2e').lower()}@example.org"}],
        "attributes": {"country": "FR"},
    }
    return str(expect(tour.call("POST", "/customers", token=token, body=body), 201, "customer").body["customer_id"])


def _order(tour: TourContext, token: str, customer_id: str, price_minor: int) -> dict[str, Any]:
    """`POST /orders` as a shop's backend sends it: a gateway error (a cold function timing out on a loaded machine)
    is retried with the same Idempotency-Key, which is what the key is for (201 first, 200 for a replay)."""
    body = {
        "customer_id": customer_id,
        "currency": "EUR",
        "channel": "web",
        "store": "shopweb",
        "lines": [
            {"sku": "BOOT-1", "name": "Boots", "category": "shoes", "quantity": 1, "unit_price_minor": price_minor}
        ],
    }
    headers = {"Idempotency-Key": new_id("e2e-checkout-")}
    for _ in range(3):
        placed = tour.call("POST", "/orders", token=token, body=body, headers=headers)
        if placed.status < 500:
            break
    assert placed.status in {200, 201}, placed
    return dict(placed.body)


def test_orders_placed_through_the_api_are_seen_by_a_segment_and_by_the_model_job(
    cloud: LocalCloud, tour: TourContext
) -> None:
    marketer, agent = tour.token(group="marketer"), tour.token(group="agent")
    # Given a segment of customers with two web orders in 30 days, and two customers
    segment = expect(
        tour.call("POST", "/segments", token=marketer, body={"name": "Two web orders", "rule": TWO_WEB_ORDERS}),
        201,
        "segment",
    ).body
    assert segment["rule_text"] == "placed at least 2 orders with channel is web in the last 30 days"
    buyer, once = _customer(tour, marketer), _customer(tour, marketer)

    # When the buyer places two orders (one sent back in full) and the other customer one
    kept, sent_back = _order(tour, agent, buyer, 12000), _order(tour, agent, buyer, 5000)
    _order(tour, agent, once, 9900)
    for status in ("paid", "shipped"):
        path = f"/orders/{sent_back['order_id']}/status"
        expect(tour.call("POST", path, token=agent, body={"status": status}), 200, status)
    back = {"lines": [{"sku": "BOOT-1", "quantity": 1}]}
    expect(tour.call("POST", f"/orders/{sent_back['order_id']}/returns", token=agent, body=back), 201, "return")

    # Then the buyer enters the segment in real time (from the order events), the other customer does not
    def members() -> int:
        return int(tour.call("GET", f"/segments/{segment['segment_id']}", token=marketer).body["member_count"])

    wait_for(lambda: members() >= 1, timeout=90, what="the buyer in the segment")
    assert members() == 1

    # And the lake's order_lines give the same answer, and count the return against spend, not as an order
    def preview(rule: dict[str, Any]) -> set[str]:
        body = {"rule": rule, "sample": 100}
        return set(
            expect(tour.call("POST", "/segments/preview", token=marketer, body=body), 200, "preview").body["sample"]
        )

    wait_for(lambda: buyer in preview(TWO_WEB_ORDERS), timeout=60, what="the buyer's orders on the lake")
    assert once not in preview(TWO_WEB_ORDERS)
    spent_over_100 = {"orders": {"window": {"last_days": 30}, "spent": {"op": "gt", "value": 100}}}
    spent_over_150 = {"orders": {"window": {"last_days": 30}, "spent": {"op": "gt", "value": 150}}}
    assert buyer in preview(spent_over_100)
    assert buyer not in preview(spent_over_150)  # 120 + 50 bought, 50 back

    # When the model job runs on the lake
    as_of = cloud.clock.now().date().isoformat()
    _, failed, result = invoke_function("ModelJob", {"as_of": as_of}, cloud.state)
    assert not failed, result
    assert result["customers"] >= 2

    # Then the buyer's traits count the net revenue of their orders (the return taken off), on their profile
    def traits() -> dict[str, Any]:
        return dict(tour.call("GET", f"/customers/{buyer}", token=marketer).body.get("traits", {}))

    scored = wait_for(lambda: (t := traits()).get("revenue") is not None and t, timeout=90, what="the buyer's traits")
    assert scored["revenue"] == 120.0
    assert scored["orders"] >= 1
    assert kept["order_id"] != sent_back["order_id"]
