"""Orders and loyalty on the local cloud: one order per Idempotency-Key, its points earned once through the
outbox relay and the loyalty queue, a return taking its share back, expiry fired by the schedule when the
local clock moves past the points' expiry, and the order's lines in the lake (the return a negative row).
The loyalty standing each change leaves reaches segmentation as traits: a segment on the balance takes the
customer in when the order earns and lets them go when the return takes the points back.

The rules set here expire points one day after they are earned: the shared cloud's clock moved by a year
would fire every hourly and daily job of the platform thousands of times; the 12-month default is the
same code path with another date (tests/integration/transactions/test_loyalty.py moves a year).
"""

from __future__ import annotations

import csv
import json
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

from ecrm.core.ids import new_id
from ecrm_ops.customers.importer import run_import
from ecrm_ops.tour.context import TourContext, expect, wait_for

from infra.local.cloud import LocalCloud
from infra.local.lake import LocalLake

RULES = {
    "points_per_unit": "1",
    "category_multipliers": {"tents": "2"},
    "expiry_days": 1,
    "minimum_redemption": 10,
    "tiers": [{"name": "member", "threshold": 0}, {"name": "silver", "threshold": 1000}],
}


def place(tour: TourContext, token: str, body: dict[str, Any], key: str) -> tuple[int, Any]:
    """`POST /orders` with its Idempotency-Key header (the tour's client sends no custom header)."""
    request = urllib.request.Request(tour.api + "/orders", data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", token)
    request.add_header("Idempotency-Key", key)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_an_order_earns_once_a_return_takes_back_and_points_expire_on_the_clock(
    cloud: LocalCloud, tour: TourContext
) -> None:
    admin, agent = tour.token(group="admin"), tour.token(group="agent")
    customer_id = new_id("cus_")
    me = tour.token(customer_id=customer_id)
    expect(tour.call("POST", "/loyalty/rules", token=admin, body=RULES), 201, "loyalty rules")
    marketer = tour.token(group="marketer")
    exactly_409 = {"name": f"Balance 409 {customer_id}", "rule": {"trait": "loyalty_balance", "op": "eq", "value": 409}}
    segment_id = expect(tour.call("POST", "/segments", token=marketer, body=exactly_409), 201, "segment").body[
        "segment_id"
    ]

    def members() -> int:
        return int(tour.call("GET", f"/segments/{segment_id}", token=marketer).body["member_count"])

    body = {
        "customer_id": customer_id,
        "currency": "EUR",
        "channel": "web",
        "store": "shop.example",
        "lines": [
            {"sku": "TENT-2P", "name": "Tent", "category": "tents", "quantity": 1, "unit_price_minor": 19900},
            {"sku": "PEG-10", "name": "Pegs", "category": "pegs", "quantity": 2, "unit_price_minor": 550},
        ],
    }
    # Given an order placed twice with one key
    key = new_id("checkout-")
    first, again = place(tour, agent, body, key), place(tour, agent, body, key)
    assert (first[0], again[0]) == (201, 200), (first, again)
    order_id = first[1]["order_id"]
    assert again[1]["order_id"] == order_id
    assert place(tour, agent, {**body, "store": "elsewhere"}, key)[0] == 422

    # Then its points are earned once: 199 x 2 + 11 = 409
    def account() -> dict[str, Any]:
        return dict(expect(tour.call("GET", "/me/loyalty", token=me), 200, "my loyalty").body)

    earned = wait_for(lambda: (a := account())["balance"] == 409 and a, timeout=30, what="the order's points")
    assert [line["cause"] for line in earned["statement"]] == [f"order:{order_id}"]
    # And the standing the points left reaches segmentation: the customer is in the segment on the balance
    wait_for(lambda: members() == 1, timeout=30, what="the customer in the balance segment")
    mine = expect(tour.call("GET", "/me/orders", token=me), 200, "my orders").body
    assert [order["order_id"] for order in mine["items"]] == [order_id]

    # When the tent comes back
    for status in ("paid", "shipped"):
        expect(tour.call("POST", f"/orders/{order_id}/status", token=agent, body={"status": status}), 200, status)
    returned = tour.call(
        "POST", f"/orders/{order_id}/returns", token=agent, body={"lines": [{"sku": "TENT-2P", "quantity": 1}]}
    )
    assert expect(returned, 201, "return").body["refunded_minor"] == 19900
    # Then its 398 points are taken back
    after = wait_for(lambda: (a := account())["balance"] == 11 and a, timeout=30, what="the return's reversal")
    assert [line["kind"] for line in after["statement"]] == ["earned", "reversed"]
    assert after["expiring_soon"] == 11
    wait_for(lambda: members() == 0, timeout=30, what="the customer out of the balance segment")

    # When the clock passes the points' expiry day, the daily job fires and they expire
    cloud.clock.advance(timedelta(days=1, hours=1))
    expired = wait_for(lambda: (a := account())["balance"] == 0 and a, timeout=30, what="the expiry")
    assert expired["statement"][-1]["kind"] == "expired"
    assert expired["statement"][-1]["points"] == -11
    staff_view = tour.call("GET", f"/customers/{customer_id}/loyalty", token=agent)
    assert expect(staff_view, 200, "staff view").body["balance"] == 0

    # And the order is in the lake as what it was: two purchase lines, the tent's return a negative row
    lake = LocalLake(cloud.client("s3"), cloud.physical_id("AWS::S3::Bucket", "LakeBucket"))

    def lake_rows() -> list[dict[str, Any]]:
        sql = "select distinct event_id, kind, sku, amount from {order_lines} where order_id = ? order by amount"
        return lake.query(sql, [order_id])

    rows = wait_for(lambda: len(r := lake_rows()) == 3 and r, timeout=30, what="the order's lines in the lake")
    assert [(r["kind"], r["sku"], r["amount"]) for r in rows] == [
        ("return", "TENT-2P", -199.0),
        ("purchase", "PEG-10", 11.0),
        ("purchase", "TENT-2P", 199.0),
    ]


def test_an_orders_file_imported_through_the_customer_store_places_each_order_once(
    cloud: LocalCloud, tour: TourContext, tmp_path: Path
) -> None:
    agent = tour.token(group="agent")
    admin = tour.token(group="admin")
    email = f"erp.{new_id('x').lower()}@import-orders.example.com"
    rows = [
        ["No", "Mail", "Date", "Cur", "Via", "Article", "Qty", "Price"],
        ["E-1", email, "2025-03-01T10:00:00Z", "EUR", "store", "TENT-2P", "1", "199.00"],
        ["E-1", email, "2025-03-01T10:00:00Z", "EUR", "store", "PEG-10", "2", "5,50"],
        ["E-2", email, "2025-06-15", "EUR", "web", "LAMP-1", "one", "20"],
    ]
    data = tmp_path / "orders.csv"
    with data.open("w", newline="") as sink:
        csv.writer(sink).writerows(rows)
    request = tmp_path / "orders.mapping.json"
    mapping = dict(
        zip(
            rows[0],
            ["order_ref", "email", "placed_at", "currency", "channel", "sku", "quantity", "unit_price"],
            strict=True,
        )
    )
    request.write_text(json.dumps({"kind": "orders", "mapping": mapping}))
    source = f"erp-{new_id('x')[-6:].lower()}"
    # When an ERP's orders file is imported through the customer store's import path
    status = run_import(
        str(data), source=source, mapping_file=str(request), api_url=tour.api, token=admin, progress=False
    ).status
    # Then its good order is handed over, the bad one reported, the unknown customer created
    assert (status["status"], status["imported_rows"], status["error_rows"], status["created_customers"]) == (
        "completed",
        2,
        1,
        1,
    )
    customer_id = expect(tour.call("GET", f"/customers?email={email}", token=admin), 200, "customer").body[
        "customer_id"
    ]

    def orders() -> list[dict[str, Any]]:
        return expect(tour.call("GET", f"/customers/{customer_id}/orders", token=agent), 200, "orders").body["items"]

    # And the transactions engine placed it at its own date, with its lines and total
    (order,) = wait_for(lambda: (found := orders()) and found, timeout=30, what="the imported order")
    assert (order["external_ref"], order["placed_at"][:10], order["total_minor"]) == ("E-1", "2025-03-01", 19900 + 1100)
    # And the same orders again, listed otherwise, change nothing
    with data.open("w", newline="") as sink:
        csv.writer(sink).writerows([rows[0], rows[2], rows[1]])
    again = run_import(
        str(data), source=source, mapping_file=str(request), api_url=tour.api, token=admin, progress=False
    ).status
    assert (again["status"], again["unchanged_rows"], again["imported_rows"], again["error_rows"]) == (
        "completed",
        2,
        0,
        0,
    )
