"""Lift against the holdout: a planted effect is significant, none is not; the auto-winner's pick."""

from __future__ import annotations

import pytest
from ecrm.campaigns.models import ArmReport
from ecrm.campaigns.report import lifts, normal_quantile, proportion_lift, winner, with_rates


def arm(name: str, targeted: int, converted: int, **counts: int) -> ArmReport:
    return ArmReport(arm=name, targeted=targeted, requested=targeted, converted=converted, **counts)


def test_a_planted_effect_is_significant_and_no_effect_is_not() -> None:
    planted = lifts([arm("holdout", 1000, 50), arm("a", 9000, 720)])[0]
    assert planted.significant
    assert planted.low > 0
    assert planted.difference == pytest.approx(0.03)
    none = lifts([arm("holdout", 1000, 50), arm("a", 9000, 455)])[0]
    assert not none.significant
    assert none.low < 0 < none.high


def test_the_textbook_figures() -> None:
    assert normal_quantile(0.975) == pytest.approx(1.959964, abs=1e-5)
    difference, low, high, p_value = proportion_lift(120, 1000, 100, 1000)
    assert difference == pytest.approx(0.02)
    assert (low, high) == (pytest.approx(-0.00741, abs=1e-4), pytest.approx(0.04741, abs=1e-4))
    assert p_value == pytest.approx(0.1530, abs=1e-3)
    assert proportion_lift(0, 0, 5, 10)[3] == 1.0


def test_rates_and_winner() -> None:
    arms = [
        with_rates(arm("a", 100, 2, sent=100, delivered=90, opened=30, clicked=5)),
        with_rates(arm("b", 100, 1, sent=100, delivered=80, opened=40, clicked=4)),
        arm("holdout", 20, 0),
    ]
    assert arms[0].rates["delivery"] == 0.9
    assert arms[1].rates["open"] == 0.5
    assert winner(arms, "opens") == "b"
    assert winner(arms, "clicks") == "a"
    assert winner(arms, "conversions") == "a"
    assert lifts(arms[:2]) == []
