"""The synthetic generator: reproducible, the requested size, and the structure it promises is there."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from ecrm.analysis.transactions import to_day
from ecrm_ops.analysis.synthetic import CATEGORIES, GROUPS, SyntheticData, synthetic_transactions

CUSTOMERS = 20_000


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return synthetic_transactions(CUSTOMERS, seed=11)


def test_same_seed_same_data_other_seed_other_data() -> None:
    # Given two draws with one seed and one with another
    first, again, other = (synthetic_transactions(500, seed=s) for s in (3, 3, 4))

    # Then the same seed reproduces every column and the truth, another seed does not
    for name in ("customer_index", "day", "amount", "category_index"):
        assert np.array_equal(getattr(first.transactions, name), getattr(again.transactions, name))
    assert np.array_equal(first.group, again.group)
    assert np.array_equal(first.churned, again.churned)
    assert not np.array_equal(first.transactions.amount[:100], other.transactions.amount[:100])


def test_size_and_shape(data: SyntheticData) -> None:
    tx = data.transactions

    assert len(tx.customers) == CUSTOMERS
    assert len(np.unique(tx.customers)) == CUSTOMERS
    assert list(tx.customers) == sorted(tx.customers)  # the order Transactions keeps its ids in
    assert tx.categories is not None
    assert tx.category_index is not None
    assert list(tx.categories) == sorted(CATEGORIES)
    assert abs(len(tx) / CUSTOMERS - 10.0) < 1.0  # about mean_orders per customer
    assert np.all(np.diff(tx.day) >= 0)  # time order, as an export would be
    assert np.all(tx.amount >= 1.0)
    assert np.allclose(tx.amount, np.round(tx.amount, 2))
    assert tx.day.max() <= data.cutoff_day + data.days_after_cutoff
    assert data.cutoff_day == to_day(date(2025, 12, 31))
    assert len(data.group) == len(data.churned) == len(data.churn_probability) == CUSTOMERS


def test_every_customer_buys_before_the_cutoff(data: SyntheticData) -> None:
    tx = data.transactions
    before = np.bincount(tx.customer_index[tx.day <= data.cutoff_day], minlength=CUSTOMERS)

    assert np.all(before >= 1)


def test_churned_customers_never_buy_after_the_cutoff(data: SyntheticData) -> None:
    tx = data.transactions
    after = np.bincount(tx.customer_index[tx.day > data.cutoff_day], minlength=CUSTOMERS)

    assert np.all(after[data.churned] == 0)
    assert np.mean(after[~data.churned] > 0) > 0.5
    assert 0.2 < data.churned.mean() < 0.5


def test_groups_differ_as_planted(data: SyntheticData) -> None:
    tx = data.transactions
    orders = np.bincount(tx.customer_index, minlength=CUSTOMERS)
    spend = np.bincount(tx.customer_index, weights=tx.amount, minlength=CUSTOMERS)
    basket = spend / orders
    assert tx.category_index is not None
    by_category = np.bincount(
        tx.customer_index * len(CATEGORIES) + tx.category_index, minlength=CUSTOMERS * len(CATEGORIES)
    ).reshape(CUSTOMERS, len(CATEGORIES))
    favourite_share = by_category.max(axis=1) / orders
    group = {g.name: data.group == position for position, g in enumerate(GROUPS)}

    shares = np.bincount(data.group, minlength=len(GROUPS)) / CUSTOMERS
    assert np.allclose(shares, [g.share for g in GROUPS], atol=0.02)
    frequent, bargain = group["frequent high spenders"], group["bargain hunters"]
    occasional, specialists = group["occasional buyers"], group["category specialists"]
    assert np.median(orders[frequent]) > 2 * np.median(orders[bargain]) > 4 * np.median(orders[occasional])
    assert np.median(basket[frequent]) > 5 * np.median(basket[bargain])
    assert np.median(favourite_share[specialists]) > 0.85 > 0.5 > np.median(favourite_share[bargain])


def test_planted_churn_follows_visible_behaviour(data: SyntheticData) -> None:
    # Given what each customer showed before the cutoff
    tx = data.transactions
    before = tx.day <= data.cutoff_day
    last = np.zeros(CUSTOMERS, dtype=np.int64)
    np.maximum.at(last, tx.customer_index[before], tx.day[before])
    recency = data.cutoff_day - last
    spend = np.bincount(tx.customer_index[before], weights=tx.amount[before], minlength=CUSTOMERS)

    # Then the planted churn probability rises with recency and falls with spend, yet is not decided by them
    assert data.churn_probability[recency > np.median(recency)].mean() > data.churn_probability.mean() + 0.1
    assert data.churn_probability[spend > np.median(spend)].mean() < data.churn_probability.mean() - 0.05
    assert np.corrcoef(data.churn_probability, data.churned)[0, 1] > 0.3
    assert np.mean((data.churn_probability > 0.1) & (data.churn_probability < 0.9)) > 0.5  # noisy, not decided


def test_rejects_impossible_sizes() -> None:
    with pytest.raises(ValueError, match="at least 4 customers"):
        synthetic_transactions(2)
    with pytest.raises(ValueError, match="history_days"):
        synthetic_transactions(100, history_days=30)
    with pytest.raises(ValueError, match="mean_orders"):
        synthetic_transactions(100, mean_orders=0.5)
