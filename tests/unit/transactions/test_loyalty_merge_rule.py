"""The pure rule of a loyalty merge (`ledger.absorb`): nothing is created or lost, each point keeps its expiry day,
and the ledger's invariant `balance == sum(lots) - consumed` holds for the sum as it held for the parts."""

from __future__ import annotations

from datetime import date, timedelta

from ecrm.transactions import ledger
from ecrm.transactions.ledger import Account
from ecrm.transactions.models import LoyaltyRulesIn, Tier
from hypothesis import given
from hypothesis import strategies as st

RULES = LoyaltyRulesIn(tiers=[Tier(name="member", threshold=0), Tier(name="gold", threshold=500)])
DAYS = [(date(2027, 1, 1) + timedelta(days=30 * n)).isoformat() for n in range(6)]


@st.composite
def accounts(draw: st.DrawFn, customer_id: str) -> Account:
    """An account as the ledger leaves it: lots earned, some of it spent (never more than earned)."""
    lots = draw(st.dictionaries(st.sampled_from(DAYS), st.integers(1, 400), max_size=4))
    consumed = draw(st.integers(0, sum(lots.values())))
    earned = sum(lots.values())
    qualifying = earned + draw(st.integers(0, 100))
    return Account(
        customer_id,
        balance=earned - consumed,
        consumed=consumed,
        qualifying=qualifying,
        tier=ledger.tier_for(RULES, qualifying),
        lots=lots,
        version=draw(st.integers(1, 9)),
    )


@given(accounts("cus_a"), accounts("cus_b"))
def test_a_merge_keeps_every_point_on_its_day_and_the_ledgers_invariant(survivor: Account, merged: Account) -> None:
    absorbed, emptied = ledger.absorb(survivor, merged, RULES)
    assert absorbed.balance == survivor.balance + merged.balance
    assert absorbed.balance == sum(absorbed.lots.values()) - absorbed.consumed
    for day in DAYS:
        assert absorbed.lots.get(day, 0) == survivor.lots.get(day, 0) + merged.lots.get(day, 0)
    assert absorbed.tier == ledger.tier_for(RULES, survivor.qualifying + merged.qualifying)
    assert (absorbed.version, emptied.version) == (survivor.version + 1, merged.version + 1)
    assert (emptied.balance, emptied.lots, emptied.consumed, emptied.merged_into) == (0, {}, 0, "cus_a")
