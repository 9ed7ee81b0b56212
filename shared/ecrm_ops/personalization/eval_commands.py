"""`ecrm personalization evaluate`: every algorithm side by side with the popularity baseline, offline.

Reads a CSV of interactions, holds some out (`evaluation.holdout`, or the published per-user split), trains
each algorithm of `recommenders` on the rest, and scores every one through the same harness
(`evaluation.evaluate`) and the same request path the engine runs (`recommend_for_user`). On a data set
with published figures (`published.py`) it prints them beside ours, with the protocol and where ours differs.

JSON (`--json`): one object keyed by algorithm, each {precision, recall, ndcg, map, hit_rate, coverage};
when published figures are compared, one more key, "published", holds them (it is not an algorithm).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from ecrm_ops.csv_input import BadRows, MissingColumns, input_options, open_csv, report_bad_rows
from ecrm_ops.personalization.interactions_file import TIMES, InteractionReader
from ecrm_ops.personalization.published import PUBLISHED
from ecrm_ops.user_errors import OperatorError

if TYPE_CHECKING:
    from ecrm.personalization.evaluation import Interaction, Recommender, Split

    from ecrm_ops.personalization.published import PublishedBenchmark

METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "coverage")
ITEM_BASED = ("rp3beta", "ease", "cosine", "jaccard")


@dataclass(frozen=True)
class LoadedInteractions:
    interactions: list[Interaction]
    raw_rows: int
    raw_users: int
    raw_items: int
    skipped: int  # rows without a user or an item
    has_time: bool


class RecordingRecommender:
    """Passes rankings through and keeps what the harness scored, for metrics the harness does not compute."""

    def __init__(self, recommend: Recommender) -> None:
        self.recommend = recommend
        self.rankings: dict[str, list[str]] = {}

    def __call__(self, user: str, k: int, exclude: set[str]) -> list[str]:
        ranked = self.recommend(user, k, exclude)
        self.rankings[user] = [i for i in ranked if i not in exclude][:k]
        return ranked


@click.command("evaluate")
@click.option("--interactions", "path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--user-col", required=True, help="Column of the customer (user) id.")
@click.option("--item-col", required=True, help="Column of the item (product) id.")
@click.option("--rating-col", default=None, help="Column of an explicit rating, to keep only --min-rating and up.")
@click.option("--min-rating", type=float, default=None, help="Keep interactions rated at least this (implicit).")
@click.option(
    "--timestamp-col", default=None, help=f"Column of the time ({TIMES}, or --date-format); without it, file order."
)
@click.option(
    "--split",
    type=click.Choice(["random", "time", "stratified"]),
    default="random",
    show_default=True,
    help="random: pairs at random; time: the latest pairs; stratified: the fraction of each user's pairs.",
)
@click.option(
    "--test-fraction",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.2,
    show_default=True,
)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--k", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--algorithms", default=None, help=f"Comma-separated subset of {', '.join(ITEM_BASED)} (all by default).")
@click.option(
    "--compare-published",
    type=click.Choice(["auto", "none", *PUBLISHED]),
    default="auto",
    show_default=True,
    help="Published figures to print beside ours; auto: when the data set is recognised.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@input_options
def evaluate_command(
    path: Path,
    user_col: str,
    item_col: str,
    rating_col: str | None,
    min_rating: float | None,
    timestamp_col: str | None,
    split: str,
    test_fraction: float,
    seed: int,
    k: int,
    algorithms: str | None,
    compare_published: str,
    as_json: bool,
    encoding: str,
    date_format: str | None,
    bad_rows_path: Path | None,
) -> None:
    """Evaluate every recommender against the popularity baseline on held-out interactions.

    On MovieLens 100K, --split stratified --test-fraction 0.25 follows the published figures' protocol.
    """
    from ecrm.personalization import evaluation
    from ecrm.personalization import recommenders as rec

    from ecrm_ops.personalization import published

    if min_rating is not None and rating_col is None:
        raise click.UsageError("--min-rating needs --rating-col")
    chosen = _chosen_algorithms(algorithms)
    columns = {"user": user_col, "item": item_col, "rating": rating_col, "time": timestamp_col}
    loaded = _load(path, columns, min_rating, encoding, date_format, bad_rows_path)
    if split == "stratified":
        held = published.stratified_holdout(loaded.interactions, test_fraction=test_fraction, seed=seed)
    else:
        method: Literal["random", "time"] = "time" if split == "time" else "random"
        held = evaluation.holdout(loaded.interactions, method=method, test_fraction=test_fraction, seed=seed)
    if not held.test:
        raise click.UsageError("no user has held-out interactions and something in training: too little data")

    config = rec.TrainingConfig(together_neighbours=0)
    users = [u for u, _, _ in held.train]
    items = [i for _, i, _ in held.train]
    times = [at for _, _, at in held.train] if loaded.has_time else None
    history = held.train_items_by_user
    n_items = len(set(items))
    default = rec.resolve_algorithm(config, n_items)
    candidates: dict[str, Recommender] = {"popularity": evaluation.popularity(held.train)}
    if times is not None:
        candidates["trending"] = _ranking(rec.ranked_by_recency(items, times, half_life=config.trending_half_life))
    for name in sorted(chosen, key=lambda a: (a != default, ITEM_BASED.index(a))):
        if name == "ease" and n_items > config.ease_max_items:
            click.echo(f"ease skipped: {n_items} items > {config.ease_max_items} (dense inverse)", err=True)
            continue
        model = rec.train(users, items, config=replace(config, algorithm=name))  # type: ignore[arg-type]
        candidates[name] = _for_you(rec.recommend_for_user, model, history)

    benchmark = _benchmark(compare_published, loaded)
    recorded = {name: RecordingRecommender(r) for name, r in candidates.items()}
    results = evaluation.compare(recorded, held, k=k)
    report: dict[str, Any] = dict(results)
    if benchmark is not None:
        ours_map = {n: published.published_map(r.rankings, held.test, k) for n, r in recorded.items()}
        run = {"split": split, "test_fraction": test_fraction, "seed": seed, "k": k}
        report["published"] = _published_block(benchmark, ours_map, run, min_rating)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    _print_table(path, loaded, held, split, test_fraction, seed, k, default, results, report.get("published"))


def _chosen_algorithms(raw: str | None) -> list[str]:
    if raw is None:
        return list(ITEM_BASED)
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in ITEM_BASED]
    if unknown or not names:
        raise click.BadParameter(f"unknown {unknown}; choose from {', '.join(ITEM_BASED)}", param_hint="--algorithms")
    return names


def _load(
    path: Path,
    columns: dict[str, str | None],
    min_rating: float | None,
    encoding: str,
    date_format: str | None,
    bad_rows_path: Path | None,
) -> LoadedInteractions:
    """Rows to (user, item, time) with the raw counts that recognise a public data set; every bad row listed."""
    interactions: list[Interaction] = []
    users: set[str] = set()
    items: set[str] = set()
    skipped = 0
    try:
        with open_csv(path, encoding=encoding) as table:
            reader = InteractionReader(table, columns, date_format=date_format, numbers=("rating",))
            for row in reader:
                users.add(row.user)
                items.add(row.item)
                if not row.user or not row.item:
                    skipped += 1
                elif min_rating is None or float(row.values["rating"]) >= min_rating:
                    interactions.append((row.user, row.item, row.at))
    except MissingColumns as error:
        raise click.BadParameter(str(error), param_hint="'--interactions'") from None
    if reader.problems:
        raise report_bad_rows(BadRows(path.name, reader.rows_read, reader.problems), bad_rows_path)
    if not interactions:
        raise OperatorError(f"{path.name}: no interactions to evaluate ({reader.rows_read} rows read)")
    return LoadedInteractions(
        interactions, reader.rows_read, len(users), len(items), skipped, columns.get("time") is not None
    )


def _for_you(recommend: Callable[..., list[str]], model: Any, history: dict[str, set[str]]) -> Recommender:
    def run(user: str, k: int, exclude: set[str]) -> list[str]:
        return recommend(model, history.get(user, ()), k, exclude)

    return run


def _ranking(ranked: list[tuple[str, float]]) -> Recommender:
    order = [item for item, _ in ranked]

    def run(user: str, k: int, exclude: set[str]) -> list[str]:
        return [i for i in order if i not in exclude][:k]

    return run


def _benchmark(choice: str, loaded: LoadedInteractions) -> PublishedBenchmark | None:
    from ecrm_ops.personalization import published

    if choice == "none":
        return None
    if choice == "auto":
        return published.recognise(loaded.raw_rows, loaded.raw_users, loaded.raw_items)
    return published.PUBLISHED[choice]


def _published_block(
    benchmark: PublishedBenchmark, ours_map: dict[str, float], run: dict[str, Any], min_rating: float | None
) -> dict[str, Any]:
    expected = benchmark.reproduce.items()
    differs = [f"{key}={run[key]} (published: {value})" for key, value in expected if run[key] != value]
    if min_rating is not None:
        differs.append(f"min_rating={min_rating:g} (published: every rating)")
    return {
        "name": benchmark.name,
        "data_set": benchmark.data_set,
        "source": benchmark.source,
        "protocol": benchmark.protocol,
        "map_definition": benchmark.map_definition,
        "differences": list(benchmark.differences),
        "protocol_differs": differs,
        "results": {
            r.algorithm: {"precision": r.precision, "recall": r.recall, "ndcg": r.ndcg, "map": r.map}
            for r in benchmark.results
        },
        "ours_map_published_definition": ours_map,
    }


def _print_table(
    path: Path,
    loaded: LoadedInteractions,
    held: Split,
    split: str,
    test_fraction: float,
    seed: int,
    k: int,
    default: str,
    results: dict[str, dict[str, float]],
    block: dict[str, Any] | None,
) -> None:
    pairs = len(held.train) + sum(len(v) for v in held.test.values())
    echo = click.echo
    echo(
        f"{path.name}: {len(loaded.interactions)} interactions, {pairs} distinct user-item pairs; "
        f"split {split} (test {test_fraction:g}, seed {seed}); {len(held.test)} test users; K={k}"
    )
    if loaded.skipped:
        echo(f"skipped {loaded.skipped} rows without a user or an item", err=True)
    columns = [*METRICS[:4], *(["map*"] if block else []), *METRICS[4:]]
    width = max(26, *(len(n) + 11 for n in results), *(len(n) + 2 for n in (block or {}).get("results", {})))
    echo(f"{'algorithm':<{width}}" + "".join(f"{c:>10}" for c in columns) + "   ndcg vs popularity")
    base = results["popularity"]["ndcg"]
    for name, metrics in results.items():
        values = dict(metrics) | ({"map*": block["ours_map_published_definition"][name]} if block else {})
        label = f"{name} (default)" if name == default else name
        lift = "baseline" if name == "popularity" else (f"{values['ndcg'] / base - 1:+.0%}" if base else "-")
        echo(f"{label:<{width}}" + "".join(f"{values[c]:>10.4f}" for c in columns) + f"   {lift}")
    if block is None:
        return
    for name, figures in block["results"].items():
        cells = {"precision": figures["precision"], "recall": figures["recall"], "ndcg": figures["ndcg"]}
        cells["map*"] = figures["map"]
        row = "".join(f"{cells[c]:>10.4f}" if c in cells else f"{'-':>10}" for c in columns)
        lift = f"{figures['ndcg'] / base - 1:+.0%}" if base else "-"
        echo(f"{name:<{width}}{row}   {lift}  (published)")
    echo(f"\npublished: {block['data_set']}\n  source: {block['source']}\n  protocol: {block['protocol']}")
    echo(f"  map*: {block['map_definition']}")
    for difference in block["differences"]:
        echo(f"  differs: {difference}")
    if block["protocol_differs"]:
        echo("  NOT like for like, this run has " + "; ".join(block["protocol_differs"]))
