"""`ecrm analysis clv` and `ecrm analysis rfm`: lifetime value and RFM segments from a CSV of transactions.

The statistics live in `ecrm.analysis.lifetime` and `ecrm.analysis.rfm`; this module only reads the
file, reports and writes. A wrong option or column is a usage error (exit 2); a file with bad rows
lists every one of them (row, column, value, reason) and exits 1, never a traceback.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ecrm_ops.analysis.transactions_file import load_transactions, transaction_options
from ecrm_ops.csv_input import option_date

F = TypeVar("F", bound=Callable[..., Any])


def _as_of_option(help_text: str) -> Callable[[F], F]:
    return click.option("--as-of", help=f"{help_text} (YYYY-MM-DD or --date-format; default: the last transaction).")


@click.command("clv")
@transaction_options
@click.option(
    "--calibration-end",
    help="End of the calibration period: the models learn from rows up to this day and ignore later ones "
    "(YYYY-MM-DD or --date-format; default: the last transaction).",
)
@click.option(
    "--period", type=click.Choice(["W", "D"]), default="W", show_default=True, help="Time unit: weeks or days."
)
@click.option("--months", type=click.IntRange(min=1), default=12, show_default=True, help="CLV horizon in months.")
@click.option(
    "--monthly-discount-rate", type=click.FloatRange(min=0), default=0.01, show_default=True, help="Per month."
)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write per-customer predictions (CSV).")
@click.option("--json", "as_json", is_flag=True, help="Print the fitted models as JSON.")
def clv_command(
    transactions_path: Path,
    customer_col: str,
    date_col: str,
    amount_col: str,
    encoding: str,
    date_format: str | None,
    bad_rows_path: Path | None,
    calibration_end: str | None,
    period: str,
    months: int,
    monthly_discount_rate: float,
    output: Path | None,
    as_json: bool,
) -> None:
    """Fit BG/NBD (purchases) and Gamma-Gamma (spend) models, and value customers over a horizon."""
    import numpy as np
    from ecrm.analysis import lifetime

    end = option_date(calibration_end, "--calibration-end", date_format)
    transactions = load_transactions(
        transactions_path,
        customer_col=customer_col,
        date_col=date_col,
        amount_col=amount_col,
        encoding=encoding,
        date_format=date_format,
        bad_rows_path=bad_rows_path,
    )
    try:
        summary = lifetime.summarize(transactions, calibration_end=end, period="W" if period == "W" else "D")
        bgnbd = lifetime.fit_bgnbd(summary.frequency, summary.recency, summary.T)
        gamma_gamma = lifetime.fit_gamma_gamma(summary.frequency, summary.monetary)
    except (ValueError, ArithmeticError) as error:
        raise click.UsageError(str(error)) from None
    value = lifetime.customer_lifetime_value(
        bgnbd, gamma_gamma, summary, months=months, monthly_discount_rate=monthly_discount_rate
    )
    repeaters = int(np.count_nonzero(summary.frequency > 0))
    purchase_model = dataclasses.asdict(bgnbd)
    spend_model = dataclasses.asdict(gamma_gamma)
    report = {
        "bgnbd": purchase_model,
        "bgnbd_degenerate_reason": bgnbd.degenerate_reason,
        "gamma_gamma": spend_model,
        "customers": len(summary),
        "repeat_customers": repeaters,
        "period": period,
        "calibration_end": summary.calibration_end.isoformat(),
        "clv": {
            "months": months,
            "monthly_discount_rate": monthly_discount_rate,
            "total": float(value.sum()),
            "mean": float(value.mean()),
        },
    }
    if output is not None:
        _write_clv(output, summary, bgnbd, gamma_gamma, value, months)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    unit = "weeks" if period == "W" else "days"
    click.echo(f"{len(summary):,} customers ({repeaters:,} with repeat purchases), calibration to "
               f"{summary.calibration_end.isoformat()}, time in {unit}")  # fmt: skip
    click.echo("BG/NBD (purchases)")
    for name in purchase_model:
        if isinstance(purchase_model[name], float):
            click.echo(f"  {name:<16}{purchase_model[name]:>14.4f}")
    if bgnbd.degenerate_reason:
        click.echo(f"  degenerate: {bgnbd.degenerate_reason}")
    click.echo("Gamma-Gamma (spend per purchase)")
    for name in spend_model:
        click.echo(f"  {name:<16}{spend_model[name]:>14.4f}")
    click.echo(f"CLV over {months} months at {monthly_discount_rate:.2%} a month")
    click.echo(f"  {'total':<16}{value.sum():>14.2f}\n  {'mean':<16}{value.mean():>14.2f}")
    if output is not None:
        click.echo(f"wrote {len(summary):,} customers to {output}")


def _write_clv(output: Path, summary: Any, bgnbd: Any, gamma_gamma: Any, value: Any, months: int) -> None:
    from ecrm.analysis import lifetime

    x, t_x, T = summary.frequency, summary.recency, summary.T
    alive = lifetime.bgnbd_probability_alive(bgnbd, x, t_x, T)
    month = 30.0 / lifetime.DAYS_PER_PERIOD[summary.period]
    purchases = lifetime.bgnbd_expected_purchases(bgnbd, months * month, x, t_x, T)
    spend = lifetime.gamma_gamma_expected_spend(gamma_gamma, x, summary.monetary)
    with open(output, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["customer_id", "frequency", "recency", "T", "monetary", "p_alive", "expected_purchases",
             "expected_spend", "clv"]
        )  # fmt: skip
        for row in zip(summary.customers, x, t_x, T, summary.monetary, alive, purchases, spend, value, strict=True):
            writer.writerow([row[0], int(row[1]), *(f"{v:.6g}" for v in row[2:])])


@click.command("rfm")
@transaction_options
@_as_of_option("The reference date: recency is measured from it and later rows are ignored")
@click.option(
    "--monetary",
    type=click.Choice(["total", "mean"]),
    default="total",
    show_default=True,
    help="M from total spend or mean spend per purchase day.",
)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write per-customer scores (CSV).")
@click.option("--json", "as_json", is_flag=True, help="Print segment counts as JSON.")
def rfm_command(
    transactions_path: Path,
    customer_col: str,
    date_col: str,
    amount_col: str,
    encoding: str,
    date_format: str | None,
    bad_rows_path: Path | None,
    as_of: str | None,
    monetary: str,
    output: Path | None,
    as_json: bool,
) -> None:
    """Score customers 1-5 on recency, frequency and monetary value, and name their R x F segment."""
    from ecrm.analysis.rfm import rfm

    reference = option_date(as_of, "--as-of", date_format)
    transactions = load_transactions(
        transactions_path,
        customer_col=customer_col,
        date_col=date_col,
        amount_col=amount_col,
        encoding=encoding,
        date_format=date_format,
        bad_rows_path=bad_rows_path,
    )
    try:
        scores = rfm(transactions, as_of=reference, monetary="mean" if monetary == "mean" else "total")
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    counts = scores.segment_counts()
    if output is not None:
        with open(output, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["customer_id", "recency_days", "frequency", "monetary", "r", "f", "m", "rfm", "segment"])
            for customer, days, count, money, r, f, m, segment in zip(
                scores.customers, scores.recency_days, scores.frequency, scores.monetary,
                scores.r_score, scores.f_score, scores.m_score, scores.segment, strict=True,
            ):  # fmt: skip
                writer.writerow([customer, int(days), int(count), f"{money:.2f}", r, f, m, f"{r}{f}{m}", segment])
    if as_json:
        click.echo(
            json.dumps(
                {"as_of": scores.as_of.isoformat(), "customers": len(scores), "monetary": monetary, "segments": counts},
                indent=2,
            )
        )
        return
    click.echo(f"{len(scores):,} customers, recency as of {scores.as_of.isoformat()}")
    width = max(len(name) for name in counts)
    for name, count in counts.items():
        click.echo(f"  {name:<{width}}  {count:>9,}  {count / len(scores):>6.1%}")
    if output is not None:
        click.echo(f"wrote {len(scores):,} customers to {output}")
