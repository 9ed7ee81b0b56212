"""Campaign evaluation against a randomly held-out control group: did the campaign change behaviour?

Two questions, each with an effect size, a confidence interval and a p-value, because a lift without
its uncertainty invites decisions on noise:

- Conversion: the difference of conversion rates (treated - control) with a Wald interval from the
  unpooled standard error; the relative lift (treated / control - 1) with the log risk-ratio
  (Katz) interval; the p-value of the two-proportion z-test, whose standard error is pooled
  because the null hypothesis is that both groups share one rate.
- Revenue per recipient (zeros included for non-buyers): the difference of means with Welch's
  interval and t-test, which do not assume equal variances (a campaign usually changes the spread
  of revenue as well as its mean) and, by the central limit theorem, hold for skewed revenue at
  campaign sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class ConversionLift:
    treated_size: int
    control_size: int
    treated_rate: float
    control_rate: float
    absolute: float
    absolute_low: float
    absolute_high: float
    relative: float
    relative_low: float
    relative_high: float
    p_value: float
    confidence: float

    @property
    def significant(self) -> bool:
        return self.p_value < 1 - self.confidence


@dataclass(frozen=True)
class RevenueLift:
    treated_size: int
    control_size: int
    treated_mean: float
    control_mean: float
    difference: float
    low: float
    high: float
    p_value: float
    degrees_of_freedom: float
    confidence: float

    @property
    def significant(self) -> bool:
        return self.p_value < 1 - self.confidence


@dataclass(frozen=True)
class CampaignEvaluation:
    conversion: ConversionLift
    revenue: RevenueLift


def _check_confidence(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    return float(stats.norm.ppf(0.5 + confidence / 2))


def conversion_lift(
    treated_conversions: int,
    treated_size: int,
    control_conversions: int,
    control_size: int,
    *,
    confidence: float = 0.95,
) -> ConversionLift:
    """Lift in conversion rate of the treated group over the control group.

    The relative interval is NaN when either group has no conversion (the risk ratio's log is then
    undefined); the p-value is 1 when nobody, or everybody, converted in both groups.
    """
    z = _check_confidence(confidence)
    for name, conversions, size in (
        ("treated", treated_conversions, treated_size),
        ("control", control_conversions, control_size),
    ):
        if size <= 0 or not 0 <= conversions <= size:
            raise ValueError(f"{name}: need 0 <= conversions <= size and size > 0, got {conversions} of {size}")
    p1, p0 = treated_conversions / treated_size, control_conversions / control_size
    absolute = p1 - p0
    unpooled = math.sqrt(p1 * (1 - p1) / treated_size + p0 * (1 - p0) / control_size)
    pooled_rate = (treated_conversions + control_conversions) / (treated_size + control_size)
    pooled = math.sqrt(pooled_rate * (1 - pooled_rate) * (1 / treated_size + 1 / control_size))
    p_value = 1.0 if pooled == 0 else float(2 * stats.norm.sf(abs(absolute) / pooled))

    relative = relative_low = relative_high = math.nan
    if p0 > 0:
        relative = p1 / p0 - 1
    if treated_conversions > 0 and control_conversions > 0:
        log_ratio = math.log(p1 / p0)
        log_se = math.sqrt((1 - p1) / treated_conversions + (1 - p0) / control_conversions)
        relative_low = math.exp(log_ratio - z * log_se) - 1
        relative_high = math.exp(log_ratio + z * log_se) - 1
    return ConversionLift(
        treated_size=treated_size,
        control_size=control_size,
        treated_rate=p1,
        control_rate=p0,
        absolute=absolute,
        absolute_low=absolute - z * unpooled,
        absolute_high=absolute + z * unpooled,
        relative=relative,
        relative_low=relative_low,
        relative_high=relative_high,
        p_value=p_value,
        confidence=confidence,
    )


def revenue_lift(treated_revenue: np.ndarray, control_revenue: np.ndarray, *, confidence: float = 0.95) -> RevenueLift:
    """Difference in mean revenue per recipient (treated - control), Welch interval and two-sided p-value."""
    _check_confidence(confidence)
    treated = np.asarray(treated_revenue, dtype=np.float64)
    control = np.asarray(control_revenue, dtype=np.float64)
    if len(treated) < 2 or len(control) < 2:
        raise ValueError("each group needs at least two recipients to estimate its variance")
    n1, n0 = len(treated), len(control)
    variance1, variance0 = treated.var(ddof=1) / n1, control.var(ddof=1) / n0
    difference = float(treated.mean() - control.mean())
    standard_error = math.sqrt(variance1 + variance0)
    if standard_error == 0:
        # Every recipient in each group brought the same revenue: nothing left to be uncertain about.
        half_width, freedom = 0.0, math.inf
        p_value = 1.0 if difference == 0 else 0.0
    else:
        freedom = (variance1 + variance0) ** 2 / (variance1**2 / (n1 - 1) + variance0**2 / (n0 - 1))
        half_width = float(stats.t.ppf(0.5 + confidence / 2, freedom)) * standard_error
        p_value = float(2 * stats.t.sf(abs(difference) / standard_error, freedom))
    return RevenueLift(
        treated_size=n1,
        control_size=n0,
        treated_mean=float(treated.mean()),
        control_mean=float(control.mean()),
        difference=difference,
        low=difference - half_width,
        high=difference + half_width,
        p_value=p_value,
        degrees_of_freedom=float(freedom),
        confidence=confidence,
    )


def evaluate_campaign(
    treated: np.ndarray, converted: np.ndarray, revenue: np.ndarray, *, confidence: float = 0.95
) -> CampaignEvaluation:
    """One row per recipient: in the treated group (else control), converted, revenue (0 if none)."""
    treated = np.asarray(treated, dtype=bool)
    converted = np.asarray(converted, dtype=bool)
    revenue = np.asarray(revenue, dtype=np.float64)
    if not len(treated) == len(converted) == len(revenue):
        raise ValueError("treated, converted and revenue must have one entry per recipient")
    conversion = conversion_lift(
        int(converted[treated].sum()),
        int(treated.sum()),
        int(converted[~treated].sum()),
        int((~treated).sum()),
        confidence=confidence,
    )
    return CampaignEvaluation(conversion, revenue_lift(revenue[treated], revenue[~treated], confidence=confidence))
