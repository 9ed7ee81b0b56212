"""Brokered purchases on the local cloud: the saga's state machine runs the purchase against a vendor served
on 127.0.0.1, which answers by the signed callback. A confirmed purchase completes as a paid order earning
points; a vendor refusal, a declined payment and a vendor that never calls back (the local clock moved past
the wait) each end failed and compensated; every outcome reaches the customer's timeline.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from ecrm.core.ids import new_id
from ecrm.transactions.vendors import SIGNATURE_HEADER, signature, verify_signature
from ecrm_ops.tour.context import TourContext, expect, wait_for

from infra.local.cloud import LocalCloud

SECRET = "e2e-vendor-secret-" + "z" * 24


class VendorServer:
    """A vendor's HTTP side: reservations (refused under `/refuse`), confirmations recorded, releases."""

    def __init__(self, cloud: LocalCloud) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                signed = verify_signature(
                    SECRET,
                    self.headers.get(SIGNATURE_HEADER),
                    body,
                    now_s=cloud.clock.now().timestamp(),
                    tolerance_s=300,
                )
                vendor.requests.append((self.path, json.loads(body) if signed else {"unsigned": True}))
                status = 409 if self.path.startswith("/refuse/reservations") else 201
                answer = json.dumps({"reference": "V-" + self.path.rsplit("/", 1)[1]}).encode()
                self.send_response(status if signed else 401)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def paths_for(self, purchase_id: str) -> list[str]:
        return [path.rsplit("/", 1)[1] for path, body in self.requests if body.get("purchase_id") == purchase_id]


@pytest.fixture(scope="module")
def vendor(cloud: LocalCloud) -> Iterator[VendorServer]:
    server = VendorServer(cloud)
    yield server
    server.server.shutdown()


def post(tour: TourContext, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(tour.api + path, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_brokered_purchases_complete_or_end_compensated(
    cloud: LocalCloud, tour: TourContext, vendor: VendorServer
) -> None:
    admin = tour.token(group="admin")
    shopper = {"source": "web", "identities": [{"type": "email", "value": f"{new_id('p').lower()}@example.org"}]}
    customer_id = expect(tour.call("POST", "/customers", token=admin, body=shopper), 201, "customer").body[
        "customer_id"
    ]
    me = tour.token(customer_id=customer_id)

    # Given a product offered by a vendor that sells and one that refuses, both registered with their endpoint
    product = tour.call("POST", "/catalog/products", token=admin, body={"name": "Camp stove", "category": "stoves"})
    assert product.status in (200, 201), product.body
    product_id = product.body["product_id"]
    for vendor_id, path in (("e2e-seller", ""), ("e2e-refuser", "/refuse")):
        offer = {
            "vendor_id": vendor_id,
            "vendor_name": vendor_id,
            "price_minor": 45000,
            "currency": "EUR",
            "stock": 1000,
            "delivery_days": 2,
            "vendor_rating": "4.5",
            "return_days": 30,
        }
        added = tour.call("POST", f"/catalog/products/{product_id}/offers", token=admin, body=offer)
        assert added.status in (200, 201), added.body
        registered = tour.call(
            "PUT",
            f"/vendors/{vendor_id}",
            token=admin,
            body={"name": vendor_id, "endpoint": vendor.url + path, "secret": SECRET},
        )
        assert registered.status == 200, registered.body
        assert "secret" not in registered.body

    def purchase(vendor_id: str, quantity: int, key: str | None = None) -> str:
        body = json.dumps({"product_id": product_id, "vendor_id": vendor_id, "quantity": quantity}).encode()
        status, answer = post(
            tour, "/me/purchases", body, {"Authorization": me, "Idempotency-Key": key or new_id("k-")}
        )
        assert status in (200, 202), answer
        return str(answer["purchase_id"])

    def settled(purchase_id: str) -> dict[str, Any]:
        def state() -> Any:
            found = expect(tour.call("GET", f"/me/purchases/{purchase_id}", token=me), 200, "my purchase").body
            return found["status"] in ("completed", "failed") and found

        return dict(wait_for(state, timeout=30, what=f"purchase {purchase_id} to settle"))

    def callback(purchase_id: str, outcome: str) -> tuple[int, Any]:
        body = json.dumps({"purchase_id": purchase_id, "outcome": outcome, "vendor_reference": "SALE-1"}).encode()
        stamp = int(cloud.clock.now().timestamp())
        return post(tour, "/vendors/e2e-seller/callbacks", body, {SIGNATURE_HEADER: signature(SECRET, stamp, body)})

    # When one purchase is confirmed by the vendor (its request sent twice with one key)
    key = new_id("k-")
    sold = purchase("e2e-seller", 2, key)
    assert purchase("e2e-seller", 2, key) == sold
    wait_for(lambda: "confirmations" in vendor.paths_for(sold), timeout=30, what="the confirmation request")
    assert callback(sold, "confirmed")[0] == 200
    replay_status, replay = callback(sold, "confirmed")
    assert (replay_status, replay["replayed"]) == (200, True)
    forged = json.dumps({"purchase_id": sold, "outcome": "refused"}).encode()
    assert post(tour, "/vendors/e2e-seller/callbacks", forged, {SIGNATURE_HEADER: "t=1,v1=00"})[0] == 401

    # Then it completes as a paid order of the customer's, which earns its points
    done = settled(sold)
    assert (done["status"], done["total_minor"], done["vendor_ref"]) == ("completed", 90000, "SALE-1")
    orders = expect(tour.call("GET", "/me/orders", token=me), 200, "my orders").body["items"]
    assert [(o["order_id"], o["status"], o["channel"]) for o in orders] == [(done["order_id"], "paid", "marketplace")]
    wait_for(
        lambda: any(
            line["cause"] == f"order:{done['order_id']}"
            for line in tour.call("GET", "/me/loyalty", token=me).body.get("statement", [])
        ),
        timeout=30,
        what="the purchase's points",
    )

    # And a refused reservation, a declined payment and a vendor that never answers each end compensated
    refused = purchase("e2e-refuser", 1)
    declined = purchase("e2e-seller", 30)  # 13,500.00 EUR: over what the payment double accepts
    silent = purchase("e2e-seller", 1)
    # (the other two settle before the clock moves: a request signed before a jump is stale to the vendor after it)
    outcomes = {p: settled(p) for p in (refused, declined)}
    wait_for(lambda: "confirmations" in vendor.paths_for(silent), timeout=30, what="the silent vendor's request")
    sfn = cloud.client("stepfunctions")
    machine, execution = next(
        (m["stateMachineArn"], e["executionArn"])
        for m in sfn.list_state_machines()["stateMachines"]
        for e in sfn.list_executions(stateMachineArn=m["stateMachineArn"])["executions"]
        if e["name"] == silent
    )
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=machine)["definition"])
    wait_s = definition["States"]["RequestConfirmation"]["TimeoutSeconds"]
    assert cloud.clock.until_waiting(execution)
    cloud.clock.advance(timedelta(seconds=wait_s + 1))

    outcomes[silent] = settled(silent)
    assert [(o["failure"], o["released"], o["refunded"]) for o in outcomes.values()] == [
        ("vendor_refused", False, False),
        ("payment_declined", True, False),
        ("confirmation_timed_out", True, True),
    ]
    assert vendor.paths_for(declined) == ["reservations", "releases"]
    assert vendor.paths_for(silent) == ["reservations", "confirmations", "releases"]
    # A late answer from the silent vendor changes nothing
    assert callback(silent, "confirmed")[0] == 409
    assert settled(silent)["status"] == "failed"

    # And every outcome is on the customer's timeline
    def timeline() -> list[str]:
        page = expect(tour.call("GET", f"/customers/{customer_id}/timeline", token=admin), 200, "timeline").body
        return sorted(item["type"] for item in page["items"] if item["type"].startswith("purchase_"))

    wait_for(
        lambda: timeline() == ["purchase_brokered", *["purchase_failed"] * 3],
        timeout=30,
        what="the purchases on the timeline",
    )
