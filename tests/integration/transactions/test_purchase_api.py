"""The purchase routes through the API handler on moto: a customer's purchase accepted once per key (202,
then 200), read only by its customer, vendors registered by admins only (the secret never returned), and the
vendor's callback refused without a good signature and taken with one."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ecrm.core.clock import FixedClock
from ecrm.transactions.order_service import OrderService
from ecrm.transactions.vendors import signature

from functions.transactions import api
from tests.integration.transactions import test_purchase_saga_steps as steps
from tests.integration.transactions.conftest import CUSTOMER, Engine
from tests.samples import api_request

SECRET = steps.SECRET


@pytest.fixture
def world(dynamodb: Any, clock: FixedClock, orders: OrderService) -> Any:
    return steps.make_world(dynamodb, clock, orders)


ME = {"groups": None, "customer": CUSTOMER}
BODY = {"product_id": "prd_shoe", "vendor_id": "acme", "quantity": 2}


@pytest.fixture
def engine(world: Any, engine: Engine) -> Engine:
    engine.deps = api.Deps(engine.deps.orders, engine.deps.loyalty, purchases=world.service)
    return engine


def callback(engine: Engine, body: bytes, signature: str | None) -> tuple[int, Any]:
    event = api_request(
        "POST", "/vendors/{vendor_id}/callbacks", path_parameters={"vendor_id": "acme"}, body=body.decode(), groups=None
    )
    event["requestContext"]["authorizer"] = None
    event["headers"] = {"Content-Type": "application/json", **({"X-Ecrm-Signature": signature} if signature else {})}
    event["multiValueHeaders"] = {name: [value] for name, value in event["headers"].items()}
    handler: Any = api.handler
    response = handler(event, engine.context, engine.deps)
    return response["statusCode"], json.loads(response["body"])


def test_a_purchase_is_accepted_once_per_key_and_read_by_its_customer_only(engine: Engine, world: Any) -> None:
    key = {"Idempotency-Key": "buy-1"}
    status, first = engine.call("POST", "/me/purchases", body=BODY, headers=key, **ME)
    again_status, again = engine.call("POST", "/me/purchases", body=BODY, headers=key, **ME)
    assert (status, again_status) == (202, 200)
    assert again["purchase_id"] == first["purchase_id"]
    assert first["status"] == "requested"
    assert engine.call("POST", "/me/purchases", body={**BODY, "quantity": 3}, headers=key, **ME)[0] == 422
    assert engine.call("POST", "/me/purchases", body=BODY, **ME)[0] in (400, 422)  # no key
    path = {"purchase_id": first["purchase_id"]}
    assert engine.call("GET", "/me/purchases/{purchase_id}", path=path, **ME)[1]["total_minor"] == 9998
    other = {"groups": None, "customer": "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2E"}
    assert engine.call("GET", "/me/purchases/{purchase_id}", path=path, **other)[0] == 404


def test_only_admins_register_vendors_and_the_secret_is_never_returned(engine: Engine) -> None:
    body = {"name": "Acme", "endpoint": "https://acme.example/api", "secret": SECRET}
    path = {"vendor_id": "acme"}
    assert engine.call("PUT", "/vendors/{vendor_id}", body=body, path=path, groups="agent")[0] == 403
    status, vendor = engine.call("PUT", "/vendors/{vendor_id}", body=body, path=path, groups="admin")
    assert status == 200
    assert "secret" not in vendor
    assert SECRET not in json.dumps(vendor)
    plain = {**body, "endpoint": "http://acme.example/api"}
    assert engine.call("PUT", "/vendors/{vendor_id}", body=plain, path=path, groups="admin")[0] == 400


def test_the_callback_needs_the_vendors_signature(engine: Engine, world: Any, clock: FixedClock) -> None:
    _, purchase = engine.call("POST", "/me/purchases", body=BODY, headers={"Idempotency-Key": "buy-2"}, **ME)
    world.service.reserve(purchase["purchase_id"])
    world.service.charge(purchase["purchase_id"])
    world.service.request_confirmation(purchase["purchase_id"], "token-api")
    answer = json.dumps({"purchase_id": purchase["purchase_id"], "outcome": "confirmed"}).encode()

    status, problem = callback(engine, answer, None)
    assert (status, problem["status"]) == (401, 401)
    assert callback(engine, answer, "t=1,v1=00")[0] == 401
    assert world.service.get_for_customer(CUSTOMER, purchase["purchase_id"]).status == "awaiting_confirmation"

    signed = signature(SECRET, int(clock.now().timestamp()), answer)
    status, receipt = callback(engine, answer, signed)
    assert (status, receipt["status"], receipt["replayed"]) == (200, "confirmed", False)
    assert callback(engine, answer, signed)[1]["replayed"] is True
    assert world.saga.resumed == [("token-api", "success")]
