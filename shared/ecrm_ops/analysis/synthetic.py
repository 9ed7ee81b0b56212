"""Seeded synthetic customers and orders with planted structure: the ground truth models are checked against.

Customers belong to latent behaviour groups that differ in order rate, basket value and category
mix. Each customer buys as a Poisson process from a first order (uniform over the history) to the
cutoff; some customers fade (their rate drops for a few months before the cutoff). At the cutoff
each customer stops buying for good with a probability that depends only on behaviour visible
before it (long recency, a falling order rate, few categories, low spend) plus noise, so a good
model can find the signal but not perfectly. Those who stay keep buying at their usual rate after
the cutoff. Everything is drawn in whole columns from one `numpy.random.Generator`: a million
customers and ten million orders take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
from ecrm.analysis.transactions import Transactions, to_day

# Sorted, as `Transactions` keeps its unique values.
CATEGORIES = ("beauty", "books", "electronics", "fashion", "home", "shoes", "sports", "toys")


@dataclass(frozen=True)
class BehaviourGroup:
    name: str
    share: float  # of customers
    orders_per_year: float  # mean rate, before scaling to the requested number of orders
    basket_value: float  # median order value
    favourite_share: float  # chance an order is in the customer's favourite category
    category_weights: tuple[float, ...]  # mix over CATEGORIES for the other orders


_BROAD = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
GROUPS = (
    BehaviourGroup("frequent high spenders", 0.12, 24.0, 150.0, 0.2, (1.0, 0.6, 1.6, 1.4, 1.2, 1.0, 1.0, 0.6)),
    BehaviourGroup("bargain hunters", 0.28, 10.0, 18.0, 0.2, (1.4, 0.8, 0.5, 1.6, 1.4, 1.0, 0.8, 1.0)),
    BehaviourGroup("occasional buyers", 0.40, 0.8, 50.0, 0.3, _BROAD),
    BehaviourGroup("category specialists", 0.20, 12.0, 110.0, 0.95, _BROAD),
)

# Fading customers buy at this fraction of their rate over their last months before the cutoff.
FADED_RATE = 0.2
FADING_SHARE = 0.3
# The planted churn model: logit = intercept + weights . (standardised behaviour) + noise.
CHURN_INTERCEPT = -1.1
CHURN_WEIGHTS = {"recency": 1.0, "falling": 0.7, "categories": -0.5, "spend": -0.5}
CHURN_NOISE = 0.8
ORDER_VALUE_SPREAD = 0.45  # sigma of log order value around the customer's typical basket
CUSTOMER_VALUE_SPREAD = 0.25  # sigma of a customer's log basket around the group's
RATE_SHAPE = 8.0  # Gamma shape of a customer's rate around the group's (coefficient of variation 0.35)


@dataclass(frozen=True)
class SyntheticData:
    """The transactions and the truth behind them, indexed like `transactions.customers`."""

    transactions: Transactions
    group: np.ndarray  # int64 index into group_names
    group_names: tuple[str, ...]
    churned: np.ndarray  # bool: stopped buying at the cutoff
    churn_probability: np.ndarray  # the planted probability the flag was drawn with
    cutoff_day: int
    days_after_cutoff: int


def synthetic_transactions(
    customers: int = 10_000,
    *,
    mean_orders: float = 10.0,
    seed: int = 0,
    cutoff: date = date(2025, 12, 31),
    history_days: int = 730,
    days_after_cutoff: int = 90,
) -> SyntheticData:
    """About `customers * mean_orders` orders over `history_days` before the cutoff and `days_after_cutoff` after.

    Rows are in time order, one order per row, each with a category and an amount rounded to the cent.
    """
    if customers < len(GROUPS):
        raise ValueError(f"need at least {len(GROUPS)} customers, one per group")
    if mean_orders < 1:
        raise ValueError("mean_orders must be at least 1: every customer has a first order")
    if history_days < 120 or days_after_cutoff < 1:
        raise ValueError("history_days must be at least 120 and days_after_cutoff at least 1")
    rng = np.random.default_rng(seed)
    cutoff_day = to_day(cutoff)
    shares = np.array([g.share for g in GROUPS])
    group = rng.choice(len(GROUPS), size=customers, p=shares / shares.sum())
    rate = (
        np.array([g.orders_per_year for g in GROUPS])[group] / 365.0 * rng.gamma(RATE_SHAPE, 1 / RATE_SHAPE, customers)
    )
    first_day = cutoff_day - history_days + rng.integers(0, history_days - 90, customers)
    fading = rng.random(customers) < FADING_SHARE
    fade_start = np.where(fading, np.maximum(first_day, cutoff_day - rng.integers(60, 241, customers)), cutoff_day)
    favourite = rng.integers(0, len(CATEGORIES), customers)
    basket = np.array([g.basket_value for g in GROUPS])[group] * rng.lognormal(0.0, CUSTOMER_VALUE_SPREAD, customers)

    # One rate scale for everyone keeps the groups' ratios and lands near the requested order count
    # (the survivors' orders after the cutoff are estimated with the usual survival share).
    expected_repeat = rate * ((fade_start - first_day) + FADED_RATE * (cutoff_day - fade_start))
    expected_repeat += rate * days_after_cutoff * 0.7
    rate *= max(mean_orders - 1.0, 0.0) * customers / expected_repeat.sum()

    segments = (
        (np.arange(customers), first_day, fade_start - first_day, rate),
        (np.flatnonzero(fading), fade_start[fading], cutoff_day - fade_start[fading], rate[fading] * FADED_RATE),
    )
    repeat_customer, repeat_day = _poisson_orders(rng, segments)
    before_customer = np.concatenate([np.arange(customers), repeat_customer])
    before_day = np.concatenate([first_day, repeat_day])
    before_category = _categories(rng, before_customer, group, favourite)

    churn_probability = _planted_churn_probability(
        rng, before_customer, before_day, before_category, basket, cutoff_day, customers
    )
    churned = rng.random(customers) < churn_probability
    stays = np.flatnonzero(~churned)
    after_customer, after_day = _poisson_orders(
        rng, ((stays, np.full(len(stays), cutoff_day), np.full(len(stays), days_after_cutoff), rate[stays]),)
    )
    after_category = _categories(rng, after_customer, group, favourite)

    customer_index = np.concatenate([before_customer, after_customer])
    day = np.concatenate([before_day, after_day])
    category_index = np.concatenate([before_category, after_category])
    del before_customer, before_day, before_category, after_customer, after_day, after_category
    amount = np.maximum(np.round(basket[customer_index] * rng.lognormal(0.0, ORDER_VALUE_SPREAD, len(day)), 2), 1.0)
    in_time_order = np.argsort(day, kind="stable")
    width = len(str(customers - 1))
    ids = np.empty(customers, dtype=object)
    ids[:] = [f"C{i:0{width}d}" for i in range(customers)]
    categories = np.empty(len(CATEGORIES), dtype=object)
    categories[:] = CATEGORIES
    transactions = Transactions(
        customers=ids,
        customer_index=customer_index[in_time_order],
        day=day[in_time_order],
        amount=amount[in_time_order],
        categories=categories,
        category_index=category_index[in_time_order],
    )
    return SyntheticData(
        transactions=transactions,
        group=group.astype(np.int64),
        group_names=tuple(g.name for g in GROUPS),
        churned=churned,
        churn_probability=churn_probability,
        cutoff_day=cutoff_day,
        days_after_cutoff=days_after_cutoff,
    )


def _poisson_orders(
    rng: np.random.Generator, segments: tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Orders of Poisson processes, each (customers, start day exclusive, length in days, rate per day)."""
    customers, days = [], []
    for customer, start, length, rate in segments:
        counts = rng.poisson(rate * np.maximum(length, 0))
        row_customer = np.repeat(customer, counts)
        offset = np.floor(rng.random(len(row_customer)) * np.repeat(length, counts)).astype(np.int64)
        customers.append(row_customer)
        days.append(np.repeat(start, counts) + 1 + offset)
    return np.concatenate(customers), np.concatenate(days)


def _categories(rng: np.random.Generator, customer: np.ndarray, group: np.ndarray, favourite: np.ndarray) -> np.ndarray:
    """The customer's favourite category with the group's favourite share, otherwise one from the group's mix."""
    row_group = group[customer]
    category = np.empty(len(customer), dtype=np.int64)
    draw = rng.random(len(customer))
    for position, behaviour in enumerate(GROUPS):
        rows = np.flatnonzero(row_group == position)
        weights = np.array(behaviour.category_weights)
        cumulative = np.cumsum(weights / weights.sum())
        category[rows] = np.minimum(np.searchsorted(cumulative, draw[rows], side="right"), len(CATEGORIES) - 1)
    favourite_share = np.array([g.favourite_share for g in GROUPS])[row_group]
    in_favourite = rng.random(len(customer)) < favourite_share
    category[in_favourite] = favourite[customer[in_favourite]]
    return category


def _planted_churn_probability(
    rng: np.random.Generator,
    customer: np.ndarray,
    day: np.ndarray,
    category: np.ndarray,
    basket: np.ndarray,
    cutoff_day: int,
    customers: int,
) -> np.ndarray:
    """The chance to stop at the cutoff, from what the orders before it show (standardised, plus noise)."""
    last = np.zeros(customers, dtype=np.int64)
    np.maximum.at(last, customer, day)
    recent = np.bincount(customer[day > cutoff_day - 90], minlength=customers)
    previous = np.bincount(customer[(day > cutoff_day - 180) & (day <= cutoff_day - 90)], minlength=customers)
    with np.errstate(invalid="ignore", divide="ignore"):
        falling = np.where(recent + previous > 0, (previous - recent) / (recent + previous), 0.0)
    pairs = np.bincount(customer * len(CATEGORIES) + category, minlength=customers * len(CATEGORIES))
    distinct = (pairs.reshape(customers, len(CATEGORIES)) > 0).sum(axis=1)
    orders = np.bincount(customer, minlength=customers)
    behaviour = {
        "recency": np.log1p(cutoff_day - last),
        "falling": falling,
        "categories": distinct.astype(np.float64),
        "spend": np.log(basket * orders),
    }
    logit = np.full(customers, CHURN_INTERCEPT) + rng.normal(0.0, CHURN_NOISE, customers)
    for name, weight in CHURN_WEIGHTS.items():
        values = behaviour[name]
        logit += weight * (values - values.mean()) / (values.std() or 1.0)
    return 1.0 / (1.0 + np.exp(-logit))
