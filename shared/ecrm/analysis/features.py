"""Per-customer behaviour features: the one table that clustering and churn models learn from.

Every feature is computed from the rows on or before `as_of_day`, for the customers with at
least one such row, in the order of `Transactions.customers` (so a caller can line features up
with anything else indexed by customer). An order is a distinct purchase day of a customer:
transaction logs are often one row per line item, and counting rows would call a ten-line basket
ten orders. Spend sums rows. Everything is whole-column numpy (bincount, ufunc.at, one sort), so
ten million rows take seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ecrm.analysis.transactions import Transactions

RECENT_WINDOWS = (30, 90, 365)
TREND_DAYS = 90
# A customer seen for a few days would otherwise look like they buy every week.
MIN_TENURE_FOR_RATE = 90
TOP_CATEGORIES = 8
SHARE_PREFIX = "share_"
# Above this many (customer, category) cells, distinct categories come from a sort instead of a dense table.
DENSE_CATEGORY_CELLS = 32_000_000

BASE_FEATURES = (
    "recency_days",
    "tenure_days",
    "orders",
    "orders_last_30",
    "orders_last_90",
    "orders_last_365",
    "orders_per_year",
    "total_spend",
    "average_order_value",
    "spend_last_90",
    "mean_days_between_orders",
    "order_trend",
)
CATEGORY_FEATURES = ("distinct_categories", "favourite_category_share")


@dataclass(frozen=True)
class FeatureMatrix:
    """One row per customer, one float64 column per named feature."""

    customer_ids: np.ndarray
    feature_names: tuple[str, ...]
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.customer_ids)

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self._position(name)]

    def select(self, names: Sequence[str]) -> np.ndarray:
        """The columns `names`, in that order: what a stored model reads, whatever order features came in."""
        missing = [name for name in names if name not in self.feature_names]
        if missing:
            raise ValueError(f"features missing: {', '.join(missing)} (have: {', '.join(self.feature_names)})")
        return self.values[:, [self._position(name) for name in names]]

    def _position(self, name: str) -> int:
        try:
            return self.feature_names.index(name)
        except ValueError:
            raise KeyError(f"no feature {name!r}") from None


def share_feature_name(category: str) -> str:
    return f"{SHARE_PREFIX}{category}"


def share_categories(feature_names: Sequence[str]) -> list[str]:
    """The categories whose spend shares a feature list holds: what to compute for a stored model."""
    return [name[len(SHARE_PREFIX) :] for name in feature_names if name.startswith(SHARE_PREFIX)]


def active_customers(tx: Transactions, as_of_day: int) -> np.ndarray:
    """Indices into `tx.customers` of the customers with a purchase on or before `as_of_day`: the feature rows."""
    lines = np.bincount(tx.customer_index[(tx.day <= as_of_day) & tx.is_purchase], minlength=len(tx.customers))
    return np.flatnonzero(lines)


def customer_features(
    tx: Transactions,
    as_of_day: int,
    *,
    top_categories: int = TOP_CATEGORIES,
    share_of: Sequence[str] | None = None,
) -> FeatureMatrix:
    """Behaviour up to `as_of_day` per customer.

    recency_days / tenure_days: days from the last / first order to `as_of_day`. orders_last_N:
    orders in the N days ending on `as_of_day`. orders_per_year: orders per year of tenure (tenure
    floored at 90 days). mean_days_between_orders: (last - first) / (orders - 1), or for a
    one-order customer the days since that order (a lower bound of the gap). order_trend: orders in
    the last 90 days against the 90 before, (a - b) / (a + b) in [-1, 1], 0 when both are 0.
    With categories: distinct_categories, favourite_category_share (the largest share of spend in
    one category) and `share_<category>` of spend for the `top_categories` categories with the most
    spend (or exactly the categories `share_of`, which is how a stored model gets its columns back).
    """
    keep = tx.day <= as_of_day
    active = active_customers(tx, as_of_day)
    if len(active) == 0:
        raise ValueError("no customer has a transaction on or before the as-of day")
    compact = np.full(len(tx.customers), -1, dtype=np.int64)
    compact[active] = np.arange(len(active), dtype=np.int64)
    keep &= compact[tx.customer_index] >= 0  # a customer with refunds only has no features
    customer = compact[tx.customer_index[keep]]
    buys = tx.is_purchase[keep]
    day = tx.day[keep]
    amount = tx.amount[keep]
    n = len(active)

    order_customer, order_day = _distinct_order_days(customer[buys], day[buys], as_of_day)
    orders = np.bincount(order_customer, minlength=n).astype(np.float64)
    first = np.full(n, as_of_day, dtype=np.int64)
    np.minimum.at(first, order_customer, order_day)
    last = np.zeros(n, dtype=np.int64)
    np.maximum.at(last, order_customer, order_day)
    recency = (as_of_day - last).astype(np.float64)
    tenure = (as_of_day - first).astype(np.float64)

    def orders_since(days_back: int, until_days_back: int = 0) -> np.ndarray:
        window = (order_day > as_of_day - days_back) & (order_day <= as_of_day - until_days_back)
        return np.bincount(order_customer[window], minlength=n).astype(np.float64)

    recent = {days: orders_since(days) for days in RECENT_WINDOWS}
    last_trend, previous_trend = orders_since(TREND_DAYS), orders_since(2 * TREND_DAYS, TREND_DAYS)
    total_spend = np.bincount(customer, weights=amount, minlength=n)
    recent_rows = day > as_of_day - 90
    spend_last_90 = np.bincount(customer[recent_rows], weights=amount[recent_rows], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_gap = np.where(orders > 1, (last - first) / (orders - 1), tenure)
        trend_total = last_trend + previous_trend
        trend = np.where(trend_total > 0, (last_trend - previous_trend) / trend_total, 0.0)
    columns: dict[str, np.ndarray] = {
        "recency_days": recency,
        "tenure_days": tenure,
        "orders": orders,
        "orders_last_30": recent[30],
        "orders_last_90": recent[90],
        "orders_last_365": recent[365],
        "orders_per_year": orders * 365.0 / np.maximum(tenure, MIN_TENURE_FOR_RATE),
        "total_spend": total_spend,
        "average_order_value": total_spend / orders,
        "spend_last_90": spend_last_90,
        "mean_days_between_orders": mean_gap,
        "order_trend": trend,
    }
    if tx.categories is not None and tx.category_index is not None:
        columns.update(
            _category_columns(
                customer, tx.category_index[keep], amount, total_spend, tx.categories, top_categories, share_of
            )
        )
    names = tuple(columns)
    values = np.empty((n, len(names)), dtype=np.float64)
    for position, name in enumerate(names):
        values[:, position] = columns[name]
    return FeatureMatrix(tx.customers[active], names, values)


def _distinct_order_days(customer: np.ndarray, day: np.ndarray, as_of_day: int) -> tuple[np.ndarray, np.ndarray]:
    """(customer, day) of each distinct purchase day, from one sort of a combined key."""
    first_day = int(day.min())
    span = as_of_day - first_day + 1
    key = np.sort(customer * span + (day - first_day))
    distinct = np.empty(len(key), dtype=bool)
    distinct[:1] = True
    np.not_equal(key[1:], key[:-1], out=distinct[1:])
    key = key[distinct]
    return key // span, key % span + first_day


def _category_columns(
    customer: np.ndarray,
    category: np.ndarray,
    amount: np.ndarray,
    total_spend: np.ndarray,
    category_names: np.ndarray,
    top_categories: int,
    share_of: Sequence[str] | None,
) -> dict[str, np.ndarray]:
    n, n_categories = len(total_spend), len(category_names)
    distinct, favourite_spend = _distinct_and_favourite(customer, category, amount, n, n_categories)
    if share_of is None:
        spend_by_category = np.bincount(category, weights=amount, minlength=n_categories)
        chosen = np.argsort(-spend_by_category, kind="stable")[:top_categories]
        chosen = chosen[spend_by_category[chosen] > 0]
    else:
        position_of = {str(name): position for position, name in enumerate(category_names)}
        chosen = np.array([position_of.get(name, -1) for name in share_of], dtype=np.int64)
    # Categories not chosen (or not in this data: -1) fold into one last column that is never read.
    slot = np.full(n_categories, len(chosen), dtype=np.int64)
    present = chosen >= 0
    slot[chosen[present]] = np.flatnonzero(present)
    width = len(chosen) + 1
    shares = np.bincount(customer * width + slot[category], weights=amount, minlength=n * width).reshape(n, width)
    positive = total_spend > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(positive[:, None], shares / total_spend[:, None], 0.0)
        favourite = np.where(positive, favourite_spend / total_spend, 0.0)
    names = [str(category_names[c]) for c in chosen[present]] if share_of is None else list(share_of)
    columns = {"distinct_categories": distinct, "favourite_category_share": np.clip(favourite, 0.0, 1.0)}
    for position, name in enumerate(names):
        columns[share_feature_name(name)] = shares[:, position]
    return columns


def _distinct_and_favourite(
    customer: np.ndarray, category: np.ndarray, amount: np.ndarray, n: int, n_categories: int
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct categories bought and the spend in the customer's largest category."""
    key = customer * n_categories + category
    if n * n_categories <= DENSE_CATEGORY_CELLS:
        lines = np.bincount(key, minlength=n * n_categories).reshape(n, n_categories)
        spend = np.bincount(key, weights=amount, minlength=n * n_categories).reshape(n, n_categories)
        spend[lines == 0] = -np.inf
        return (lines > 0).sum(axis=1).astype(np.float64), spend.max(axis=1)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    starts = np.flatnonzero(np.diff(sorted_key, prepend=-1))
    pair_spend = np.add.reduceat(amount[order], starts)
    pair_customer = sorted_key[starts] // n_categories
    distinct = np.bincount(pair_customer, minlength=n).astype(np.float64)
    favourite = np.full(n, -np.inf)
    np.maximum.at(favourite, pair_customer, pair_spend)
    return distinct, favourite


def signed_log1p(values: np.ndarray) -> np.ndarray:
    """sign(x) * log(1 + |x|): tames the long tails of counts and spend (and keeps refunds' sign)."""
    return np.sign(values) * np.log1p(np.abs(values))


def standardisation(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(column means, column standard deviations), a constant column's deviation taken as 1 so it stays 0."""
    means = values.mean(axis=0)
    scales = values.std(axis=0)
    return means, np.where(scales > 0, scales, 1.0)
