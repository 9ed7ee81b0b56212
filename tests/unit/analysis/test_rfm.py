"""RFM scores and segments: quintiles by rank with ties kept together, and the R x F segment map."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from ecrm.analysis.rfm import SEGMENT_GRID, SEGMENTS, quintile_scores, rfm, segments_from_scores
from ecrm.analysis.transactions import Transactions


def test_distinct_values_fill_the_quintiles_evenly() -> None:
    assert list(quintile_scores(np.arange(10))) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert list(quintile_scores(np.arange(10), higher_is_better=False)) == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]


def test_ties_share_a_score_and_the_worst_value_scores_one() -> None:
    # Given a skewed count: six customers bought once, then 2, 2, 3, 9
    scores = quintile_scores(np.array([1, 1, 1, 1, 1, 1, 2, 2, 3, 9]))
    # Then the tied block is one score, the next value starts where its rank falls (6 of 10 below: 4)
    assert list(scores) == [1, 1, 1, 1, 1, 1, 4, 4, 5, 5]


def test_scores_do_not_depend_on_row_order() -> None:
    rng = np.random.default_rng(2)
    values = rng.integers(0, 20, 1000)
    order = rng.permutation(1000)
    assert np.array_equal(quintile_scores(values)[order], quintile_scores(values[order]))


def test_no_customers_gives_no_scores() -> None:
    assert len(quintile_scores(np.array([]))) == 0


@pytest.mark.parametrize(
    ("r", "f", "segment"),
    [
        (5, 5, "champions"),
        (5, 4, "champions"),
        (4, 5, "loyal customers"),
        (3, 4, "loyal customers"),
        (5, 2, "potential loyalists"),
        (4, 3, "potential loyalists"),
        (5, 1, "new customers"),
        (4, 1, "promising"),
        (3, 3, "need attention"),
        (3, 1, "about to sleep"),
        (3, 2, "about to sleep"),
        (2, 3, "at risk"),
        (1, 4, "at risk"),
        (1, 5, "cannot lose them"),
        (2, 5, "cannot lose them"),
        (2, 2, "hibernating"),
        (1, 2, "hibernating"),
        (2, 1, "hibernating"),
        (1, 1, "lost"),
    ],
)
def test_segment_map(r: int, f: int, segment: str) -> None:
    assert SEGMENTS[int(segments_from_scores(np.array([r]), np.array([f]))[0])] == segment


def test_every_segment_is_on_the_map() -> None:
    assert {name for row in SEGMENT_GRID for name in row} == set(SEGMENTS)


def shop() -> Transactions:
    """Five customers up to 2024-03-31 and one row after it."""
    rows = [
        ("a", "2024-03-30", 10.0),
        ("a", "2024-03-30", 5.0),  # same day: one purchase of 15
        ("a", "2024-03-01", 20.0),
        ("a", "2024-02-01", 20.0),
        ("b", "2024-01-05", 100.0),
        ("c", "2024-03-31", 1.0),
        ("d", "2024-02-15", 30.0),
        ("d", "2024-03-10", 30.0),
        ("e", "2023-11-01", 12.0),
        ("f", "2024-04-02", 99.0),
    ]
    return Transactions.from_rows(*zip(*rows, strict=True))


def test_rfm_counts_purchase_days_and_measures_recency_from_as_of() -> None:
    scores = rfm(shop(), as_of=date(2024, 3, 31))
    assert list(scores.customers) == ["a", "b", "c", "d", "e"]
    assert list(scores.recency_days) == [1, 86, 0, 21, 151]
    assert list(scores.frequency) == [3, 1, 1, 2, 1]
    assert list(scores.monetary) == [55.0, 100.0, 1.0, 60.0, 12.0]
    assert list(scores.r_score) == [4, 2, 5, 3, 1]
    assert list(scores.f_score) == [5, 1, 1, 4, 1]
    assert list(scores.m_score) == [3, 5, 1, 4, 2]
    assert list(scores.segment) == ["loyal customers", "hibernating", "new customers", "loyal customers", "lost"]
    assert scores.as_of == date(2024, 3, 31)


def test_rfm_mean_monetary_is_spend_per_purchase_day() -> None:
    scores = rfm(shop(), as_of=date(2024, 3, 31), monetary="mean")
    assert list(scores.monetary) == pytest.approx([55 / 3, 100, 1, 30, 12])


def test_rfm_defaults_to_the_last_day_and_counts_every_segment() -> None:
    scores = rfm(shop())
    assert scores.as_of == date(2024, 4, 2)
    assert len(scores) == 6
    counts = scores.segment_counts()
    assert list(counts) == list(SEGMENTS)
    assert sum(counts.values()) == 6


def test_rfm_rejects_an_as_of_before_any_purchase_and_an_unknown_basis() -> None:
    with pytest.raises(ValueError, match="no transactions on or before 2023-01-01"):
        rfm(shop(), as_of=date(2023, 1, 1))
    with pytest.raises(ValueError, match="monetary"):
        rfm(shop(), monetary="median")  # type: ignore[arg-type]


def test_equal_spends_summed_in_a_different_order_tie() -> None:
    # 0.1 + 0.2 + 0.3 and 0.3 + 0.2 + 0.1 differ in the last bit as floats
    tx = Transactions.from_rows(["a"] * 3 + ["b"] * 3, ["2024-01-01"] * 6, [0.1, 0.2, 0.3, 0.3, 0.2, 0.1])
    scores = rfm(tx)
    assert scores.m_score[0] == scores.m_score[1]
