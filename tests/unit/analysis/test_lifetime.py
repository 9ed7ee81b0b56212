"""Lifetime-value models: the summary by hand, the likelihoods against their textbook form, and the
acceptance check that the CDNOW sample reproduces the published parameters."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest
from ecrm.analysis import lifetime
from ecrm.analysis.lifetime import (
    BgNbdParameters,
    GammaGammaParameters,
    bgnbd_expected_purchases,
    bgnbd_expected_purchases_new_customer,
    bgnbd_log_likelihood,
    bgnbd_probability_alive,
    customer_lifetime_value,
    fit_bgnbd,
    fit_gamma_gamma,
    gamma_gamma_expected_spend,
    gamma_gamma_log_likelihood,
    summarize,
)
from ecrm.analysis.transactions import Transactions, read_transactions_csv
from scipy import optimize, special

CDNOW = Path(__file__).parents[2] / "data" / "cdnow" / "cdnow_sample.csv"
CDNOW_CALIBRATION_END = date(1997, 9, 30)
# Fader, Hardie & Lee (2005), table/text; Fader & Hardie (2013), the Gamma-Gamma note.
PUBLISHED_BGNBD = BgNbdParameters(r=0.243, alpha=4.414, a=0.793, b=2.426, log_likelihood=-9582.4)
PUBLISHED_GAMMA_GAMMA = GammaGammaParameters(p=6.25, q=3.74, v=15.44)


def small_log() -> Transactions:
    """a: first 2024-01-01, repeat days 01-08 (two lines) and 01-15; b: one purchase; c: buys after the end."""
    return Transactions.from_rows(
        ["a", "a", "a", "a", "b", "c", "a"],
        ["2024-01-01", "2024-01-08", "2024-01-08", "2024-01-15", "2024-01-10", "2024-02-01", "2024-01-01"],
        [5.0, 10.0, 20.0, 60.0, 7.0, 1.0, 1.0],
    )


def test_summary_merges_same_day_purchases_and_uses_repeat_days_for_spend() -> None:
    # When summarised in days with calibration ending 2024-01-29
    summary = summarize(small_log(), calibration_end=date(2024, 1, 29), period="D")
    # Then c (first purchase after the end) is excluded, and a's two 01-08 lines are one purchase of 30
    assert list(summary.customers) == ["a", "b"]
    assert list(summary.frequency) == [2, 0]
    assert list(summary.recency) == [14, 0]
    assert list(summary.T) == [28, 19]
    assert list(summary.monetary) == [(30 + 60) / 2, 0]
    assert summary.calibration_end == date(2024, 1, 29)
    assert summary.period == "D"


def test_summary_in_weeks_is_days_over_seven_and_ends_by_default_on_the_last_day() -> None:
    summary = summarize(small_log(), period="W")
    assert summary.calibration_end == date(2024, 2, 1)
    assert list(summary.customers) == ["a", "b", "c"]
    assert summary.recency[0] == pytest.approx(2.0)
    assert pytest.approx([31 / 7, 22 / 7, 0.0]) == summary.T


def test_summary_rejects_an_end_before_any_purchase_and_an_unknown_period() -> None:
    with pytest.raises(ValueError, match="no transactions on or before 2023-12-31"):
        summarize(small_log(), calibration_end=date(2023, 12, 31))
    with pytest.raises(ValueError, match="period"):
        summarize(small_log(), period="M")  # type: ignore[arg-type]


def textbook_bgnbd_likelihood(params: tuple[float, float, float, float], x: float, t_x: float, T: float) -> float:
    """FHL 2005 eq. (6), written out with Beta and Gamma functions, no logs."""
    r, alpha, a, b = params
    gamma_part = special.gamma(r + x) * alpha**r / special.gamma(r)
    first = special.beta(a, b + x) / special.beta(a, b) * gamma_part / (alpha + T) ** (r + x)
    second = special.beta(a + 1, b + x - 1) / special.beta(a, b) * gamma_part / (alpha + t_x) ** (r + x) if x else 0
    return float(first + second)


def test_bgnbd_log_likelihood_equals_the_papers_formula() -> None:
    params = (0.5, 3.0, 0.9, 2.0)
    x, t_x, T = np.array([0.0, 1, 4]), np.array([0.0, 2, 20]), np.array([30.0, 25, 38])
    expected = sum(np.log(textbook_bgnbd_likelihood(params, *row)) for row in zip(x, t_x, T, strict=True))
    assert bgnbd_log_likelihood(params, x, t_x, T) == pytest.approx(expected, rel=1e-12)


def test_gamma_gamma_log_likelihood_equals_the_notes_formula() -> None:
    p, q, v = 3.0, 4.0, 12.0
    x, m = np.array([1.0, 3.0]), np.array([20.0, 35.5])
    density = (
        special.gamma(p * x + q) / (special.gamma(p * x) * special.gamma(q))
        * v**q * m ** (p * x - 1) * x ** (p * x) / (v + m * x) ** (p * x + q)
    )  # fmt: skip
    assert gamma_gamma_log_likelihood((p, q, v), x, m) == pytest.approx(np.log(density).sum(), rel=1e-12)


def test_analytic_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(1)
    x = rng.poisson(2, 500).astype(float)
    T = rng.uniform(20, 40, 500)
    t_x = np.where(x > 0, T * rng.uniform(0, 1, 500), 0)
    by_x = lifetime._by_frequency(x)
    point = np.log([0.4, 5.0, 0.8, 2.5])
    value = lambda p: lifetime._bgnbd_value_and_gradient(p, x, t_x, T, by_x)[0]  # noqa: E731
    gradient = lambda p: lifetime._bgnbd_value_and_gradient(p, x, t_x, T, by_x)[1]  # noqa: E731
    assert optimize.approx_fprime(point, value, 1e-6) == pytest.approx(gradient(point), rel=1e-4, abs=1e-3)

    m = rng.gamma(5, 5, 500)
    keep = x > 0
    point = np.log([6.0, 3.5, 15.0])
    value = lambda p: lifetime._gamma_gamma_value_and_gradient(p, x[keep], m[keep])[0]  # noqa: E731
    gradient = lambda p: lifetime._gamma_gamma_value_and_gradient(p, x[keep], m[keep])[1]  # noqa: E731
    assert optimize.approx_fprime(point, value, 1e-6) == pytest.approx(gradient(point), rel=1e-4, abs=1e-3)


@pytest.fixture(scope="module")
def cdnow() -> lifetime.CustomerSummary:
    tx = read_transactions_csv(CDNOW, customer_col="customer_id", date_col="date", amount_col="amount")
    return summarize(tx, calibration_end=CDNOW_CALIBRATION_END, period="W")


def test_cdnow_summary_has_the_papers_counts(cdnow: lifetime.CustomerSummary) -> None:
    assert len(cdnow) == 2357
    assert int((cdnow.frequency > 0).sum()) == 946
    first = list(cdnow.customers).index("1")  # the paper's worked example: x = 2, t_x = 30.43, T = 38.86
    assert (cdnow.frequency[first], cdnow.recency[first], cdnow.T[first]) == pytest.approx((2, 30.43, 38.86), abs=5e-3)
    assert cdnow.monetary[first] == pytest.approx((29.73 + 14.96) / 2)


def test_cdnow_bgnbd_fit_reproduces_the_published_parameters(cdnow: lifetime.CustomerSummary) -> None:
    fitted = fit_bgnbd(cdnow.frequency, cdnow.recency, cdnow.T)
    for name in ("r", "alpha", "a", "b"):
        assert getattr(fitted, name) == pytest.approx(getattr(PUBLISHED_BGNBD, name), abs=0.01), name
    assert fitted.log_likelihood == pytest.approx(PUBLISHED_BGNBD.log_likelihood, abs=0.05)


def test_cdnow_gamma_gamma_fit_reproduces_the_published_parameters(cdnow: lifetime.CustomerSummary) -> None:
    fitted = fit_gamma_gamma(cdnow.frequency, cdnow.monetary)
    for name in ("p", "q", "v"):
        assert getattr(fitted, name) == pytest.approx(getattr(PUBLISHED_GAMMA_GAMMA, name), abs=0.01), name


def test_conditional_expectation_matches_the_authors_worked_example() -> None:
    # Customer 1 of CDNOW at the published parameters: 1.226 purchases expected in the next 39 weeks
    expected = bgnbd_expected_purchases(PUBLISHED_BGNBD, 39, np.array([2.0]), np.array([30.43]), np.array([38.86]))
    assert expected[0] == pytest.approx(1.226, abs=5e-4)


def test_a_customer_just_acquired_is_alive_and_expects_the_unconditional_curve() -> None:
    zero = np.zeros(3)
    assert bgnbd_probability_alive(PUBLISHED_BGNBD, zero, zero, np.array([0.0, 10, 50])) == pytest.approx(1.0)
    conditional = bgnbd_expected_purchases(PUBLISHED_BGNBD, 39, zero, zero, zero)
    assert conditional == pytest.approx(bgnbd_expected_purchases_new_customer(PUBLISHED_BGNBD, 39.0), rel=1e-10)


def test_probability_alive_falls_with_the_time_since_the_last_purchase() -> None:
    t_x = np.array([38.0, 30.0, 10.0, 1.0])
    alive = bgnbd_probability_alive(PUBLISHED_BGNBD, np.full(4, 3.0), t_x, np.full(4, 38.86))
    assert np.all(np.diff(alive) < 0)
    assert 0 < alive[-1] < alive[0] < 1


def test_unconditional_expectation_matches_a_simulation_of_the_process() -> None:
    # Given 400,000 customers simulated from the BG/NBD story for 52 weeks
    rng = np.random.default_rng(5)
    n, t = 400_000, 52.0
    rate = rng.gamma(PUBLISHED_BGNBD.r, 1 / PUBLISHED_BGNBD.alpha, n)
    dropout = rng.beta(PUBLISHED_BGNBD.a, PUBLISHED_BGNBD.b, n)
    purchases = np.minimum(rng.poisson(rate * t), rng.geometric(dropout))
    # Then the mean count agrees with eq. (9) within the simulation's error
    expected = float(bgnbd_expected_purchases_new_customer(PUBLISHED_BGNBD, t))
    assert purchases.mean() == pytest.approx(expected, abs=4 * purchases.std() / np.sqrt(n))


def test_fits_recover_simulated_parameters() -> None:
    rng = np.random.default_rng(11)
    n = 60_000
    truth = BgNbdParameters(r=0.6, alpha=8.0, a=0.7, b=3.0)
    rate = rng.gamma(truth.r, 1 / truth.alpha, n)
    dropout = rng.beta(truth.a, truth.b, n)
    T = rng.uniform(30, 52, n)
    arrivals = rng.poisson(rate * T)
    x = np.minimum(arrivals, rng.geometric(dropout))
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), np.maximum(arrivals - x + 1, 1)), 0.0)
    fitted = fit_bgnbd(x.astype(float), t_x, T)
    for name in ("r", "alpha", "a", "b"):
        assert getattr(fitted, name) == pytest.approx(getattr(truth, name), rel=0.15), name

    spend_rate = rng.gamma(3.0, 1 / 20.0, n)
    repeats = np.maximum(x, 1)
    mean_spend = rng.gamma(5.0 * repeats, 1 / spend_rate) / repeats
    spend = fit_gamma_gamma(x.astype(float), mean_spend)
    for name, value in (("p", 5.0), ("q", 3.0), ("v", 20.0)):
        assert getattr(spend, name) == pytest.approx(value, rel=0.15), name


def test_expected_spend_shrinks_from_the_population_mean_towards_the_customers_own() -> None:
    params = PUBLISHED_GAMMA_GAMMA
    population_mean = params.p * params.v / (params.q - 1)
    spend = gamma_gamma_expected_spend(params, np.array([0.0, 1.0, 1000.0]), np.array([0.0, 100.0, 100.0]))
    assert spend[0] == pytest.approx(population_mean)
    assert population_mean < spend[1] < spend[2] < 100.5


def test_fits_need_customers_and_repeaters() -> None:
    with pytest.raises(ValueError, match="no customers"):
        fit_bgnbd(np.array([]), np.array([]), np.array([]))
    with pytest.raises(ValueError, match="no customer has a repeat purchase"):
        fit_gamma_gamma(np.array([0.0, 0.0]), np.array([0.0, 0.0]))


def test_clv_is_discounted_monthly_purchases_times_expected_spend(cdnow: lifetime.CustomerSummary) -> None:
    bgnbd = fit_bgnbd(cdnow.frequency, cdnow.recency, cdnow.T)
    spend_model = fit_gamma_gamma(cdnow.frequency, cdnow.monetary)
    spend = gamma_gamma_expected_spend(spend_model, cdnow.frequency, cdnow.monetary)
    month = 30 / 7
    # One month, no discount: expected purchases in the month times expected spend
    one_month = customer_lifetime_value(bgnbd, spend_model, cdnow, months=1, monthly_discount_rate=0.0)
    next_month = bgnbd_expected_purchases(bgnbd, month, cdnow.frequency, cdnow.recency, cdnow.T)
    assert one_month == pytest.approx(next_month * spend)
    # Two months at 1%: each month's increment discounted by its own factor
    two_months = customer_lifetime_value(bgnbd, spend_model, cdnow, months=2, monthly_discount_rate=0.01)
    second = bgnbd_expected_purchases(bgnbd, 2 * month, cdnow.frequency, cdnow.recency, cdnow.T) - next_month
    assert two_months == pytest.approx(spend * (next_month / 1.01 + second / 1.01**2))
    # A margin scales it; a higher discount rate lowers it
    assert customer_lifetime_value(bgnbd, spend_model, cdnow, profit_margin=0.3) == pytest.approx(
        0.3 * customer_lifetime_value(bgnbd, spend_model, cdnow)
    )
    cheap_money = customer_lifetime_value(bgnbd, spend_model, cdnow, monthly_discount_rate=0.0)
    assert np.all(customer_lifetime_value(bgnbd, spend_model, cdnow, monthly_discount_rate=0.05) < cheap_money)


def test_expected_purchases_stay_finite_for_frequent_buyers_over_long_horizons() -> None:
    # Given daily parameters and customers up to 1,000 repeat purchases, over ten years
    params = BgNbdParameters(r=0.2426, alpha=4.4136 * 7, a=0.7929, b=2.4259)
    x, t_x, T = np.array([0.0, 5, 50, 1000]), np.array([0.0, 300, 700, 727]), np.full(4, 728.0)
    expected = bgnbd_expected_purchases(params, 3600, x, t_x, T)
    # Then nothing overflows (the paper's direct form gives 0 * inf = NaN for the last one)
    assert np.all(np.isfinite(expected))
    assert np.all(np.diff(expected) > 0)
    # And where the direct form is computable, both agree
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = 3600 / (alpha + T[:3] + 3600)
    power = ((alpha + T[:3]) / (alpha + T[:3] + 3600)) ** (r + x[:3])
    direct = (a + b + x[:3] - 1) / (a - 1) * (1 - power * special.hyp2f1(r + x[:3], b + x[:3], a + b + x[:3] - 1, z))
    direct *= bgnbd_probability_alive(params, x[:3], t_x[:3], T[:3])
    assert expected[:3] == pytest.approx(direct, rel=1e-9)
