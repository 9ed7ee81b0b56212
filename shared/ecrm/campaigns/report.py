"""Rates per arm and lift against the holdout, in plain Python (the report is read on a request path).

The analysis engine computes lift in `ecrm.analysis.lift`, but only its `models` may be imported by
another engine and lift is not part of them (it also needs numpy, kept off request paths). So the
campaign report computes the one thing it needs here: the difference of two proportions (a treated
arm's conversion rate minus the holdout's), a Wald confidence interval on it with unpooled variances,
and the two-sided p-value of the pooled two-proportion z-test. Both are the textbook large-sample
forms; with fewer than a handful of conversions per arm the p-value is not to be trusted, and the
report says not significant when either arm is empty.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ecrm.campaigns.models import HOLDOUT, ArmReport, Lift

RATE_NAMES = {
    "delivery": ("delivered", "sent"),
    "bounce": ("bounced", "sent"),
    "complaint": ("complained", "sent"),
    "open": ("opened", "delivered"),
    "click": ("clicked", "delivered"),
    "conversion": ("converted", "targeted"),
}
METRIC_COUNTS = {"opens": "opened", "clicks": "clicked", "conversions": "converted"}


def normal_quantile(p: float) -> float:
    """The standard normal quantile, by bisection on erf (exact enough for confidence levels)."""
    low, high = -10.0, 10.0
    for _ in range(100):
        mid = (low + high) / 2
        if 0.5 * math.erfc(-mid / math.sqrt(2)) < p:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def proportion_lift(
    treated: int, treated_n: int, control: int, control_n: int, *, confidence: float = 0.95
) -> tuple[float, float, float, float]:
    """(difference, low, high, two-sided p) of treated/treated_n minus control/control_n."""
    if not 0 < confidence < 1:
        raise ValueError("confidence is between 0 and 1")
    if treated_n <= 0 or control_n <= 0:
        return 0.0, 0.0, 0.0, 1.0
    p1, p2 = treated / treated_n, control / control_n
    difference = p1 - p2
    z = normal_quantile(0.5 + confidence / 2)
    spread = z * math.sqrt(p1 * (1 - p1) / treated_n + p2 * (1 - p2) / control_n)
    pooled = (treated + control) / (treated_n + control_n)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / treated_n + 1 / control_n))
    p_value = 1.0 if pooled_se == 0 else math.erfc(abs(difference) / pooled_se / math.sqrt(2))
    return difference, difference - spread, difference + spread, p_value


def with_rates(arm: ArmReport) -> ArmReport:
    counts = arm.model_dump()
    rates = {
        name: round(counts[top] / counts[bottom], 6) for name, (top, bottom) in RATE_NAMES.items() if counts[bottom]
    }
    return arm.model_copy(update={"rates": rates})


def lifts(arms: list[ArmReport], *, confidence: float = 0.95) -> list[Lift]:
    """Each treated arm's conversion lift over the holdout (none without a holdout)."""
    control = next((a for a in arms if a.arm == HOLDOUT), None)
    if control is None:
        return []
    results = []
    for arm in arms:
        if arm.arm == HOLDOUT:
            continue
        difference, low, high, p_value = proportion_lift(
            arm.converted, arm.targeted, control.converted, control.targeted, confidence=confidence
        )
        results.append(
            Lift(
                arm=arm.arm,
                metric="conversion",
                treated_rate=arm.converted / arm.targeted if arm.targeted else 0.0,
                control_rate=control.converted / control.targeted if control.targeted else 0.0,
                difference=difference,
                low=low,
                high=high,
                confidence=confidence,
                p_value=p_value,
                significant=p_value < 1 - confidence,
            )
        )
    return results


def winner(arms: list[ArmReport], metric: str) -> str | None:
    """The treated arm with the best rate of `metric` (ties: the first declared), None before any send."""
    count = METRIC_COUNTS[metric]
    base = "targeted" if metric == "conversions" else "delivered"
    best: tuple[float, str] | None = None
    for arm in arms:
        counts: Mapping[str, int] = arm.model_dump()
        if arm.arm == HOLDOUT or not counts[base]:
            continue
        rate = counts[count] / counts[base]
        if best is None or rate > best[0]:
            best = (rate, arm.arm)
    return best[1] if best else None
