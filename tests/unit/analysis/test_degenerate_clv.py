"""A CLV fit that degenerates says so, and serves no P(alive) = 1 to customers RFM calls lost."""

from __future__ import annotations

from datetime import date

from ecrm.analysis.lifetime import fit_bgnbd, summarize
from ecrm.analysis.training import compute_traits
from ecrm.analysis.transactions import Transactions
from ecrm_ops.analysis.synthetic import synthetic_transactions

AS_OF = date(2026, 12, 6)


def degenerate_history() -> Transactions:
    """120 synthetic customers on which the BG/NBD fit pins its dropout parameters (a, b) near e^-20."""
    data = synthetic_transactions(120, mean_orders=6, seed=11, cutoff=AS_OF, days_after_cutoff=1)
    return data.transactions.until(data.cutoff_day)


def test_a_fit_with_a_parameter_at_its_bound_names_it_and_the_reason() -> None:
    # Given orders on which nobody seems to drop out
    summary = summarize(degenerate_history(), calibration_end=AS_OF, period="W")
    # When BG/NBD is fitted
    fitted = fit_bgnbd(summary.frequency, summary.recency, summary.T)
    # Then the parameters at the bound are named, with why the fit is not served
    assert set(fitted.at_bound) >= {"a"}
    assert fitted.degenerate_reason is not None
    assert "dropout" in fitted.degenerate_reason


def test_the_model_job_serves_no_p_alive_from_a_degenerate_fit() -> None:
    # Given the same orders (so the fit degenerates)
    run = compute_traits(degenerate_history(), as_of=AS_OF)
    # Then the output carries the flag and the reason
    assert run.metrics["clv"]["degenerate"] is True
    assert "at the search bound" in run.metrics["clv"]["degenerate_reason"]
    # And no customer, lost ones included, is served P(alive) = 1 (nor CLV): the traits are cleared
    lost = [c for c, t in run.traits.items() if t.get("rfm_segment") in {"lost", "hibernating", "at risk"}]
    assert lost, "the history has customers RFM calls lost"
    assert all(run.traits[c]["p_alive"] is None for c in lost)
    assert all(t["clv"] is None and t["expected_orders_90d"] is None for t in run.traits.values() if "clv" in t)


def test_a_sound_fit_has_no_parameter_at_a_bound() -> None:
    # Given 60 synthetic customers, whose fit is interior (r 0.74, alpha 8.3, a 1.4, b 93)
    data = synthetic_transactions(60, mean_orders=6, seed=11, cutoff=AS_OF, days_after_cutoff=1)
    summary = summarize(data.transactions.until(data.cutoff_day), calibration_end=AS_OF, period="W")
    # Then nothing is flagged
    fitted = fit_bgnbd(summary.frequency, summary.recency, summary.T)
    assert fitted.at_bound == ()
    assert fitted.degenerate_reason is None
