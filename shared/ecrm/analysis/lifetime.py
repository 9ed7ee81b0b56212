"""Customer lifetime value: the BG/NBD purchase model, the Gamma-Gamma spend model, and CLV from both.

- BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while alive, a
  customer buys at a Poisson rate lambda ~ Gamma(r, alpha); after each purchase they drop out with
  probability p ~ Beta(a, b). Fitted by maximum likelihood on (x, t_x, T) per customer.
- Gamma-Gamma (Fader & Hardie 2013, "The Gamma-Gamma model of monetary value"; Colombo & Jiang
  1999): a customer's transaction values are Gamma(p, nu) with nu ~ Gamma(q, v) across customers,
  independent of the purchase process. Fitted on the customers with repeat purchases, from their
  mean repeat value m_x and count x.

Both fits maximise the exact log-likelihood with L-BFGS-B on the log of the parameters (so they
stay positive) using analytic gradients: a million customers fit in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
from scipy import optimize, special

from ecrm.analysis.transactions import Transactions, from_day, to_day

Period = Literal["D", "W"]
DAYS_PER_PERIOD: dict[str, float] = {"D": 1.0, "W": 7.0}
# Parameters are searched as logs within these bounds: wide enough for any real data, narrow
# enough that a degenerate log (e.g. nobody ever drops out) stops at a finite, visible value.
LOG_PARAMETER_BOUND = 20.0


@dataclass(frozen=True)
class CustomerSummary:
    """One entry per customer seen on or before the calibration end, in the period unit.

    frequency: repeat purchase days (all purchases on one day count as one purchase, as in the
    papers); recency: time from the first to the last purchase; T: time from the first purchase to
    the end of calibration; monetary: mean value of the repeat purchase days (0 when there are none).
    """

    customers: np.ndarray
    customer_index: np.ndarray
    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    monetary: np.ndarray
    period: Period
    calibration_end: date

    def __len__(self) -> int:
        return len(self.customers)


def summarize(tx: Transactions, *, calibration_end: date | None = None, period: Period = "W") -> CustomerSummary:
    """Reduce a transaction log to the per-customer statistics the models use.

    calibration_end defaults to the last transaction day; later rows are ignored, and customers
    whose first purchase is later are excluded. One sort of a (customer, day) key does the work.
    """
    if period not in DAYS_PER_PERIOD:
        raise ValueError(f"period must be 'D' or 'W', not {period!r}")
    if len(tx) == 0:
        raise ValueError("there are no transactions to summarize")
    end_day = int(tx.day.max()) if calibration_end is None else to_day(calibration_end)
    calibration = tx.until(end_day)
    if len(calibration) == 0:
        raise ValueError(f"there are no transactions on or before {from_day(end_day).isoformat()}")

    buys = calibration.is_purchase
    if not buys.any():
        raise ValueError(f"there are no purchases on or before {from_day(end_day).isoformat()} (only refunds)")
    first_day_seen = int(calibration.day.min())
    span = end_day - first_day_seen + 1
    if len(tx.customers) * span >= 2**62:
        raise ValueError("the date range times the number of customers is too large to index")
    key = calibration.customer_index[buys] * span + (calibration.day[buys] - first_day_seen)
    purchase_days, row_to_purchase_day = np.unique(key, return_inverse=True)
    day_value = np.bincount(row_to_purchase_day.ravel(), weights=calibration.amount[buys], minlength=len(purchase_days))
    # Refunds are no purchase days; they lower the customer's repeat value (net spend per repeat purchase).
    refunds = np.bincount(
        calibration.customer_index[~buys], weights=calibration.amount[~buys], minlength=len(tx.customers)
    )
    pair_customer = purchase_days // span
    pair_day = purchase_days % span + first_day_seen

    starts = np.flatnonzero(np.diff(pair_customer, prepend=-1))
    ends = np.append(starts[1:], len(purchase_days))
    unit = DAYS_PER_PERIOD[period]
    frequency = (ends - starts - 1).astype(np.float64)
    first = pair_day[starts]
    repeat_value = np.add.reduceat(day_value, starts) - day_value[starts] + refunds[pair_customer[starts]]
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(frequency > 0, repeat_value / frequency, 0.0)
    index = pair_customer[starts]
    return CustomerSummary(
        customers=tx.customers[index],
        customer_index=index,
        frequency=frequency,
        recency=(pair_day[ends - 1] - first) / unit,
        T=(end_day - first) / unit,
        monetary=monetary,
        period=period,
        calibration_end=from_day(end_day),
    )


def _by_frequency(frequency: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct counts, index of each customer's count): special functions of x are computed per distinct x."""
    distinct, inverse = np.unique(frequency, return_inverse=True)
    return distinct, inverse.ravel()


@dataclass(frozen=True)
class BgNbdParameters:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")
    at_bound: tuple[str, ...] = ()  # parameters the fit left at a search bound: the model degenerated

    @property
    def degenerate_reason(self) -> str | None:
        """Why this fit must not be served, or None: a parameter at its bound is the data saying "no dropout" (a or
        b pinned) or "no heterogeneity" (r, alpha pinned), and P(alive) then reads 1 for customers long gone."""
        if not self.at_bound:
            return None
        return (
            f"BG/NBD parameter(s) {', '.join(self.at_bound)} at the search bound (e^±{LOG_PARAMETER_BOUND:g}): the "
            "orders do not identify dropout, so P(alive), expected orders and CLV from this fit are not served"
        )


def parameters_at_bound(names: tuple[str, ...], log_params: np.ndarray, tolerance: float = 1.0) -> tuple[str, ...]:
    """Names of the parameters whose log lies within `tolerance` of the search bound: L-BFGS-B crawls along a ridge
    toward a bound it never quite reaches (a = e^-19.7 on synthetic data where nobody drops out)."""
    return tuple(
        name for name, value in zip(names, log_params, strict=True) if abs(abs(value) - LOG_PARAMETER_BOUND) < tolerance
    )


def _bgnbd_terms(
    r: float, alpha: float, a: float, b: float, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-customer log-likelihood pieces, FHL 2005 eq. (6) in logs: LL = A1 + A2 + logaddexp(A3, A4)."""
    x = frequency
    log_alpha_T = np.log(alpha + T)
    log_alpha_tx = np.log(alpha + recency)
    a3 = -(r + x) * log_alpha_T
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(b + x - 1) - (r + x) * log_alpha_tx, -np.inf)
    return x, log_alpha_T, log_alpha_tx, a3, a4


def bgnbd_log_likelihood(
    params: BgNbdParameters | tuple[float, float, float, float],
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
) -> float:
    """Total BG/NBD log-likelihood of (x, t_x, T) under (r, alpha, a, b)."""
    r, alpha, a, b = _bgnbd_tuple(params)
    value, _ = _bgnbd_value_and_gradient(np.log([r, alpha, a, b]), frequency, recency, T, _by_frequency(frequency))
    return value


def _bgnbd_tuple(params: BgNbdParameters | tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    if isinstance(params, BgNbdParameters):
        return params.r, params.alpha, params.a, params.b
    r, alpha, a, b = params
    return float(r), float(alpha), float(a), float(b)


def _bgnbd_value_and_gradient(
    log_params: np.ndarray,
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    by_frequency: tuple[np.ndarray, np.ndarray],
) -> tuple[float, np.ndarray]:
    """Log-likelihood and its gradient with respect to the log parameters."""
    r, alpha, a, b = np.exp(log_params)
    distinct_x, x_of = by_frequency
    x, log_alpha_T, log_alpha_tx, a3, a4 = _bgnbd_terms(r, alpha, a, b, frequency, recency, T)
    tail = np.logaddexp(a3, a4)
    weight_tx = np.exp(a4 - tail)  # share of the "dropped out after the last purchase" branch
    weight_T = 1.0 - weight_tx

    # Terms in x alone, once per distinct x.
    lg_rx = special.gammaln(r + distinct_x)[x_of]
    lg_bx = special.gammaln(b + distinct_x)[x_of]
    lg_abx = special.gammaln(a + b + distinct_x)[x_of]
    a1 = lg_rx.sum() - len(x) * (special.gammaln(r) - r * np.log(alpha))
    a2 = len(x) * (special.gammaln(a + b) - special.gammaln(b)) + lg_bx.sum() - lg_abx.sum()
    value = float(a1 + a2 + tail.sum())

    psi_rx = special.digamma(r + distinct_x)[x_of]
    psi_bx = special.digamma(b + distinct_x)[x_of]
    psi_abx = special.digamma(a + b + distinct_x)[x_of]
    n = len(x)
    d_r = (
        psi_rx.sum()
        - n * (special.digamma(r) - np.log(alpha))
        - (weight_T * log_alpha_T + weight_tx * log_alpha_tx).sum()
    )
    d_alpha = n * r / alpha - ((r + x) * (weight_T / (alpha + T) + weight_tx / (alpha + recency))).sum()
    d_a = n * special.digamma(a + b) - psi_abx.sum() + weight_tx.sum() / a
    with np.errstate(divide="ignore", invalid="ignore"):
        dropout_term = np.where(x > 0, weight_tx / (b + x - 1), 0.0)
    d_b = n * (special.digamma(a + b) - special.digamma(b)) + psi_bx.sum() - psi_abx.sum() - dropout_term.sum()
    gradient = np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
    return value, gradient


def _maximize(
    value_and_gradient: Callable[[np.ndarray], tuple[float, np.ndarray]], start: np.ndarray, customers: int
) -> tuple[np.ndarray, float]:
    """Maximise a log-likelihood over log parameters; the objective is scaled per customer so that
    the tolerances mean the same thing for a thousand customers as for a million."""

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        value, gradient = value_and_gradient(log_params)
        if not np.isfinite(value):
            return np.inf, np.zeros_like(log_params)
        return -value / customers, -gradient / customers

    result = optimize.minimize(
        objective,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=[(-LOG_PARAMETER_BOUND, LOG_PARAMETER_BOUND)] * len(start),
        options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-9},
    )
    if not np.all(np.isfinite(result.x)):
        raise ArithmeticError(f"the fit did not converge: {result.message}")
    return result.x, -float(result.fun) * customers


def fit_bgnbd(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> BgNbdParameters:
    """Maximum-likelihood BG/NBD parameters for customers' (x, t_x, T)."""
    frequency, recency, T = (np.asarray(v, dtype=np.float64) for v in (frequency, recency, T))
    if len(frequency) == 0:
        raise ValueError("there are no customers to fit")
    by_frequency = _by_frequency(frequency)
    # Start at r = a = b = 1 and alpha at the mean time per purchase: alpha carries the time unit.
    alpha_start = max(float(T.mean()) / (1.0 + float(frequency.mean())), 1e-3)
    start = np.log([1.0, alpha_start, 1.0, 1.0])
    log_params, value = _maximize(
        lambda p: _bgnbd_value_and_gradient(p, frequency, recency, T, by_frequency), start, len(frequency)
    )
    r, alpha, a, b = np.exp(log_params)
    at_bound = parameters_at_bound(("r", "alpha", "a", "b"), log_params)
    return BgNbdParameters(float(r), float(alpha), float(a), float(b), value, at_bound)


def _log_dropout_odds(params: BgNbdParameters, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """log of a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x), the odds term of P(alive); -inf when x = 0."""
    r, alpha, a, b = _bgnbd_tuple(params)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            x > 0,
            np.log(a) - np.log(b + x - 1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)),
            -np.inf,
        )


def bgnbd_probability_alive(
    params: BgNbdParameters, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """P(alive | x, t_x, T) = 1 / (1 + delta(x>0) a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)) (FHL 2005, Hardie's note)."""
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (frequency, recency, T))
    return np.exp(-np.logaddexp(0.0, _log_dropout_odds(params, x, t_x, T)))


def bgnbd_expected_purchases(
    params: BgNbdParameters, t: float, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected purchases in the next t periods, FHL 2005 eq. (10).

    (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)], z = t/(alpha+T+t),
    divided by 1 + delta(x>0) a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x). Undefined at a = 1 exactly.

    For frequent buyers and long horizons the power underflows while 2F1 overflows (the "#NUM!"
    problem of Fader & Hardie's 2013 note), so the bracket uses Euler's transformation instead:
    (1-z)^(r+x) 2F1(r+x, b+x; a+b+x-1; z) = (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), whose
    parameters stay small.
    """
    r, alpha, a, b = _bgnbd_tuple(params)
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (frequency, recency, T))
    z = t / (alpha + T + t)
    remaining = np.power(1 - z, a - 1) * special.hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
    numerator = (a + b + x - 1) / (a - 1) * (1 - remaining)
    return numerator * np.exp(-np.logaddexp(0.0, _log_dropout_odds(params, x, t_x, T)))


def bgnbd_expected_purchases_new_customer(params: BgNbdParameters, t: np.ndarray | float) -> np.ndarray:
    """E[X(t)] for a customer just acquired, FHL 2005 eq. (9): the curve to track a cohort's repeat sales against."""
    r, alpha, a, b = _bgnbd_tuple(params)
    t = np.asarray(t, dtype=np.float64)
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (1 - np.power(alpha / (alpha + t), r) * special.hyp2f1(r, b, a + b - 1, z))


@dataclass(frozen=True)
class GammaGammaParameters:
    p: float
    q: float
    v: float
    log_likelihood: float = float("nan")


def _gamma_gamma_value_and_gradient(
    log_params: np.ndarray, frequency: np.ndarray, monetary: np.ndarray
) -> tuple[float, np.ndarray]:
    """Fader & Hardie 2013 eq. (3), summed in logs, and its gradient with respect to the log parameters:
    ln G(px+q) - ln G(px) - ln G(q) + q ln v + (px-1) ln m_x + px ln x - (px+q) ln(v + x m_x)."""
    p, q, v = np.exp(log_params)
    x, m = frequency, monetary
    px = p * x
    log_spend = np.log(v + x * m)
    log_m, log_x = np.log(m), np.log(x)
    n = len(x)
    value = (
        special.gammaln(px + q) - special.gammaln(px) + (px - 1) * log_m + px * log_x - (px + q) * log_spend
    ).sum() + n * (q * np.log(v) - special.gammaln(q))
    psi_pxq = special.digamma(px + q)
    d_p = (x * (psi_pxq - special.digamma(px) + log_m + log_x - log_spend)).sum()
    d_q = psi_pxq.sum() - n * special.digamma(q) + n * np.log(v) - log_spend.sum()
    d_v = n * q / v - ((px + q) / (v + x * m)).sum()
    return float(value), np.array([d_p * p, d_q * q, d_v * v])


def gamma_gamma_log_likelihood(
    params: GammaGammaParameters | tuple[float, float, float], frequency: np.ndarray, monetary: np.ndarray
) -> float:
    p, q, v = (params.p, params.q, params.v) if isinstance(params, GammaGammaParameters) else params
    x, m = _spend_sample(frequency, monetary)
    return _gamma_gamma_value_and_gradient(np.log([p, q, v]), x, m)[0]


def _spend_sample(frequency: np.ndarray, monetary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Customers the spend model is defined for: repeat purchases (x > 0) of positive mean value."""
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary, dtype=np.float64)
    keep = (x > 0) & (m > 0)
    return x[keep], m[keep]


def fit_gamma_gamma(frequency: np.ndarray, monetary: np.ndarray) -> GammaGammaParameters:
    """Maximum-likelihood Gamma-Gamma parameters from customers with repeat purchases.

    Customers with x = 0 carry no repeat value, and a non-positive mean (refunds exceeding sales)
    is outside a Gamma model's support: both are left out of the fit.
    """
    x, m = _spend_sample(frequency, monetary)
    if len(x) == 0:
        raise ValueError("no customer has a repeat purchase of positive value: the spend model cannot be fitted")
    # Start at p = q = 2 with v giving the observed mean spend, p v / (q - 1).
    start = np.log([2.0, 2.0, max(float(m.mean()) / 2.0, 1e-6)])
    log_params, value = _maximize(lambda params: _gamma_gamma_value_and_gradient(params, x, m), start, len(x))
    p, q, v = np.exp(log_params)
    return GammaGammaParameters(float(p), float(q), float(v), value)


def gamma_gamma_expected_spend(params: GammaGammaParameters, frequency: np.ndarray, monetary: np.ndarray) -> np.ndarray:
    """E[M | p, q, v, m_x, x] = p (v + x m_x) / (p x + q - 1): the population mean p v / (q - 1) for
    x = 0, moving towards the customer's own mean m_x as x grows. Infinite population mean if q <= 1."""
    x = np.asarray(frequency, dtype=np.float64)
    m = np.where(x > 0, np.asarray(monetary, dtype=np.float64), 0.0)
    with np.errstate(divide="ignore"):
        return params.p * (params.v + x * m) / (params.p * x + params.q - 1)


def customer_lifetime_value(
    bgnbd: BgNbdParameters,
    gamma_gamma: GammaGammaParameters,
    summary: CustomerSummary,
    *,
    months: int = 12,
    monthly_discount_rate: float = 0.01,
    days_per_month: float = 30.0,
    profit_margin: float = 1.0,
) -> np.ndarray:
    """Discounted expected value of each customer's purchases over the next `months`:

        CLV = margin * E[M] * sum_{i=1..months} (E[Y(i m)] - E[Y((i-1) m)]) / (1 + d)^i

    where m is a month in the summary's period unit (days_per_month / 7 weeks or days_per_month
    days), E[Y(t)] the BG/NBD conditional expected purchases in the next t periods, E[M] the
    Gamma-Gamma conditional expected spend per purchase, and d the monthly discount rate: each
    month's expected purchases are valued at the month's end.
    """
    month = days_per_month / DAYS_PER_PERIOD[summary.period]
    x, t_x, T = summary.frequency, summary.recency, summary.T
    discounted_purchases = np.zeros(len(x))
    previous = np.zeros(len(x))
    for i in range(1, months + 1):
        cumulative = bgnbd_expected_purchases(bgnbd, i * month, x, t_x, T)
        discounted_purchases += (cumulative - previous) / (1 + monthly_discount_rate) ** i
        previous = cumulative
    return profit_margin * gamma_gamma_expected_spend(gamma_gamma, x, summary.monetary) * discounted_purchases
