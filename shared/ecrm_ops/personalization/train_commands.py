"""`ecrm personalization train`: the recommender's training run, on a CSV (a dry run) or on the local cloud.

On a CSV it runs what the scheduled job runs (`training.run_training`: the latest interactions held out by time,
the model measured against popularity on them, then trained on everything) and writes nothing: a deployer checks
on their own export that the model beats "the same bestsellers for everyone" before switching it on. With
`--local` it invokes the deployed job on the running local cloud instead (`PersonalizationTrainingJob`), which
reads the lake, writes the version to the engine's table and serves it when it beats popularity.

JSON (`--json`): the training report (version, algorithm, data, evaluation protocol, metrics by
{"model", "popularity"}, activated, reason); with `--local`, the job's report as it returned it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ecrm_ops.csv_input import BadRows, MissingColumns, input_options, open_csv, report_bad_rows
from ecrm_ops.personalization.interactions_file import TIMES, InteractionReader
from ecrm_ops.user_errors import OperatorError

if TYPE_CHECKING:
    from ecrm.personalization.training import Interactions

TRAINING_FUNCTION = "PersonalizationTrainingJob"  # part of the job's function name (its logical id)
METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "coverage")


@click.command("train")
@click.option(
    "--interactions",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV of interactions with a header row (a dry run: nothing is written).",
)
@click.option("--user-col", help="Column of the customer (user) id.")
@click.option("--item-col", help="Column of the item (product) id.")
@click.option(
    "--timestamp-col", default=None, help=f"Column of the time ({TIMES}, or --date-format); without it, file order."
)
@click.option("--type-col", default=None, help="Column of the interaction type (purchases make baskets).")
@click.option("--category-col", default=None, help="Column of the item's category.")
@click.option("--k", type=click.IntRange(min=1, max=50), default=10, show_default=True, help="List length measured.")
@click.option(
    "--test-fraction",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.2,
    show_default=True,
    help="Share of the latest interactions held out.",
)
@click.option("--local", "on_local_cloud", is_flag=True, help="Run the deployed job on the running local cloud.")
@click.option("--days", type=click.IntRange(min=1), default=None, help="With --local: how far back the job reads.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@input_options
def train_command(
    path: Path | None,
    user_col: str | None,
    item_col: str | None,
    timestamp_col: str | None,
    type_col: str | None,
    category_col: str | None,
    k: int,
    test_fraction: float,
    on_local_cloud: bool,
    days: int | None,
    as_json: bool,
    encoding: str,
    date_format: str | None,
    bad_rows_path: Path | None,
) -> None:
    """Train the recommender and measure it against popularity on the latest interactions held out.

    A dry run on --interactions (nothing written); --local runs the training job of the local cloud on its lake.
    """
    if on_local_cloud:
        if path is not None:
            raise click.UsageError("--local trains on the local cloud's lake: give no --interactions")
        report = _run_local_job(days)
    else:
        if path is None or not user_col or not item_col:
            raise click.UsageError("give --interactions, --user-col and --item-col (or --local)")
        if days is not None:
            raise click.UsageError("--days applies to --local; a CSV is read whole")
        columns = {
            "user": user_col,
            "item": item_col,
            "time": timestamp_col,
            "type": type_col,
            "category": category_col,
        }
        data = _read(path, columns, encoding, date_format, bad_rows_path)
        report = _dry_run(path, data, timestamp_col is not None, k, test_fraction)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for line in report_lines(report):
        click.echo(line)


def _read(
    path: Path, columns: dict[str, str | None], encoding: str, date_format: str | None, bad_rows_path: Path | None
) -> Interactions:
    """The interactions the job would train on: rows without a user or an item skipped (and counted), as the job
    does; a time that cannot be read is a bad row, all of them listed."""
    from ecrm.personalization.training import Interactions

    data = Interactions()
    try:
        with open_csv(path, encoding=encoding) as table:
            reader = InteractionReader(table, columns, date_format=date_format)
            for row in reader:
                if not row.user or not row.item:
                    data.skipped += 1
                elif not reader.problems:
                    data.add(row.user, row.item, row.at, row.values.get("type", ""), row.values.get("category") or None)
    except MissingColumns as error:
        raise click.BadParameter(str(error), param_hint="'--interactions'") from None
    if reader.problems:
        raise report_bad_rows(BadRows(path.name, reader.rows_read, reader.problems), bad_rows_path)
    if not data:
        raise OperatorError(f"{path.name}: no interactions to train on ({data.skipped} rows skipped)")
    return data


def _dry_run(path: Path, data: Interactions, timed: bool, k: int, test_fraction: float) -> dict[str, Any]:
    from ecrm.core.clock import SystemClock
    from ecrm.personalization.training import TrainingSettings, run_training

    settings = TrainingSettings(k=k, test_fraction=test_fraction)
    report = run_training(data, settings=settings, clock=SystemClock()).to_dict()
    if not timed:  # times were line numbers: no dates to show
        report["data"] = {k: v for k, v in report["data"].items() if k not in ("from", "to")} | {"time": "file order"}
    return {"source": path.name, **report}


def _run_local_job(days: int | None) -> dict[str, Any]:
    from botocore.exceptions import EndpointConnectionError

    from ecrm_ops.local_cloud import invoke_function

    try:
        name, failed, payload = invoke_function(TRAINING_FUNCTION, {"days": days} if days else {})
    except (FileNotFoundError, EndpointConnectionError):
        raise OperatorError("no local cloud is running here: start one with `ecrm local up`") from None
    except LookupError as exc:
        raise OperatorError(str(exc)) from None
    if failed or not isinstance(payload, dict):
        raise OperatorError(f"{name} failed: {payload}")
    return payload


def report_lines(report: Mapping[str, Any]) -> list[str]:
    """A training report as a reader wants it: what was read, the held-out table, what happened to the version."""
    if report.get("status") == "skipped":
        return [f"nothing trained: {report.get('reason')}"]
    data, protocol, metrics = report.get("data", {}), report.get("evaluation", {}), report.get("metrics", {})
    source = f"{report['source']}: " if report.get("source") else ""
    span = f"{str(data['from'])[:10]} to {str(data['to'])[:10]}" if "from" in data else "in file order"
    lines = [
        f"{source}{data.get('interactions', 0):,} interactions of {data.get('customers', 0):,} customers with "
        f"{data.get('items', 0):,} items, {span}"
        + (f" ({data['skipped_rows']} rows skipped)" if data.get("skipped_rows") else "")
    ]
    k = protocol.get("k", 10)
    if not metrics:
        lines.append(f"not measured: {protocol.get('skipped', 'too few interactions')}")
    else:
        lines.append(
            f"held out: the latest {protocol.get('test_fraction', 0.2):.0%} of interactions, "
            f"{protocol.get('test_customers', 0):,} customers to rank them for; K={k}"
        )
        lines.append(f"  {'':<22}" + "".join(f"{m:>10}" for m in METRICS))
        baseline = metrics["popularity"]["ndcg"]
        for name in ("model", "popularity"):
            label = f"{report.get('algorithm', 'model')} (ours)" if name == "model" else "popularity"
            values = metrics[name]
            lines.append(f"  {label:<22}" + "".join(f"{values.get(m, 0.0):>10.4f}" for m in METRICS))
        ours = metrics["model"]["ndcg"]
        lift = f"{ours / baseline - 1:+.0%}" if baseline else "n/a (popularity ranks nothing held out)"
        lines.append(f"  NDCG@{k} against popularity: {lift}")
    version = report.get("version", "?")
    state = "serving" if report.get("activated") else "not serving"
    lines.append(f"version {version}: {state} ({report.get('reason', '')})")
    if report.get("artifact"):
        lines.append(f"model: {report['artifact']}")
    if report.get("written"):
        lines.append("written: " + ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in report["written"].items()))
    return lines
