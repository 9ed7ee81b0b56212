"""Merged customers' loyalty accounts on moto: when the customer store merges B into A, B's balance, its lots with
their expiry days and its qualifying points move to A once, in one transaction, however often the merge is
delivered and wherever the consumer dies; a later return of an order B earned on takes its points back from A.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from ecrm.core.clock import FixedClock
from ecrm.core.events import envelope_for
from ecrm.customers.models import CustomersMerged
from ecrm.transactions.ledger import Account
from ecrm.transactions.loyalty_service import LoyaltyService
from ecrm.transactions.loyalty_store import LoyaltyStore
from ecrm.transactions.models import PointsMerged

from functions.transactions import on_order_event
from tests.integration.transactions.conftest import NOW, TABLE, Engine, order_body
from tests.integration.transactions.test_loyalty import set_rules
from tests.samples import sqs_batch

A = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1CAA"
B = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1CBB"
C = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1CCC"
SOCKS = [{"sku": "SOCK-1", "name": "Socks", "category": "socks", "quantity": 3, "unit_price_minor": 599}]


def merge_body(survivor: str, *merged: str) -> str:
    event = CustomersMerged(
        survivor_id=survivor, merged_ids=[survivor, *merged], matched_by=["email"], reason="same email", merged_at=NOW
    )
    detail = envelope_for(event, "cor_merge", NOW)
    return json.dumps(
        {
            "version": "0",
            "id": f"bus-{detail['metadata']['id']}",
            "detail-type": event.detail_type,
            "source": event.source,
            "account": "123456789012",
            "time": "2026-11-23T10:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        }
    )


def deliver(handler_loyalty: LoyaltyService, body: str, context: Any) -> dict[str, Any]:
    handler: Any = on_order_event.handler
    return handler(sqs_batch([body]), context, handler_loyalty)  # type: ignore[no-any-return]


def place(engine: Engine, customer_id: str, key: str, **overrides: Any) -> str:
    status, order = engine.call(
        "POST", "/orders", body=order_body(customer_id=customer_id, **overrides), headers={"Idempotency-Key": key}
    )
    assert status == 201, order
    engine.relay()
    assert engine.deliver_order_events() == {"batchItemFailures": []}
    return str(order["order_id"])


def two_members(engine: Engine, clock: FixedClock) -> str:
    """A earns 17 points now; B earns 216 a month later (silver), so their lots expire on different days."""
    set_rules(engine)
    place(engine, A, "a1", lines=SOCKS)
    clock.advance(days=31)
    return place(engine, B, "b1")


def test_a_merge_moves_the_balance_lots_and_tier_once_and_a_later_return_reverses_on_the_survivor(
    engine: Engine, loyalty: LoyaltyService, dynamodb: Any, clock: FixedClock, lambda_context: Any
) -> None:
    # Given A with 17 points and B with 216 points, expiring a month apart
    b_order = two_members(engine, clock)
    store = LoyaltyStore(dynamodb, TABLE)
    lots_before = {**store.account(A).lots, **store.account(B).lots}  # type: ignore[union-attr]
    assert len(lots_before) == 2

    # When the customer store's CustomersMerged (B into A) is delivered three times
    for _ in range(3):
        assert deliver(loyalty, merge_body(A, B), lambda_context) == {"batchItemFailures": []}

    # Then A holds both balances, both lots on their own expiry days, and the tier the sum qualifies for
    survivor, merged = store.account(A), store.account(B)
    assert survivor is not None
    assert merged is not None
    assert (survivor.balance, survivor.qualifying, survivor.lots, survivor.tier) == (233, 233, lots_before, "silver")
    assert (merged.balance, merged.lots, merged.merged_into) == (0, {}, A)
    # and one statement line each side names the merge, and one PointsMerged carries A's standing
    _, account = engine.call("GET", "/customers/{customer_id}/loyalty", path={"customer_id": A})
    assert [(line["kind"], line["points"], line["cause"]) for line in account["statement"]][-1] == (
        "merged",
        216,
        f"merge:{B}",
    )
    merges = [e for e in engine.relay() if isinstance(e, PointsMerged)]
    assert [(e.customer_id, e.merged_id, e.points, e.standing.balance if e.standing else None) for e in merges] == [
        (A, B, 216, 233)
    ]
    # and B's loyalty, asked for by B's id, is A's account
    _, asked_for_b = engine.call("GET", "/customers/{customer_id}/loyalty", path={"customer_id": B})
    assert (asked_for_b["customer_id"], asked_for_b["balance"]) == (A, 233)

    # When B's order is returned in part (its event names B, the order's customer), delivered twice
    for step in ("paid", "shipped"):
        engine.call("POST", "/orders/{order_id}/status", body={"status": step}, path={"order_id": b_order})
    status, _ = engine.call(
        "POST",
        "/orders/{order_id}/returns",
        body={"lines": [{"sku": "SHOE-1", "quantity": 1}]},
        path={"order_id": b_order},
    )
    assert status in (200, 201)
    engine.relay()
    assert engine.deliver_order_events(times=2) == {"batchItemFailures": []}

    # Then the points come off A, from the lot B's order earned in, once; B stays empty
    survivor, merged = store.account(A), store.account(B)
    assert survivor is not None
    assert merged is not None
    assert survivor.balance == 233 - 99
    b_lot = max(lots_before)
    assert survivor.lots[b_lot] == lots_before[b_lot] - 99
    assert (merged.balance, merged.merged_into) == (0, A)


class CrashingClient:
    """The DynamoDB client of a consumer that dies around the merge's transaction: before it is sent (nothing
    written) or after it committed (the message never acknowledged); every other call goes through."""

    def __init__(self, client: Any, *, after_commit: bool, crashes: int = 1) -> None:
        self.client = client
        self.after_commit = after_commit
        self.crashes = crashes

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        is_merge = any("merged_into" in action.get("Put", {}).get("Item", {}) for action in kwargs["TransactItems"])
        if is_merge and self.crashes and not self.after_commit:
            self.crashes -= 1
            raise RuntimeError("the consumer died before the merge was written")
        answer = self.client.transact_write_items(**kwargs)
        if is_merge and self.crashes and self.after_commit:
            self.crashes -= 1
            raise RuntimeError("the consumer died before it acknowledged the merge")
        return answer


@pytest.mark.parametrize("after_commit", [False, True], ids=["killed-before-commit", "killed-after-commit"])
def test_a_consumer_killed_around_the_merge_moves_the_balance_exactly_once_on_redelivery(
    after_commit: bool, engine: Engine, dynamodb: Any, clock: FixedClock, lambda_context: Any
) -> None:
    # Given A's and B's accounts, and a third customer C merged with B into A by the same event
    two_members(engine, clock)
    place(engine, C, "c1", lines=SOCKS)
    store = LoyaltyStore(dynamodb, TABLE)
    total = sum(store.account(x).balance for x in (A, B, C))  # type: ignore[union-attr]

    # When the consumer dies at B's move (before its commit, or after it), its batch fails ...
    dying = LoyaltyService(LoyaltyStore(CrashingClient(dynamodb, after_commit=after_commit), TABLE), clock)
    with pytest.raises(BatchProcessingError):
        deliver(dying, merge_body(A, B, C), lambda_context)
    assert store.account(B).merged_into == (A if after_commit else None)  # type: ignore[union-attr]
    assert store.account(C).merged_into is None  # type: ignore[union-attr]
    # ... and the queue delivers the merge again, twice, to a consumer that lives
    healthy = LoyaltyService(store, clock)
    for _ in range(2):
        assert deliver(healthy, merge_body(A, B, C), lambda_context) == {"batchItemFailures": []}

    # Then every point is on A, moved exactly once: the balance is the sum, B and C are empty and point to A
    accounts = {x: store.account(x) for x in (A, B, C)}
    assert accounts[A].balance == total  # type: ignore[union-attr]
    assert [(accounts[x].balance, accounts[x].merged_into) for x in (B, C)] == [(0, A), (0, A)]  # type: ignore[union-attr]
    lines = [line for line in store.statement(A, 50) if line.kind == "merged"]
    assert sorted(line.cause for line in lines) == [f"merge:{B}", f"merge:{C}"]


def test_a_merged_customer_without_an_account_points_on_and_its_later_earnings_land_on_the_survivor(
    engine: Engine, loyalty: LoyaltyService, dynamodb: Any, clock: FixedClock, lambda_context: Any
) -> None:
    # Given A with points and B with no account at all, merged into A
    set_rules(engine)
    place(engine, A, "a1", lines=SOCKS)
    assert deliver(loyalty, merge_body(A, B), lambda_context) == {"batchItemFailures": []}
    # When an order B placed before the merge is delivered after it
    place(engine, B, "b-late")
    # Then it earned on A, the event naming A, and B's account is only the pointer
    store = LoyaltyStore(dynamodb, TABLE)
    assert store.account(A).balance == 17 + 216  # type: ignore[union-attr]
    assert store.account(B) == Account(B, tier="member", version=1, merged_into=A)
    assert date.fromisoformat(min(store.account(A).lots)) > (NOW + timedelta(days=300)).date()  # type: ignore[union-attr]


def test_a_merged_customers_birthday_leaves_the_index_so_the_survivor_gets_one_bonus_a_year(
    engine: Engine, loyalty: LoyaltyService, dynamodb: Any, clock: FixedClock, lambda_context: Any
) -> None:
    # Given A and B with their birthdays noted from their profiles, B with points
    two_members(engine, clock)
    loyalty.note_birth_date(A, date(1990, 3, 1), 1)
    loyalty.note_birth_date(B, date(1985, 7, 14), 1)
    # When B is merged into A
    assert deliver(loyalty, merge_body(A, B), lambda_context) == {"batchItemFailures": []}
    # Then the birthday job finds A on A's day and nobody on B's
    store = LoyaltyStore(dynamodb, TABLE)
    assert (store.birthdays_on("03-01"), store.birthdays_on("07-14")) == ([A], [])
