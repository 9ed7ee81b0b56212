"""Customer features: checked by hand on a tiny log and against a plain-Python reference on synthetic data."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import numpy as np
import pytest
from ecrm.analysis import features as features_module
from ecrm.analysis.features import (
    BASE_FEATURES,
    FeatureMatrix,
    active_customers,
    customer_features,
    share_categories,
    signed_log1p,
    standardisation,
)
from ecrm.analysis.transactions import Transactions, to_day
from ecrm_ops.analysis.synthetic import synthetic_transactions

AS_OF = to_day(date(2025, 3, 31))


@pytest.fixture
def tiny() -> Transactions:
    return Transactions.from_rows(
        ["a", "a", "a", "a", "a", "b", "c"],
        ["2025-01-01", "2025-01-01", "2025-02-15", "2025-03-21", "2025-04-10", "2024-10-01", "2025-04-05"],
        [10.0, 5.0, 20.0, 30.0, 999.0, 100.0, 7.0],
        ["fashion", "books", "fashion", "home", "toys", "books", "home"],
    )


def test_hand_computed_features(tiny: Transactions) -> None:
    # When features are computed as of 2025-03-31
    matrix = customer_features(tiny, AS_OF)

    # Then only customers seen by then appear (c buys later), and rows after the day are ignored
    assert list(matrix.customer_ids) == ["a", "b"]
    a = dict(zip(matrix.feature_names, matrix.values[0], strict=True))
    b = dict(zip(matrix.feature_names, matrix.values[1], strict=True))
    # a: orders on Jan 1 (two lines: one order), Feb 15, Mar 21; spend 65
    assert a["recency_days"] == 10
    assert a["tenure_days"] == 89
    assert a["orders"] == 3
    assert (a["orders_last_30"], a["orders_last_90"], a["orders_last_365"]) == (1, 3, 3)
    assert a["orders_per_year"] == pytest.approx(3 * 365 / 90)  # tenure floored at 90 days
    assert a["total_spend"] == 65
    assert a["average_order_value"] == pytest.approx(65 / 3)
    assert a["spend_last_90"] == 65
    assert a["mean_days_between_orders"] == pytest.approx((89 - 10) / 2)
    assert a["order_trend"] == 1.0  # 3 orders in the last 90 days, none in the 90 before
    assert a["distinct_categories"] == 3
    assert a["favourite_category_share"] == pytest.approx(30 / 65)
    assert (a["share_books"], a["share_fashion"], a["share_home"]) == pytest.approx((5 / 65, 30 / 65, 30 / 65))
    # b: one order on 2024-10-01, 181 days before
    assert b["recency_days"] == b["tenure_days"] == b["mean_days_between_orders"] == 181
    assert (b["orders"], b["orders_last_90"], b["orders_last_365"], b["order_trend"]) == (1, 0, 1, 0.0)
    assert b["orders_per_year"] == pytest.approx(365 / 181)
    assert b["favourite_category_share"] == 1.0
    assert (b["share_books"], b["share_fashion"], b["share_home"]) == (1.0, 0.0, 0.0)
    # share columns: categories with spend by then, most spend first (toys only sells later)
    assert share_categories(matrix.feature_names) == ["books", "fashion", "home"]


def test_without_categories_only_the_base_features(tiny: Transactions) -> None:
    plain = Transactions(tiny.customers, tiny.customer_index, tiny.day, tiny.amount)

    assert customer_features(plain, AS_OF).feature_names == BASE_FEATURES


def test_share_of_gives_exactly_the_requested_columns(tiny: Transactions) -> None:
    # Given the categories a stored model was trained with, one of which this data never sold
    matrix = customer_features(tiny, AS_OF, share_of=["home", "garden"])

    assert share_categories(matrix.feature_names) == ["home", "garden"]
    assert matrix.column("share_home").tolist() == pytest.approx([30 / 65, 0.0])
    assert matrix.column("share_garden").tolist() == [0.0, 0.0]


def test_sorted_and_dense_category_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given data small enough for the dense (customer x category) table
    tx = synthetic_transactions(2_000, seed=5).transactions
    dense = customer_features(tx, int(tx.day.max()))

    # When the table is forbidden, so distinct categories come from a sort
    monkeypatch.setattr(features_module, "DENSE_CATEGORY_CELLS", 0)
    by_sort = customer_features(tx, int(tx.day.max()))

    assert by_sort.feature_names == dense.feature_names
    assert np.allclose(by_sort.values, dense.values)


def test_matches_a_plain_python_reference() -> None:
    data = synthetic_transactions(600, seed=9)
    tx = data.transactions
    as_of = data.cutoff_day
    matrix = customer_features(tx, as_of)
    assert tx.category_index is not None

    days: dict[int, set[int]] = defaultdict(set)
    spend: dict[int, float] = defaultdict(float)
    categories: dict[int, set[int]] = defaultdict(set)
    for customer, day, amount, category in zip(tx.customer_index, tx.day, tx.amount, tx.category_index, strict=True):
        if day <= as_of:
            days[int(customer)].add(int(day))
            spend[int(customer)] += float(amount)
            categories[int(customer)].add(int(category))

    assert list(matrix.customer_ids) == [tx.customers[c] for c in sorted(days)]
    for row, customer in enumerate(sorted(days)):
        ordered = sorted(days[customer])
        recent = [d for d in ordered if d > as_of - 90]
        previous = [d for d in ordered if as_of - 180 < d <= as_of - 90]
        expected = {
            "recency_days": as_of - ordered[-1],
            "tenure_days": as_of - ordered[0],
            "orders": len(ordered),
            "orders_last_30": sum(d > as_of - 30 for d in ordered),
            "orders_last_90": len(recent),
            "total_spend": spend[customer],
            "average_order_value": spend[customer] / len(ordered),
            "distinct_categories": len(categories[customer]),
            "order_trend": (len(recent) - len(previous)) / max(len(recent) + len(previous), 1),
        }
        for name, value in expected.items():
            assert matrix.column(name)[row] == pytest.approx(value), (customer, name)


def test_active_customers_and_empty_window(tiny: Transactions) -> None:
    assert active_customers(tiny, AS_OF).tolist() == [0, 1]
    with pytest.raises(ValueError, match="no customer"):
        customer_features(tiny, to_day(date(2020, 1, 1)))


def test_feature_matrix_lookups() -> None:
    matrix = FeatureMatrix(np.array(["x", "y"], dtype=object), ("p", "q"), np.array([[1.0, 2.0], [3.0, 4.0]]))

    assert matrix.column("q").tolist() == [2.0, 4.0]
    assert matrix.select(["q", "p"]).tolist() == [[2.0, 1.0], [4.0, 3.0]]
    with pytest.raises(ValueError, match="features missing: r"):
        matrix.select(["p", "r"])
    with pytest.raises(KeyError):
        matrix.column("r")


def test_transform_helpers() -> None:
    assert signed_log1p(np.array([-np.e + 1, 0.0, np.e - 1])).tolist() == pytest.approx([-1.0, 0.0, 1.0])
    means, scales = standardisation(np.array([[1.0, 5.0], [3.0, 5.0]]))
    assert means.tolist() == [2.0, 5.0]
    assert scales.tolist() == [1.0, 1.0]  # the constant column keeps a scale of 1
