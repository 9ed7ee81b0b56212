"""The loyalty standing on the customer as traits: the transactions contract's loyalty events, built from its
models, keep the newest standing by account version; a late or repeated event changes nothing, an event of
an unknown customer is dropped and one of another shape goes to the DLQ."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from ecrm.customers.loyalty_traits import LOYALTY_EVENTS, LoyaltyTraits
from ecrm.customers.models import CustomerUpsert
from ecrm.customers.service import CustomerService
from ecrm.transactions.models import LoyaltyStanding, PointsEarned, PointsRedeemed, TierChanged

from functions.customers import on_loyalty_event
from tests.integration.customers.test_purchase_timeline import bus_body
from tests.samples import sqs_batch

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HANDLER: Any = on_loyalty_event.handler  # the entrypoint decorator hides the injected parameter


def standing(version: int, balance: int, tier: str = "member", expiring: int = 0) -> LoyaltyStanding:
    return LoyaltyStanding(
        balance=balance,
        tier=tier,
        qualifying_points=balance,
        expiring_soon=expiring,
        expiring_by=date(2026, 12, 31),
        account_version=version,
        as_of=AT + timedelta(minutes=version),
    )


def test_the_newest_standing_is_kept_whatever_order_the_events_arrive_in(
    service: CustomerService, lambda_context: Any
) -> None:
    customer_id = service.upsert(
        CustomerUpsert.model_validate({"source": "shop", "identities": [{"type": "email", "value": "kim@example.com"}]})
    ).customer_id
    earned = PointsEarned(
        customer_id=customer_id,
        entry_id="led_1",
        points=600,
        cause="order:ord_1",
        expires_on=date(2027, 12, 1),
        earned_at=AT,
        standing=standing(1, 600),
    )
    tier = TierChanged(
        customer_id=customer_id,
        previous_tier="member",
        tier="silver",
        qualifying_points=1100,
        changed_at=AT,
        standing=standing(2, 1100, "silver", expiring=80),
    )
    redeemed = PointsRedeemed(
        customer_id=customer_id,
        entry_id="led_3",
        points=100,
        redemption_id="rdm_1",
        discount_minor=100,
        redeemed_at=AT,
        standing=standing(3, 1000, "silver", expiring=0),
    )
    traits = LoyaltyTraits(service)
    # When the newest arrives first, then the older ones, then everything again
    for events in ([redeemed], [earned, tier], [earned, tier, redeemed]):
        answer = HANDLER(sqs_batch([bus_body(e) for e in events]), lambda_context, traits)
        assert answer["batchItemFailures"] == []
    # Then the traits hold the newest standing
    kept = service.get(customer_id).traits
    assert {k: v for k, v in kept.items() if k.startswith("loyalty_")} == {
        "loyalty_tier": "silver",
        "loyalty_balance": 1000,
        "loyalty_qualifying_points": 1000,
        "loyalty_points_expiring_30d": 0,
        "loyalty_expiring_by": "2026-12-31",
        "loyalty_as_of": (AT + timedelta(minutes=3)).isoformat(),
        "loyalty_account_version": 3,
    }


def test_an_unknown_customer_is_dropped_and_another_shape_goes_to_the_dlq(
    service: CustomerService, lambda_context: Any
) -> None:
    gone = PointsEarned(
        customer_id="cus_gone",
        entry_id="led_1",
        points=1,
        cause="signup",
        expires_on=date(2027, 1, 1),
        earned_at=AT,
        standing=standing(1, 1),
    )
    bodies = [bus_body(gone), bus_body(gone).replace('"customer_id"', '"someone"')]
    answer = HANDLER(sqs_batch(bodies), lambda_context, LoyaltyTraits(service))
    assert len(answer["batchItemFailures"]) == 1


def test_the_rule_routes_exactly_the_loyalty_events() -> None:
    from infra.engines.customers import LOYALTY_TRAIT_EVENTS

    assert set(LOYALTY_TRAIT_EVENTS) == set(LOYALTY_EVENTS)
