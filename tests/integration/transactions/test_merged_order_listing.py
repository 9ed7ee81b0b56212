"""A survivor's order listing after a merge, on moto: the merged customer's orders, which keep the id they were
placed for, are listed with the survivor's (staff and `/me`), newest first; the merged id's own listing stays."""

from __future__ import annotations

from typing import Any

from ecrm.core.clock import FixedClock
from ecrm.transactions.merge_map import MergeMap
from ecrm.transactions.models import OrderIn
from ecrm.transactions.order_service import OrderService
from ecrm.transactions.order_store import OrderStore

from functions.transactions import api
from tests.integration.transactions.conftest import NOW, TABLE, Engine, order_body

SURVIVOR = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"
LOSER = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2F"
EARLIER = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2G"


def test_the_survivor_lists_the_orders_of_everyone_merged_into_them(engine: Engine, dynamodb: Any) -> None:
    clock = FixedClock(NOW)
    merges = MergeMap(dynamodb, TABLE)
    orders = OrderService(OrderStore(dynamodb, TABLE), clock, merges)
    engine.deps = api.Deps(orders, engine.deps.loyalty)

    def place(customer_id: str, key: str) -> str:
        clock.advance(minutes=1)
        body = OrderIn.model_validate(order_body(customer_id=customer_id))
        return orders.place(body, idempotency_key=key, caller="shop", correlation_id="c").order.order_id

    # Given orders of three customers, the earliest merged into the loser, then the loser into the survivor
    first = place(EARLIER, "k1")
    second = place(LOSER, "k2")
    merges.note(EARLIER, LOSER, NOW)
    merges.note(LOSER, SURVIVOR, NOW)
    third = place(SURVIVOR, "k3")
    # When staff and the survivor list the survivor's orders
    status, staff = engine.call("GET", "/customers/{customer_id}/orders", path={"customer_id": SURVIVOR})
    me_status, mine = engine.call("GET", "/me/orders", groups=None, customer=SURVIVOR)
    # Then every order is there, newest first, and the limit holds across the merged ids
    assert (status, me_status) == (200, 200)
    assert [o["order_id"] for o in staff["items"]] == [third, second, first]
    assert [o["order_id"] for o in mine["items"]] == [third, second, first]
    assert [o.order_id for o in orders.for_customer(SURVIVOR, limit=2)] == [third, second]
    # And the merged id's own listing still shows what was placed under it
    assert [o.order_id for o in orders.for_customer(EARLIER)] == [first]
