"""`ecrm analysis clusters` and `ecrm analysis churn`: train the behaviour models on a CSV and report.

numpy and scikit-learn are imported inside the commands so that `ecrm --help` stays fast. A wrong
option or column is a usage error (exit 2); a file with bad rows lists every one (exit 1).

Both take the reference date as `--as-of`, like `ecrm analysis rfm` and the model job: the day the
customers are described as of. Churn learns from what happened in the window after it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ecrm_ops.analysis.transactions_file import load_transactions, transaction_options
from ecrm_ops.csv_input import option_date

if TYPE_CHECKING:
    from ecrm.analysis.artifacts import ModelArtifact
    from ecrm.analysis.transactions import Transactions

F = TypeVar("F", bound=Callable[..., Any])


def model_options(command: F) -> F:
    """The file and its columns (with the optional category), the output, and where to save the model."""
    for option in reversed(
        [
            click.option("--category-col", help="Column with the product category (optional)."),
            click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
            click.option(
                "--save-model",
                type=click.Path(file_okay=False),
                help="Directory to write the trained model to, as a JSON artifact.",
            ),
        ]
    ):
        command = option(command)
    return transaction_options(command)


def _read(
    path: Path,
    customer_col: str,
    date_col: str,
    amount_col: str,
    category_col: str | None,
    encoding: str,
    date_format: str | None,
    bad_rows_path: Path | None,
) -> Transactions:
    return load_transactions(
        path,
        customer_col=customer_col,
        date_col=date_col,
        amount_col=amount_col,
        category_col=category_col,
        encoding=encoding,
        date_format=date_format,
        bad_rows_path=bad_rows_path,
    )


def _day(value: date | None, tx: Transactions) -> int:
    from ecrm.analysis.transactions import to_day

    return int(tx.day.max()) if value is None else to_day(value)


def _save(artifact: ModelArtifact, directory: str) -> Path:
    path = Path(directory) / f"{artifact.kind}-{artifact.version}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(artifact.to_json(), encoding="utf-8")
    return path


def _source(transactions_file: Path, **columns: str | None) -> dict[str, Any]:
    """What the model was trained on: the file's name (not its location) and the columns read."""
    return {"source": Path(transactions_file).name, **{k: v for k, v in columns.items() if v is not None}}


@click.command("clusters")
@model_options
@click.option(
    "--as-of",
    help="The reference date: customers as of this day, later rows ignored "
    "(YYYY-MM-DD or --date-format; default: the last transaction).",
)
@click.option("--k-min", default=2, show_default=True, type=click.IntRange(min=2), help="Fewest clusters to try.")
@click.option("--k-max", default=8, show_default=True, type=click.IntRange(min=2), help="Most clusters to try.")
def clusters_command(
    transactions_path: Path,
    customer_col: str,
    date_col: str,
    amount_col: str,
    encoding: str,
    date_format: str | None,
    bad_rows_path: Path | None,
    category_col: str | None,
    as_json: bool,
    save_model: str | None,
    as_of: str | None,
    k_min: int,
    k_max: int,
) -> None:
    """Group customers by behaviour (KMeans; k by mean silhouette) and describe each group."""
    from ecrm.analysis.clusters import clusters_artifact, train_clusters
    from ecrm.analysis.features import customer_features
    from ecrm.analysis.transactions import from_day

    if k_max < k_min:
        raise click.BadParameter(f"--k-max ({k_max}) is below --k-min ({k_min})", param_hint="'--k-max'")
    reference = option_date(as_of, "--as-of", date_format)
    tx = _read(
        transactions_path, customer_col, date_col, amount_col, category_col, encoding, date_format, bad_rows_path
    )
    as_of_day = _day(reference, tx)
    try:
        features = customer_features(tx, as_of_day)
        training = train_clusters(features, k_min=k_min, k_max=k_max)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    result = {"as_of": from_day(as_of_day).isoformat(), **training.to_dict()}
    if save_model:
        data = _source(
            transactions_path,
            customer_col=customer_col,
            date_col=date_col,
            amount_col=amount_col,
            category_col=category_col,
        )
        artifact = clusters_artifact(training, trained_at=datetime.now(UTC), data={"as_of": result["as_of"], **data})
        result["saved_model"] = str(_save(artifact, save_model))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    features_used = ", ".join(training.model.feature_names)
    click.echo(f"{result['customers']:,} customers as of {result['as_of']}; features: {features_used}")
    click.echo(f"k by {result['criterion']}:")
    for k, value in training.silhouette_by_k.items():
        click.echo(f"  k={k}  {value:.3f}{'  <- chosen' if k == training.k else ''}")
    for profile in training.profiles:
        click.echo(f"\n{profile.cluster + 1}. {profile.name}: {profile.size:,} customers ({profile.share:.1%})")
        click.echo(f"   {profile.description}")
    if "saved_model" in result:
        click.echo(f"\nmodel written to {result['saved_model']}")


@click.command("churn")
@model_options
@click.option(
    "--as-of",
    help="The reference date: customers are described from rows up to this day, and churned = no purchase in "
    "the window after it (YYYY-MM-DD or --date-format; default: the last transaction minus the window).",
)
@click.option("--cutoff", hidden=True, help="The former name of --as-of.")
@click.option("--window-days", default=90, show_default=True, type=click.IntRange(min=1), help="Length of the window.")
def churn_command(
    transactions_path: Path,
    customer_col: str,
    date_col: str,
    amount_col: str,
    encoding: str,
    date_format: str | None,
    bad_rows_path: Path | None,
    category_col: str | None,
    as_json: bool,
    save_model: str | None,
    as_of: str | None,
    cutoff: str | None,
    window_days: int,
) -> None:
    """Train a churn propensity model and report how well it does on held-out customers."""
    from ecrm.analysis.churn import churn_artifact, train_churn

    if as_of is not None and cutoff is not None:
        raise click.UsageError("--cutoff is the former name of --as-of: give one of them")
    reference = option_date(as_of or cutoff, "--as-of" if cutoff is None else "--cutoff", date_format)
    tx = _read(
        transactions_path, customer_col, date_col, amount_col, category_col, encoding, date_format, bad_rows_path
    )
    cutoff_day = _day(reference, tx) if reference is not None else int(tx.day.max()) - window_days
    try:
        training = train_churn(tx, cutoff_day=cutoff_day, window_days=window_days)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    report = training.report
    result = report.to_dict()
    if save_model:
        data = _source(
            transactions_path,
            customer_col=customer_col,
            date_col=date_col,
            amount_col=amount_col,
            category_col=category_col,
        )
        result["saved_model"] = str(
            _save(churn_artifact(training, trained_at=datetime.now(UTC), data=data), save_model)
        )
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(
        f"churn = no purchase in the {report.window_days} days after {report.cutoff}: "
        f"{report.churned:,} of {report.customers:,} customers ({report.base_rate:.1%})"
    )
    click.echo(f"trained on {report.train_customers:,}, measured on {report.test_customers:,} held-out customers:")
    click.echo(f"  ROC AUC   {report.roc_auc:.3f}")
    click.echo(f"  Brier     {report.brier:.4f}  (predicting the base rate: {report.brier_base_rate:.4f})")
    click.echo(f"  log loss  {report.log_loss:.4f}")
    click.echo("calibration by decile of predicted risk:")
    click.echo(f"  {'decile':>6} {'customers':>10} {'predicted':>10} {'observed':>10}")
    for number, row in enumerate(report.calibration, start=1):
        click.echo(f"  {number:>6} {row.count:>10,} {row.mean_predicted:>10.1%} {row.observed_rate:>10.1%}")
    click.echo("most influential features (held-out AUC lost when shuffled; direction, other features held fixed):")
    for influence in report.top_features:
        direction = "raises risk" if influence.coefficient > 0 else "lowers risk"
        click.echo(f"  {influence.feature:<28} {influence.auc_drop:>7.4f}  {direction}")
    if "saved_model" in result:
        click.echo(f"model written to {result['saved_model']}")
