"""The loyalty events journeys start on, on moto through the outbox: a warning some weeks before points
expire (once per account and expiry day, only for points still unspent) and the customer's birthday in
their own zone (once a year, with or without a bonus)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ecrm.core.clock import FixedClock
from ecrm.transactions.loyalty_service import EXPIRING_WINDOW, LoyaltyService
from ecrm.transactions.models import BirthdayReached, LoyaltyRulesIn, PointsExpiring, RedemptionIn

from functions.transactions import job_birthday_points, job_expire_points
from tests.integration.transactions.conftest import CUSTOMER, NOW, Engine, order_body

EXPIRY_JOB: Any = job_expire_points.handler
BIRTHDAY_JOB: Any = job_birthday_points.handler


class UtcZones:
    def zones(self, customer_ids: Any) -> dict[str, str | None]:
        return dict.fromkeys(customer_ids, "UTC")


def published(engine: Engine, detail_type: str) -> list[dict[str, Any]]:
    """The data of the events of that type the relay put on the bus (what the journey queue receives)."""
    return [json.loads(e["Detail"])["data"] for e in engine.published if e["DetailType"] == detail_type]


def test_unspent_points_are_warned_of_once_ahead_of_their_expiry(
    engine: Engine, loyalty: LoyaltyService, clock: FixedClock, lambda_context: Any
) -> None:
    # Given 116 points earned now (expiring in a year), 100 of them spent
    engine.call("POST", "/loyalty/rules", body={"points_per_unit": "1", "minimum_redemption": 10}, groups="admin")
    engine.call("POST", "/orders", body=order_body(), headers={"Idempotency-Key": "k1"})
    engine.relay()
    engine.deliver_order_events()
    loyalty.redeem(CUSTOMER, RedemptionIn(points=100), idempotency_key=None, correlation_id="c")
    expires_on = loyalty.account(CUSTOMER).statement[0].at.date() + timedelta(days=365)

    # When the daily job runs the day before the window opens: no warning
    clock.at = datetime.combine(expires_on - EXPIRING_WINDOW - timedelta(days=1), NOW.timetz())
    EXPIRY_JOB({}, lambda_context, loyalty)
    engine.relay()
    assert published(engine, "PointsExpiring") == []

    # When it runs on the window's first day and on the next days
    for _ in range(3):
        clock.advance(days=1)
        EXPIRY_JOB({}, lambda_context, loyalty)
    engine.relay()

    # Then the customer is warned once, of the 16 points still unspent, with their expiry day
    warnings = [e for e in engine.events if isinstance(e, PointsExpiring)]
    assert [(w.customer_id, w.points, w.expires_on) for w in warnings] == [(CUSTOMER, 16, expires_on)]
    assert published(engine, "PointsExpiring")[0]["expires_on"] == expires_on.isoformat()
    assert loyalty.account(CUSTOMER).balance == 16  # a warning takes nothing


def test_the_birthday_is_published_once_a_year_even_without_a_bonus(
    engine: Engine, loyalty: LoyaltyService, clock: FixedClock, lambda_context: Any
) -> None:
    # Given a customer born on 5 March and rules with no birthday bonus
    loyalty.set_rules(LoyaltyRulesIn(), actor="test")
    assert loyalty.note_birth_date(CUSTOMER, date(1990, 3, 5), 1)
    # When the hourly job runs on their birthday, twice, and the next year
    clock.at = datetime(2027, 3, 5, 9, 0, tzinfo=UTC)
    assert BIRTHDAY_JOB({}, lambda_context, loyalty, UtcZones()) == {"birthday_points": 0}
    clock.advance(hours=1)
    BIRTHDAY_JOB({}, lambda_context, loyalty, UtcZones())
    clock.at = datetime(2028, 3, 5, 9, 0, tzinfo=UTC)
    BIRTHDAY_JOB({}, lambda_context, loyalty, UtcZones())
    engine.relay()
    # Then BirthdayReached was published once per year, with no points and no statement line
    reached = [e for e in engine.events if isinstance(e, BirthdayReached)]
    assert [(e.customer_id, e.local_date, e.points) for e in reached] == [
        (CUSTOMER, date(2027, 3, 5), 0),
        (CUSTOMER, date(2028, 3, 5), 0),
    ]
    assert [d["customer_id"] for d in published(engine, "BirthdayReached")] == [CUSTOMER, CUSTOMER]
    assert loyalty.account(CUSTOMER).statement == []
