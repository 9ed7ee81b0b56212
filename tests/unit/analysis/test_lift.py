"""Campaign lift against a control holdout: a planted effect is found, a null effect is not, and the
statistics agree with scipy's own tests."""

from __future__ import annotations

import numpy as np
import pytest
from ecrm.analysis.lift import conversion_lift, evaluate_campaign, revenue_lift
from scipy import stats

BASE_RATE = 0.05
SPEND_SHAPE, SPEND_SCALE = 2.0, 30.0  # revenue of a conversion: Gamma, mean 60


def campaign(seed: int, treated_rate: float, treated_spend_scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """80,000 recipients of which 20% held out as control; the treatment changes conversion and spend."""
    rng = np.random.default_rng(seed)
    treated = rng.random(80_000) < 0.8
    converted = rng.random(80_000) < np.where(treated, treated_rate, BASE_RATE)
    scale = np.where(treated, treated_spend_scale, SPEND_SCALE)
    revenue = np.where(converted, rng.gamma(SPEND_SHAPE, scale), 0.0)
    return treated, converted, revenue


def test_a_planted_effect_is_recovered_within_its_interval_and_significant() -> None:
    # Given conversion 5% -> 6% and spend per conversion 60 -> 66
    evaluation = evaluate_campaign(*campaign(seed=3, treated_rate=0.06, treated_spend_scale=33.0))
    conversion, revenue = evaluation.conversion, evaluation.revenue
    # Then the conversion lift interval holds the planted +1 point (+20%) and the test rejects no effect
    assert conversion.absolute_low < 0.01 < conversion.absolute_high
    assert conversion.relative_low < 0.2 < conversion.relative_high
    assert conversion.significant
    assert conversion.p_value < 0.01
    # And revenue per recipient: 0.06 * 66 - 0.05 * 60 = 0.96
    assert revenue.low < 0.06 * 66 - 0.05 * 60 < revenue.high
    assert revenue.significant
    assert revenue.treated_size + revenue.control_size == 80_000


def test_a_null_effect_is_not_significant() -> None:
    evaluation = evaluate_campaign(*campaign(seed=4, treated_rate=BASE_RATE, treated_spend_scale=SPEND_SCALE))
    assert not evaluation.conversion.significant
    assert evaluation.conversion.absolute_low < 0 < evaluation.conversion.absolute_high
    assert evaluation.conversion.relative_low < 0 < evaluation.conversion.relative_high
    assert not evaluation.revenue.significant
    assert evaluation.revenue.low < 0 < evaluation.revenue.high


def test_z_test_equals_the_chi_square_test_of_the_two_by_two_table() -> None:
    lift = conversion_lift(130, 2000, 100, 2000)
    table = np.array([[130, 2000 - 130], [100, 2000 - 100]])
    chi2 = stats.chi2_contingency(table, correction=False)
    assert lift.p_value == pytest.approx(chi2.pvalue, rel=1e-9)
    assert lift.absolute == pytest.approx(0.015)
    assert lift.relative == pytest.approx(0.3)
    half_width = 1.959964 * np.sqrt(0.065 * 0.935 / 2000 + 0.05 * 0.95 / 2000)
    assert (lift.absolute_low, lift.absolute_high) == pytest.approx((0.015 - half_width, 0.015 + half_width))


def test_welch_matches_scipy() -> None:
    rng = np.random.default_rng(8)
    treated, control = rng.gamma(2, 10, 300), rng.gamma(2, 9, 120)
    lift = revenue_lift(treated, control)
    welch = stats.ttest_ind(treated, control, equal_var=False)
    assert lift.p_value == pytest.approx(welch.pvalue, rel=1e-9)
    interval = welch.confidence_interval(0.95)
    assert (lift.low, lift.high) == pytest.approx((interval.low, interval.high), rel=1e-9)


def test_the_conversion_interval_covers_the_truth_about_95_percent_of_the_time() -> None:
    # Given 2,000 repeated campaigns with a true lift of +1 point
    rng = np.random.default_rng(9)
    treated_conversions = rng.binomial(5000, 0.06, 2000)
    control_conversions = rng.binomial(5000, 0.05, 2000)
    covered = [
        (lift := conversion_lift(int(t), 5000, int(c), 5000)).absolute_low < 0.01 < lift.absolute_high
        for t, c in zip(treated_conversions, control_conversions, strict=True)
    ]
    assert 0.93 < np.mean(covered) < 0.97


def test_degenerate_groups() -> None:
    nobody = conversion_lift(0, 100, 0, 100)
    assert nobody.p_value == 1.0
    assert np.isnan(nobody.relative)
    flat = revenue_lift(np.zeros(10), np.zeros(10))
    assert (flat.difference, flat.p_value) == (0.0, 1.0)
    with pytest.raises(ValueError, match="treated"):
        conversion_lift(11, 10, 0, 10)
    with pytest.raises(ValueError, match="at least two"):
        revenue_lift(np.array([1.0]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="confidence"):
        conversion_lift(1, 10, 1, 10, confidence=95)
