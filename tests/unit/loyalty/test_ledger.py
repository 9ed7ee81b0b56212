"""The ledger's rules without AWS: earning rules, proportional reversals, FIFO expiry, tiers.

A property test drives random earnings, reversals, redemptions and expiries through the rules and checks
what the store relies on: the balance is never negative and always equals the lots minus what was spent.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from ecrm.transactions import ledger
from ecrm.transactions.ledger import Account
from ecrm.transactions.models import LoyaltyRulesIn, OrderLineIn
from hypothesis import given, settings
from hypothesis import strategies as st

RULES = LoyaltyRulesIn.model_validate(
    {
        "points_per_unit": "1",
        "category_multipliers": {"shoes": "2"},
        "campaigns": [
            {
                "name": "Spring",
                "starts_on": "2026-03-01",
                "ends_on": "2026-03-31",
                "multiplier": "3",
                "categories": ["socks"],
            }
        ],
        "tiers": [{"name": "member", "threshold": 0}, {"name": "silver", "threshold": 500}],
    }
)
SHOES = OrderLineIn(sku="SHOE-1", name="Shoe", category="shoes", quantity=2, unit_price_minor=4999)
SOCKS = OrderLineIn(sku="SOCK-1", name="Socks", category="socks", quantity=3, unit_price_minor=599)


def test_points_per_unit_by_category_and_campaign_floored() -> None:
    outside = ledger.line_points([SHOES, SOCKS], "EUR", RULES, date(2026, 4, 1))
    during = ledger.line_points([SHOES, SOCKS], "EUR", RULES, date(2026, 3, 15))
    assert outside == {"SHOE-1": 199, "SOCK-1": 17}  # 99.98 x 2 = 199.96; 17.97 x 1
    assert during == {"SHOE-1": 199, "SOCK-1": 53}  # the campaign is for socks only: 17.97 x 3


def test_currencies_earn_per_major_unit() -> None:
    line = OrderLineIn(sku="A", name="a", quantity=1, unit_price_minor=1500)
    assert ledger.line_points([line], "JPY", RULES, date(2026, 1, 1)) == {"A": 1500}
    assert ledger.line_points([line], "KWD", RULES, date(2026, 1, 1)) == {"A": 1}


def test_returned_points_add_up_to_the_line_whatever_the_split() -> None:
    parts = [ledger.returned_points(100, 3, before, 1) for before in range(3)]
    assert sum(parts) == 100
    assert parts == [33, 33, 34]


def test_expiry_is_rolling_months_clamped_to_the_month_end() -> None:
    assert ledger.add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert ledger.expiry_day(datetime(2026, 11, 23, 23, 59, tzinfo=UTC), RULES) == date(2027, 11, 23)
    short = RULES.model_copy(update={"expiry_days": 1})
    assert ledger.expiry_day(datetime(2026, 11, 23, 23, 59, tzinfo=UTC), short) == date(2026, 11, 24)


def test_spending_takes_the_oldest_points_first() -> None:
    # Given 100 points due in January and 50 due in June, of which 120 were spent
    account = ledger.earn(Account("c"), 100, date(2027, 1, 1), RULES)
    account = ledger.earn(account, 50, date(2027, 6, 1), RULES)
    account = Account(**{**account.__dict__, "balance": 30, "consumed": 120})
    # When January comes / Then nothing expires (spent) and the June lot carries the remaining 20 spent
    after_january, gone = ledger.expire(account, date(2027, 1, 1))
    assert (gone, after_january.balance, after_january.consumed) == (0, 30, 20)
    after_june, gone = ledger.expire(after_january, date(2027, 6, 1))
    assert (gone, after_june.balance, after_june.lots) == (30, 0, {})


def test_tiers_follow_qualifying_points_up_and_down() -> None:
    account = ledger.earn(Account("c", tier="member"), 600, date(2027, 1, 1), RULES)
    assert account.tier == "silver"
    reversed_, taken = ledger.reverse(account, 200, date(2027, 1, 1), RULES)
    assert (taken, reversed_.tier, reversed_.balance) == (200, "member", 400)


def test_a_reversal_never_takes_the_balance_below_zero() -> None:
    account = ledger.earn(Account("c"), 100, date(2027, 1, 1), RULES)
    spent = Account(**{**account.__dict__, "balance": 10, "consumed": 90})
    after, taken = ledger.reverse(spent, 100, date(2027, 1, 1), RULES)
    assert (taken, after.balance) == (10, 0)


operation = st.one_of(
    st.tuples(st.just("earn"), st.integers(0, 500), st.integers(0, 400)),
    st.tuples(st.just("reverse"), st.integers(0, 500), st.integers(0, 400)),
    st.tuples(st.just("redeem"), st.integers(1, 500), st.just(0)),
    st.tuples(st.just("expire"), st.just(0), st.integers(0, 400)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(operation, max_size=40))
def test_the_balance_is_never_negative_and_always_the_lots_less_what_was_spent(ops: list[tuple[str, int, int]]) -> None:
    start = date(2027, 1, 1)
    account = Account("c", tier="member")
    for kind, points, day in ops:
        on = start + timedelta(days=day)
        if kind == "earn":
            account = ledger.earn(account, points, on, RULES)
        elif kind == "reverse":
            account, _ = ledger.reverse(account, points, on, RULES)
        elif kind == "redeem" and account.balance >= points:  # the store's condition
            account = Account(
                **{**account.__dict__, "balance": account.balance - points, "consumed": account.consumed + points}
            )
        elif kind == "expire":
            account, _ = ledger.expire(account, on)
        assert account.balance >= 0
        assert account.balance == sum(account.lots.values()) - account.consumed
        assert account.consumed >= 0
