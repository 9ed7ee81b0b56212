"""The loyalty ledger on moto, fed by the order events the outbox published, as the queue feeds it.

The acceptance cases: a duplicated OrderPlaced earns once, a return reverses its points, 50 parallel
redemptions against one balance never overdraw, and expiry runs when the clock is moved past a year.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from ecrm.core.clock import FixedClock
from ecrm.core.errors import Conflict
from ecrm.core.events import envelope_for
from ecrm.customers.models import CustomerCreated
from ecrm.transactions.loyalty_service import LoyaltyService
from ecrm.transactions.loyalty_store import LoyaltyStore
from ecrm.transactions.models import (
    LoyaltyRulesIn,
    OrderPlaced,
    PointsEarned,
    PointsExpired,
    PointsRedeemed,
    RedemptionIn,
    TierChanged,
)

from functions.transactions import on_order_event
from tests.integration.transactions.conftest import CUSTOMER, NOW, TABLE, Engine, order_body
from tests.samples import sqs_batch

RULES = {
    "points_per_unit": "1",
    "category_multipliers": {"shoes": "2"},
    "minimum_redemption": 10,
    "tiers": [{"name": "member", "threshold": 0}, {"name": "silver", "threshold": 200, "benefits": ["free returns"]}],
}
ME = {"groups": None, "customer": CUSTOMER}


def set_rules(engine: Engine) -> None:
    status, rules = engine.call("POST", "/loyalty/rules", body=RULES, groups="marketer")
    assert status == 201
    assert rules["version"] == 1


def place_and_earn(engine: Engine, key: str = "k1", *, times: int = 1) -> str:
    status, order = engine.call("POST", "/orders", body=order_body(), headers={"Idempotency-Key": key})
    assert status in (200, 201)
    engine.relay()
    assert engine.deliver_order_events(times=times) == {"batchItemFailures": []}
    return str(order["order_id"])


def test_a_duplicated_order_placed_earns_once_and_the_statement_names_its_cause(engine: Engine) -> None:
    # Given the rules: shoes earn double
    set_rules(engine)
    # When the order's OrderPlaced is delivered three times (and its key replayed once)
    order_id = place_and_earn(engine, times=3)
    place_and_earn(engine)
    # Then it earned once: 2 x 49.99 x 2 + 3 x 5.99 = 199 + 17 points
    status, account = engine.call("GET", "/me/loyalty", **ME)
    assert status == 200
    assert account["balance"] == 216
    assert [(line["kind"], line["points"], line["cause"]) for line in account["statement"]] == [
        ("earned", 216, f"order:{order_id}")
    ]
    engine.relay()
    assert [type(e) for e in engine.events if not type(e).__name__.startswith("Order")] == [PointsEarned, TierChanged]
    assert account["tier"] == "silver"


def test_a_return_reverses_its_lines_points_and_a_cancellation_the_rest(engine: Engine) -> None:
    set_rules(engine)
    order_id = place_and_earn(engine)
    for step in ("paid", "shipped"):
        engine.call("POST", "/orders/{order_id}/status", body={"status": step}, path={"order_id": order_id})
    engine.call(
        "POST",
        "/orders/{order_id}/returns",
        body={"lines": [{"sku": "SHOE-1", "quantity": 1}]},
        path={"order_id": order_id},
    )
    engine.relay()
    assert engine.deliver_order_events(times=2) == {"batchItemFailures": []}
    _, account = engine.call("GET", "/customers/{customer_id}/loyalty", groups="agent", path={"customer_id": CUSTOMER})
    # One of two shoes back: half of the line's 199 points, floored (99), once although delivered twice
    assert account["balance"] == 216 - 99
    assert account["statement"][-1]["kind"] == "reversed"
    assert account["tier"] == "member"  # 117 qualifying points, under silver's 200


def test_a_cancelled_order_takes_back_all_its_points(engine: Engine) -> None:
    set_rules(engine)
    order_id = place_and_earn(engine)
    engine.call("POST", "/orders/{order_id}/status", body={"status": "cancelled"}, path={"order_id": order_id})
    engine.relay()
    engine.deliver_order_events()
    _, account = engine.call("GET", "/me/loyalty", **ME)
    assert account["balance"] == 0


def test_a_reversal_before_its_earning_is_retried_by_the_queue(engine: Engine, loyalty: LoyaltyService) -> None:
    # Given a cancellation delivered before the OrderPlaced it reverses (queues do not keep order)
    _, order = engine.call("POST", "/orders", body=order_body(), headers={"Idempotency-Key": "k"})
    engine.call("POST", "/orders/{order_id}/status", body={"status": "cancelled"}, path={"order_id": order["order_id"]})
    engine.relay()
    placed, cancelled = engine.published
    engine.published = [cancelled]
    # When / Then: the cancellation fails (the queue retries it) and changes nothing
    with pytest.raises(BatchProcessingError):
        engine.deliver_order_events()
    engine.published = [placed, cancelled]
    assert engine.deliver_order_events() == {"batchItemFailures": []}
    assert loyalty.account(CUSTOMER).balance == 0


class SerializedCalls:
    """One DynamoDB request at a time, as the service applies each request atomically.

    moto checks a transaction's conditions and then writes without a lock, so two threads could both pass
    a condition in moto where DynamoDB would fail one; the threads still interleave between requests.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


def test_fifty_parallel_redemptions_never_overdraw_one_balance(
    engine: Engine, dynamodb: Any, clock: FixedClock
) -> None:
    # Given 216 points
    set_rules(engine)
    place_and_earn(engine)
    service = LoyaltyService(LoyaltyStore(SerializedCalls(dynamodb), TABLE), clock)
    # When 50 redemptions of 10 points run at once
    barrier = threading.Barrier(50)

    def redeem(n: int) -> bool:
        barrier.wait()
        try:
            service.redeem(CUSTOMER, RedemptionIn(points=10), idempotency_key=f"r{n}", correlation_id="c")
            return True
        except Conflict:  # the 409 of an exhausted balance
            return False

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(redeem, range(50)))
    # Then exactly 21 succeed, the balance is 6, never below zero, and the statement adds up
    account = service.account(CUSTOMER)
    assert results.count(True) == 21
    assert account.balance == 6
    assert sum(line.points for line in account.statement) == 6
    engine.relay()
    assert len([e for e in engine.events if isinstance(e, PointsRedeemed)]) == 21


def test_a_redemption_replayed_with_its_key_redeems_once(engine: Engine) -> None:
    set_rules(engine)
    place_and_earn(engine)
    key = {"Idempotency-Key": "redeem-1"}
    first = engine.call("POST", "/me/loyalty/redeem", body={"points": 100}, headers=key, **ME)
    again = engine.call("POST", "/me/loyalty/redeem", body={"points": 100}, headers=key, **ME)
    assert (first[0], again[0]) == (201, 200)
    assert first[1]["discount_code"] == again[1]["discount_code"]
    assert first[1]["discount_minor"] == 100
    status, problem = engine.call("POST", "/me/loyalty/redeem", body={"points": 500}, **ME)
    assert status == 409
    assert problem["balance"] == 116
    assert engine.call("POST", "/me/loyalty/redeem", body={"points": 5}, **ME)[0] == 422


def test_points_expire_a_year_on_when_the_clock_moves(
    engine: Engine, loyalty: LoyaltyService, clock: FixedClock
) -> None:
    # Given 216 points earned now, 100 of them spent, and 50 more earned six months later
    set_rules(engine)
    place_and_earn(engine)
    loyalty.redeem(CUSTOMER, RedemptionIn(points=100), idempotency_key=None, correlation_id="c")
    clock.advance(days=183)
    later = OrderPlaced(
        order_id="ord_01JD3Z6Q5N8V4W7X2Y9A0B1C2E",
        customer_id=CUSTOMER,
        currency="EUR",
        channel="store",
        lines=[{"sku": "CAP-1", "name": "Cap", "quantity": 1, "unit_price_minor": 5000}],  # type: ignore[list-item]
        total_minor=5000,
        placed_at=clock.now(),
    )
    loyalty.earn_for_order(later)
    # When the job runs the day before the first points' anniversary / Then nothing expires
    clock.at = NOW + timedelta(days=364)
    assert loyalty.account(CUSTOMER).expiring_soon == 116
    assert loyalty.expire_due() == 0
    # When it runs on the anniversary, twice / Then the 116 unspent points of that order expire, once
    clock.advance(days=1)
    assert loyalty.expire_due() == 116
    assert loyalty.expire_due() == 0
    account = loyalty.account(CUSTOMER)
    assert account.balance == 50
    assert account.statement[-1].kind == "expired"
    engine.relay()
    assert [e.points for e in engine.events if isinstance(e, PointsExpired)] == [116]


def test_rules_are_validated_and_only_the_programme_s_staff_set_them(engine: Engine) -> None:
    assert engine.call("POST", "/loyalty/rules", body=RULES, groups="agent")[0] == 403
    bad = {**RULES, "tiers": [{"name": "gold", "threshold": 10}]}
    assert engine.call("POST", "/loyalty/rules", body=bad, groups="admin")[0] == 422
    assert engine.call("GET", "/loyalty/rules", groups="analyst")[1]["version"] == 0
    LoyaltyRulesIn.model_validate(RULES)


def test_a_new_customer_gets_the_sign_up_bonus_once(engine: Engine, lambda_context: Any) -> None:
    # Given a sign-up bonus of 50 points
    engine.call("POST", "/loyalty/rules", body={**RULES, "signup_bonus": 50}, groups="admin")
    created = CustomerCreated(customer_id=CUSTOMER, record_source="web", identity_types=["email"], created_at=NOW)
    body = json.dumps(
        {
            "id": "eb-created",
            "source": created.source,
            "detail-type": created.detail_type,
            "time": NOW.isoformat(),
            "detail": envelope_for(created),
        }
    )
    # When CustomerCreated is delivered twice
    handler: Any = on_order_event.handler
    assert handler(sqs_batch([body, body]), lambda_context, engine.loyalty) == {"batchItemFailures": []}
    # Then the bonus was given once, as a statement line of its own
    _, account = engine.call("GET", "/me/loyalty", **ME)
    assert account["balance"] == 50
    assert [(line["kind"], line["cause"]) for line in account["statement"]] == [("bonus", "signup")]
