"""RFM: recency, frequency and monetary scores from 1 to 5, and the named segments of the R x F map.

Scores are quintiles of rank: a customer's score is 1 + floor(5 * share of customers strictly
worse), so equal values always get equal scores (no arbitrary tie-break by row order or id), the
worst value always scores 1, and a skewed distribution (most customers bought once) puts its big
tied block in one score instead of splitting it at random. Scores can therefore skip a level when
one value holds more than a fifth of the customers.

- R: days from the last purchase to `as_of`; fewer is better.
- F: purchases, counting each customer's purchase days (several lines on one day are one purchase,
  as in the lifetime models).
- M: total spend, or the mean spend per purchase day.

Segments come from the R and F scores on the widely used grid, with its worst corner (R 1, F 1)
named "lost":

    R \\ F   1               2                    3                    4                  5
    5       new customers   potential loyalists  potential loyalists  champions          champions
    4       promising       potential loyalists  potential loyalists  loyal customers    loyal customers
    3       about to sleep  about to sleep       need attention       loyal customers    loyal customers
    2       hibernating     hibernating          at risk              at risk            cannot lose them
    1       lost            hibernating          at risk              at risk            cannot lose them
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np

from ecrm.analysis.transactions import Transactions, from_day, to_day

SCORE_LEVELS = 5
SEGMENTS = (
    "champions",
    "loyal customers",
    "potential loyalists",
    "new customers",
    "promising",
    "need attention",
    "about to sleep",
    "at risk",
    "cannot lose them",
    "hibernating",
    "lost",
)
# SEGMENT_GRID[r - 1][f - 1]: rows are R scores 1..5, columns F scores 1..5 (the docstring's map, upside down).
SEGMENT_GRID = (
    ("lost", "hibernating", "at risk", "at risk", "cannot lose them"),
    ("hibernating", "hibernating", "at risk", "at risk", "cannot lose them"),
    ("about to sleep", "about to sleep", "need attention", "loyal customers", "loyal customers"),
    ("promising", "potential loyalists", "potential loyalists", "loyal customers", "loyal customers"),
    ("new customers", "potential loyalists", "potential loyalists", "champions", "champions"),
)
_SEGMENT_CODES = np.array([[SEGMENTS.index(name) for name in row] for row in SEGMENT_GRID], dtype=np.int64)

MonetaryBasis = Literal["total", "mean"]


@dataclass(frozen=True)
class RfmScores:
    """One entry per customer with a purchase on or before `as_of`."""

    customers: np.ndarray
    customer_index: np.ndarray
    recency_days: np.ndarray
    frequency: np.ndarray
    monetary: np.ndarray
    r_score: np.ndarray
    f_score: np.ndarray
    m_score: np.ndarray
    segment_code: np.ndarray
    as_of: date

    def __len__(self) -> int:
        return len(self.customers)

    @property
    def segment(self) -> np.ndarray:
        """Segment names, as an object array."""
        return np.array(SEGMENTS, dtype=object)[self.segment_code]

    def segment_counts(self) -> dict[str, int]:
        """Customers per segment, every segment listed (zeros included) in the order of SEGMENTS."""
        counts = np.bincount(self.segment_code, minlength=len(SEGMENTS))
        return {name: int(count) for name, count in zip(SEGMENTS, counts, strict=True)}


def quintile_scores(values: np.ndarray, *, higher_is_better: bool = True) -> np.ndarray:
    """1 + floor(5 * share of customers with a strictly worse value), as int8 from 1 to 5."""
    values = np.asarray(values)
    if len(values) == 0:
        return np.zeros(0, dtype=np.int8)
    ordered = values if higher_is_better else -values
    _, inverse, counts = np.unique(ordered, return_inverse=True, return_counts=True)
    strictly_worse = np.concatenate(([0], np.cumsum(counts)[:-1]))[inverse.ravel()]
    return (1 + (SCORE_LEVELS * strictly_worse) // len(values)).astype(np.int8)


def segments_from_scores(r_score: np.ndarray, f_score: np.ndarray) -> np.ndarray:
    """Index into SEGMENTS for each (R, F) pair."""
    return _SEGMENT_CODES[np.asarray(r_score, dtype=np.int64) - 1, np.asarray(f_score, dtype=np.int64) - 1]


def rfm(tx: Transactions, *, as_of: date | None = None, monetary: MonetaryBasis = "total") -> RfmScores:
    """Score every customer who bought on or before `as_of` (default: the last transaction day)."""
    if monetary not in ("total", "mean"):
        raise ValueError(f"monetary must be 'total' or 'mean', not {monetary!r}")
    if len(tx) == 0:
        raise ValueError("there are no transactions to score")
    as_of_day = int(tx.day.max()) if as_of is None else to_day(as_of)
    scored = tx.until(as_of_day)
    if len(scored) == 0:
        raise ValueError(f"there are no transactions on or before {from_day(as_of_day).isoformat()}")

    buys = scored.is_purchase
    if not buys.any():
        raise ValueError(f"there are no purchases on or before {from_day(as_of_day).isoformat()} (only refunds)")
    first_day_seen = int(scored.day.min())
    span = as_of_day - first_day_seen + 1
    purchase_days = np.unique(scored.customer_index[buys] * span + (scored.day[buys] - first_day_seen))
    pair_customer = purchase_days // span
    starts = np.flatnonzero(np.diff(pair_customer, prepend=-1))
    ends = np.append(starts[1:], len(purchase_days))
    customer_index = pair_customer[starts]
    last_day = purchase_days[ends - 1] % span + first_day_seen
    frequency = (ends - starts).astype(np.int64)

    spend = np.bincount(scored.customer_index, weights=scored.amount, minlength=len(tx.customers))[customer_index]
    value = spend if monetary == "total" else spend / frequency
    recency_days = (as_of_day - last_day).astype(np.int64)
    r_score = quintile_scores(recency_days, higher_is_better=False)
    f_score = quintile_scores(frequency)
    return RfmScores(
        customers=tx.customers[customer_index],
        customer_index=customer_index,
        recency_days=recency_days,
        frequency=frequency,
        monetary=value,
        r_score=r_score,
        f_score=f_score,
        # Rounded so that equal spends summed in a different order (last-bit differences) tie.
        m_score=quintile_scores(np.round(value, 6)),
        segment_code=segments_from_scores(r_score, f_score),
        as_of=from_day(as_of_day),
    )
