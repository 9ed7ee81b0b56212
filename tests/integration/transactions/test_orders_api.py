"""Orders through the REST handler on moto: Idempotency-Key, the status machine, returns, reads, the outbox."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from ecrm.core.errors import ServiceUnavailable
from ecrm.transactions.models import OrderIn, OrderPlaced, OrderReturned, OrderStatusChanged
from ecrm.transactions.order_service import OrderService
from ecrm.transactions.order_store import OrderStore

from infra.local import dynamodb_transactions
from tests.integration.transactions.conftest import CUSTOMER, TABLE, Engine, order_body

KEY = {"Idempotency-Key": "checkout-7f3a"}


def place(engine: Engine, body: dict[str, Any] | None = None, key: dict[str, str] = KEY) -> tuple[int, Any]:
    return engine.call("POST", "/orders", body=body or order_body(), headers=key)


def test_a_retry_with_the_same_key_returns_the_same_order_and_publishes_once(engine: Engine) -> None:
    # Given an order placed with a key
    status, first = place(engine)
    # When the client retries with the same key and body (its keys in another order)
    again_status, again = place(engine, dict(reversed(list(order_body().items()))))
    # Then one order: 201 then 200 with the same body, and one OrderPlaced on the bus
    assert (status, again_status) == (201, 200)
    assert again == first
    assert first["total_minor"] == 2 * 4999 + 3 * 599
    events = engine.relay()
    assert [type(e) for e in events] == [OrderPlaced]
    assert events[0].order_id == first["order_id"]  # type: ignore[attr-defined]


def test_the_same_key_with_another_body_is_a_422_that_changes_nothing(engine: Engine) -> None:
    place(engine)
    engine.relay()
    status, problem = place(engine, order_body(store="elsewhere"))
    assert status == 422
    assert problem["type"].endswith("/idempotency-key-reused")
    assert engine.relay() == []
    _, mine = engine.call("GET", "/me/orders", groups=None, customer=CUSTOMER)
    assert len(mine["items"]) == 1


def test_parallel_twins_of_one_request_place_one_order(engine: Engine) -> None:
    # Eight twins of one request at once, each as its own Lambda invocation would run the placement (the race is
    # the key's conditional write; the REST resolver, one per sandbox in Lambda, is not shared between threads;
    # a replay's 200 through it is the first test's). moto applies concurrent transactions without isolation (a
    # failed one restores a snapshot taken while another was half applied); the local cloud's TransactWriteItems
    # isolates them as DynamoDB does.
    dynamodb_transactions.install()
    body = OrderIn.model_validate(order_body())

    def twin(number: int) -> Any:
        for _ in range(100):  # as a client retries a 503, after a pause
            try:
                return engine.deps.orders.place(
                    body, idempotency_key=KEY["Idempotency-Key"], caller="agent-1", correlation_id=f"twin-{number}"
                )
            except ServiceUnavailable:
                time.sleep(0.05)
        raise AssertionError("the twin was never answered")

    with ThreadPoolExecutor(max_workers=8) as pool:
        placements = list(pool.map(twin, range(8)))
    # Then one order was created, the seven others answered as its replays, and it was published once
    assert [p.created for p in placements].count(True) == 1
    assert len({p.order.order_id for p in placements}) == 1
    assert [type(e).__name__ for e in engine.relay()] == ["OrderPlaced"]


def test_an_order_needs_a_key_and_a_valid_body(engine: Engine) -> None:
    status, problem = place(engine, key={})
    assert status == 422
    assert "idempotency-key" in str(problem).lower()
    status, problem = place(engine, order_body(currency="euro"))
    assert status == 422
    assert problem["errors"][0]["field"] == "currency"
    assert engine.relay() == []


def test_status_moves_are_published_and_illegal_ones_are_409(engine: Engine) -> None:
    _, order = place(engine)
    order_id = order["order_id"]
    status, problem = engine.call(
        "POST", "/orders/{order_id}/status", body={"status": "delivered"}, path={"order_id": order_id}
    )
    assert status == 409
    assert problem["status_now"] == "placed"
    for step in ("paid", "shipped", "delivered"):
        status, order = engine.call(
            "POST", "/orders/{order_id}/status", body={"status": step}, path={"order_id": order_id}
        )
        assert (status, order["status"]) == (200, step)
    events = engine.relay()
    assert [type(e).__name__ for e in events] == ["OrderPlaced", *["OrderStatusChanged"] * 3]
    assert [e.status for e in events if isinstance(e, OrderStatusChanged)] == ["paid", "shipped", "delivered"]


def test_partial_returns_then_a_full_return(engine: Engine) -> None:
    _, order = place(engine)
    order_id = order["order_id"]
    for step in ("paid", "shipped"):
        engine.call("POST", "/orders/{order_id}/status", body={"status": step}, path={"order_id": order_id})
    status, order = engine.call(
        "POST",
        "/orders/{order_id}/returns",
        body={"lines": [{"sku": "SOCK-1", "quantity": 1}]},
        path={"order_id": order_id},
    )
    assert (status, order["status"], order["refunded_minor"]) == (201, "shipped", 599)
    status, problem = engine.call(
        "POST",
        "/orders/{order_id}/returns",
        body={"lines": [{"sku": "SOCK-1", "quantity": 3}]},
        path={"order_id": order_id},
    )
    assert status == 422
    assert problem["skus"] == ["SOCK-1"]
    status, order = engine.call(
        "POST",
        "/orders/{order_id}/returns",
        body={"lines": [{"sku": "SOCK-1", "quantity": 2}, {"sku": "SHOE-1", "quantity": 2}]},
        path={"order_id": order_id},
    )
    assert (order["status"], order["refunded_minor"]) == ("returned", order["total_minor"])
    returned = [e for e in engine.relay() if isinstance(e, OrderReturned)]
    assert [(e.refund_minor, e.fully_returned) for e in returned] == [(599, False), (2 * 599 + 2 * 4999, True)]


def test_reads_and_who_may_call(engine: Engine) -> None:
    _, order = place(engine)
    status, got = engine.call("GET", "/orders/{order_id}", groups="analyst", path={"order_id": order["order_id"]})
    assert (status, got) == (200, order)
    status, listed = engine.call(
        "GET", "/customers/{customer_id}/orders", groups="marketer", path={"customer_id": CUSTOMER}
    )
    assert status == 200
    assert [o["order_id"] for o in listed["items"]] == [order["order_id"]]
    assert engine.call("POST", "/orders", body=order_body(), headers=KEY, groups="marketer")[0] == 403
    other = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2E"
    assert engine.call("GET", "/me/orders", groups=None, customer=other)[1]["items"] == []
    status, _ = engine.call("GET", "/orders/{order_id}", path={"order_id": "ord_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"})
    assert status == 404


def test_a_return_retried_with_its_key_is_taken_once(engine: Engine) -> None:
    _, order = place(engine)
    order_id = order["order_id"]
    for step in ("paid", "shipped"):
        engine.call("POST", "/orders/{order_id}/status", body={"status": step}, path={"order_id": order_id})
    body, key = {"lines": [{"sku": "SOCK-1", "quantity": 1}]}, {"Idempotency-Key": "return-1"}
    path = {"order_id": order_id}
    first = engine.call("POST", "/orders/{order_id}/returns", body=body, headers=key, path=path)
    again = engine.call("POST", "/orders/{order_id}/returns", body=body, headers=key, path=path)
    assert (first[0], again[0]) == (201, 200)
    assert again[1]["refunded_minor"] == 599
    assert len(again[1]["returns"]) == 1
    other = {"lines": [{"sku": "SHOE-1", "quantity": 1}]}
    assert engine.call("POST", "/orders/{order_id}/returns", body=other, headers=key, path=path)[0] == 422
    assert len([e for e in engine.relay() if isinstance(e, OrderReturned)]) == 1


class LosesTheAnswer:
    """A DynamoDB client whose first transaction is written but whose answer is lost (a timeout, a crash)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.lost = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        answer = self._client.transact_write_items(**kwargs)
        if not self.lost:
            self.lost = True
            raise ConnectionError("the answer was lost")
        return answer


def test_a_placement_whose_answer_was_lost_is_one_order_when_the_client_retries(dynamodb: Any, clock: Any) -> None:
    # Given a placement written by DynamoDB whose answer never reached the function
    service = OrderService(OrderStore(LosesTheAnswer(dynamodb), TABLE), clock)
    body = OrderIn.model_validate(order_body())
    with pytest.raises(ConnectionError):
        service.place(body, idempotency_key="k", caller="agent", correlation_id="c")
    # When the client retries with its key / Then it gets the order that was written, and there is one
    placement = service.place(body, idempotency_key="k", caller="agent", correlation_id="c")
    assert not placement.created
    assert [o.order_id for o in service.for_customer(CUSTOMER)] == [placement.order.order_id]
