"""What the loyalty events carry of the account (its standing: the customer store's loyalty traits), and the
birthday bonus given once per customer and year."""

from __future__ import annotations

from typing import Any

from ecrm.transactions.models import LoyaltyRulesIn, PointsEarned, PointsRedeemed, TierChanged

from tests.integration.transactions.conftest import CUSTOMER, Engine
from tests.integration.transactions.test_loyalty import place_and_earn, set_rules


def test_every_loyalty_event_carries_the_account_as_the_change_left_it(engine: Engine) -> None:
    # Given an order that earns 216 points and reaches silver
    set_rules(engine)
    place_and_earn(engine)
    engine.relay()
    earned = next(e for e in engine.events if isinstance(e, PointsEarned))
    tier = next(e for e in engine.events if isinstance(e, TierChanged))
    assert earned.standing is not None
    assert earned.standing == tier.standing
    assert (earned.standing.balance, earned.standing.tier, earned.standing.account_version) == (216, "silver", 1)
    # When 16 points are redeemed
    status, _ = engine.call("POST", "/me/loyalty/redeem", body={"points": 16}, groups=None, customer=CUSTOMER)
    assert status == 201
    engine.relay()
    # Then the redemption's event carries the balance after it, one version later
    redeemed = next(e for e in engine.events if isinstance(e, PointsRedeemed))
    assert redeemed.standing is not None
    assert (redeemed.standing.balance, redeemed.standing.account_version) == (200, 2)


def test_the_birthday_bonus_is_given_once_a_year(engine: Engine) -> None:
    engine.loyalty.set_rules(LoyaltyRulesIn(birthday_bonus=50), actor="test")
    # When the bonus is given twice for 2026 and once for 2027
    given = [engine.loyalty.grant_birthday_bonus(CUSTOMER, year) for year in (2026, 2026, 2027)]
    # Then it was given once for each year, each traceable to its year
    assert given == [50, 0, 50]
    account: Any = engine.loyalty.account(CUSTOMER)
    assert [(line.kind, line.points, line.cause) for line in account.statement] == [
        ("bonus", 50, "birthday:2026"),
        ("bonus", 50, "birthday:2027"),
    ]
    assert account.balance == 100
