"""Lifetime-value fitting at scale: summarize + BG/NBD fit + Gamma-Gamma fit for a million customers.

Workload (numpy, seeded, built before anything is timed): ECRM_BENCH_CLV_CUSTOMERS customers
(default 1,000,000) drawn from the BG/NBD and Gamma-Gamma processes with the CDNOW parameters
(r=0.243, alpha=4.414 weeks, a=0.793, b=2.426; p=6.25, q=3.74, v=15.44), first purchases spread
over 12 weeks, observed for 104 weeks. Each purchase day is split into 1 + Poisson(2) lines whose
amounts sum to the day's Gamma(p, nu) value, so a million customers give roughly ten million rows
and `summarize` has real same-day aggregation to do.

Measured, one thread, each 3 times:
- `summarize` (the (customer, day) sort and per-customer reduction), `fit_bgnbd`, `fit_gamma_gamma`,
  and the three in a row.
- Reference: `np.unique` of the same (customer, day) int64 keys with `return_inverse`, the one sort
  every exact per-customer-day aggregation has to pay: the floor `summarize` is compared with. A
  second reference line is one evaluation of the BG/NBD log-likelihood over all customers, the unit
  of work the optimiser repeats, so the fit's figure reads as "about N likelihood evaluations".

Nothing here asserts on time. The fits are checked against the generating parameters within 10%,
because a fast fit to the wrong answer is no result. The tolerance is not only sampling error:
purchases are recorded as whole days, and the same-day merge the models require joins about 1.5% of
the simulated repeat purchases, mostly those of the fastest buyers; with the seeded data this moves
alpha about 5% above 4.414 (a simulation in continuous time, with no merge, recovers it within 1%).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from ecrm.analysis.lifetime import (
    BgNbdParameters,
    bgnbd_log_likelihood,
    fit_bgnbd,
    fit_gamma_gamma,
    summarize,
)
from ecrm.analysis.transactions import Transactions, to_day

from tests.bench.harness import measure, report

CUSTOMERS = int(os.environ.get("ECRM_BENCH_CLV_CUSTOMERS", "1000000"))
REPEAT = 3
BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "v": 15.44}
BIRTH_WEEKS = 12
OBSERVED_WEEKS = 104
START = date(2024, 1, 1)


@dataclass(frozen=True)
class Workload:
    transactions: Transactions
    calibration_end: date


def simulate(customers: int, seed: int = 7) -> Workload:
    """Purchases from the BG/NBD process: after each repeat purchase a customer drops out with
    probability p; until then purchases arrive at Poisson rate lambda. Given N(T) Poisson arrivals in
    (0, T], their times are N sorted uniforms, and the customer makes the first min(N, K) of them,
    K ~ Geometric(p) being the repeat purchase at which they drop out."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(BGNBD["r"], 1 / BGNBD["alpha"], customers)
    dropout = rng.beta(BGNBD["a"], BGNBD["b"], customers)
    birth_day = rng.integers(0, BIRTH_WEEKS * 7, customers)
    horizon = OBSERVED_WEEKS - birth_day / 7
    arrivals = rng.poisson(rate * horizon)
    made = np.minimum(arrivals, rng.geometric(np.clip(dropout, 1e-12, 1)))

    owner = np.repeat(np.arange(customers), arrivals)
    when = rng.random(len(owner)) * horizon[owner]
    order = np.lexsort((when, owner))
    owner, when = owner[order], when[order]
    rank = np.arange(len(owner)) - np.repeat(np.cumsum(arrivals) - arrivals, arrivals)
    keep = rank < made[owner]
    repeat_owner, repeat_week = owner[keep], when[keep]

    purchase_owner = np.concatenate([np.arange(customers), repeat_owner])
    purchase_day = np.concatenate([birth_day, birth_day[repeat_owner] + np.floor(repeat_week * 7).astype(np.int64)])
    spend_rate = rng.gamma(GAMMA_GAMMA["q"], 1 / GAMMA_GAMMA["v"], customers)
    lines = 1 + rng.poisson(2, len(purchase_owner))
    line_owner = np.repeat(purchase_owner, lines)
    line_amount = rng.gamma(GAMMA_GAMMA["p"] / np.repeat(lines, lines), 1 / spend_rate[line_owner])

    ids = np.array([f"C{n:07d}" for n in range(customers)], dtype=object)
    transactions = Transactions(
        customers=ids,
        customer_index=line_owner.astype(np.int64),
        day=to_day(START) + np.repeat(purchase_day, lines).astype(np.int64),
        amount=line_amount,
    )
    return Workload(transactions, date.fromordinal(START.toordinal() + OBSERVED_WEEKS * 7))


def test_clv_fit_scales_to_a_million_customers() -> None:
    # Given a million simulated customers' transaction lines
    workload = simulate(CUSTOMERS)
    tx, end = workload.transactions, workload.calibration_end
    summary = summarize(tx, calibration_end=end, period="W")
    repeaters = int((summary.frequency > 0).sum())
    print(f"\n{len(summary):,} customers, {len(tx):,} transaction lines, {repeaters:,} repeaters")
    keys = tx.customer_index * (int(tx.day.max()) + 1) + tx.day
    generating = BgNbdParameters(**BGNBD)
    fits: dict[str, Any] = {}

    def sort_keys() -> None:
        np.unique(keys, return_inverse=True)

    def one_log_likelihood() -> None:
        bgnbd_log_likelihood(generating, summary.frequency, summary.recency, summary.T)

    def summarize_only() -> None:
        summarize(tx, calibration_end=end, period="W")

    def bgnbd_only() -> None:
        fits["bgnbd"] = fit_bgnbd(summary.frequency, summary.recency, summary.T)

    def gamma_gamma_only() -> None:
        fits["gamma_gamma"] = fit_gamma_gamma(summary.frequency, summary.monetary)

    def everything() -> None:
        s = summarize(tx, calibration_end=end, period="W")
        fit_bgnbd(s.frequency, s.recency, s.T)
        fit_gamma_gamma(s.frequency, s.monetary)

    # When each stage is timed, beside the sort every exact aggregation pays
    reference = measure("np.unique(keys, return_inverse)", sort_keys, repeat=REPEAT)
    rows = [
        measure("one BG/NBD log-likelihood", one_log_likelihood, repeat=REPEAT),
        measure("summarize", summarize_only, repeat=REPEAT),
        measure("fit_bgnbd", bgnbd_only, repeat=REPEAT),
        measure("fit_gamma_gamma", gamma_gamma_only, repeat=REPEAT),
        measure("summarize + both fits", everything, repeat=REPEAT),
    ]
    report(f"CLV fitting, {len(summary):,} customers / {len(tx):,} lines", rows, reference)

    # Then the fits recover the generating parameters
    bgnbd, gamma_gamma = fits["bgnbd"], fits["gamma_gamma"]
    print(f"  fitted {bgnbd}\n  fitted {gamma_gamma}")
    for name, expected in BGNBD.items():
        assert abs(getattr(bgnbd, name) / expected - 1) < 0.1, (name, getattr(bgnbd, name), expected)
    for name, expected in GAMMA_GAMMA.items():
        assert abs(getattr(gamma_gamma, name) / expected - 1) < 0.1, (name, getattr(gamma_gamma, name), expected)
