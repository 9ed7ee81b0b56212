"""`ecrm personalization evaluate` on a tiny CSV, and the published protocol's split and MAP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from ecrm.personalization.evaluation import Split, evaluate, popularity
from ecrm_ops.cli import main
from ecrm_ops.personalization.published import PUBLISHED, published_map, recognise, stratified_holdout

METRICS = {"precision", "recall", "ndcg", "map", "hit_rate", "coverage"}


@pytest.fixture
def interactions_csv(tmp_path: Path) -> Path:
    """Two tastes: even customers buy from p0-p5, odd ones from p6-p11; p0 and p6 are everyone's bestsellers."""
    lines = ["customer,product,stars,at"]
    for user in range(24):
        shelf = range(0, 6) if user % 2 == 0 else range(6, 12)
        for n, product in enumerate(shelf):
            if (user + product) % 3 != 0 or product in (0, 6):
                lines.append(f"c{user},p{product},{1 + (user + n) % 5},{1_700_000_000 + user * 100 + n}")
    path = tmp_path / "orders.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["personalization", "evaluate", *map(str, args)])
    return result.exit_code, result.output


def test_json_has_every_algorithm_beside_the_popularity_baseline(interactions_csv: Path) -> None:
    code, output = run("--interactions", interactions_csv, "--user-col", "customer", "--item-col", "product", "--json")
    assert code == 0, output
    report = json.loads(output)
    assert set(report) == {"popularity", "rp3beta", "ease", "cosine", "jaccard"}
    for metrics in report.values():
        assert set(metrics) == METRICS
        assert all(0.0 <= value <= 1.0 for value in metrics.values())
    # Two clear tastes: any item-based method must beat "the same bestsellers for everyone"
    assert report["ease"]["ndcg"] > report["popularity"]["ndcg"]
    assert report["rp3beta"]["ndcg"] > report["popularity"]["ndcg"]


def test_timestamps_add_the_trending_baseline_and_options_are_honoured(interactions_csv: Path) -> None:
    code, output = run(
        "--interactions", interactions_csv, "--user-col", "customer", "--item-col", "product",
        "--rating-col", "stars", "--min-rating", "2", "--timestamp-col", "at",
        "--split", "time", "--test-fraction", "0.3", "--k", "3", "--algorithms", "cosine", "--json",
    )  # fmt: skip
    assert code == 0, output
    assert set(json.loads(output)) == {"popularity", "trending", "cosine"}


def test_table_marks_the_default_and_the_lift_over_popularity(interactions_csv: Path) -> None:
    code, output = run("--interactions", interactions_csv, "--user-col", "customer", "--item-col", "product")
    assert code == 0, output
    assert "ease (default)" in output
    assert "baseline" in output.splitlines()[2]
    assert "published" not in output  # a tiny file is no public benchmark


def test_published_figures_are_printed_beside_ours_with_the_protocol_differences(interactions_csv: Path) -> None:
    args = ("--interactions", interactions_csv, "--user-col", "customer", "--item-col", "product")
    code, output = run(*args, "--compare-published", "movielens-100k", "--json")
    assert code == 0, output
    block = json.loads(output)["published"]
    assert block["results"]["SAR (Jaccard, time decay)"]["precision"] == pytest.approx(0.330753)
    assert set(block["ours_map_published_definition"]) == {"popularity", "rp3beta", "ease", "cosine", "jaccard"}
    assert any("split=random" in d for d in block["protocol_differs"])
    protocol = ("--split", "stratified", "--test-fraction", "0.25")
    code, table = run(*args, "--compare-published", "movielens-100k", *protocol)
    assert code == 0, table
    assert "(published)" in table
    assert "map*" in table
    assert "NOT like for like" not in table


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--user-col", "nobody"], "user column 'nobody' not found"),
        (["--min-rating", "3"], "--min-rating needs --rating-col"),
        (["--algorithms", "svd"], "unknown ['svd']"),
        (["--test-fraction", "1.5"], "--test-fraction"),
    ],
)
def test_bad_input_is_a_usage_error(interactions_csv: Path, extra: list[str], message: str) -> None:
    base = ["--interactions", str(interactions_csv), "--user-col", "customer", "--item-col", "product"]
    if extra[0] == "--user-col":
        base = base[:2] + base[4:]
    code, output = run(*base, *extra)
    assert code == 2
    assert message in output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--rating-col", "customer", "--min-rating", "3"], "column 'customer': 'c0' is not a number"),
        (["--timestamp-col", "product"], "column 'product': 'p0' is not a time (epoch seconds or ISO 8601)"),
    ],
)
def test_bad_values_are_listed_row_by_row(interactions_csv: Path, extra: list[str], message: str) -> None:
    base = ["--interactions", str(interactions_csv), "--user-col", "customer", "--item-col", "product"]
    code, output = run(*base, *extra)
    assert code == 1
    assert f"row 2, {message}" in output
    assert "more (--bad-rows FILE writes every one)" in output


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("customer,product\n")
    code, output = run("--interactions", empty, "--user-col", "customer", "--item-col", "product")
    assert code == 1
    assert "no interactions" in output


def test_stratified_holdout_holds_out_each_users_share_with_the_published_generator() -> None:
    # Given u1 with four items in file order and u2 with one
    rows = [("u1", "a", 1.0), ("u1", "b", 2.0), ("u1", "c", 3.0), ("u1", "d", 4.0), ("u2", "a", 5.0)]
    split = stratified_holdout(rows, test_fraction=0.25, seed=42)
    # Then: round(4 * 0.75) = 3 train; the held-out one is the last of RandomState(42).permutation(4)
    held = "abcd"[int(np.random.RandomState(42).permutation(4)[3])]
    assert split.test == {"u1": {held}}  # u2: round(0.75) = 1 train, nothing left to test
    assert sorted(i for u, i, _ in split.train if u == "u1") == sorted(set("abcd") - {held})
    assert stratified_holdout(rows, seed=42) == split


def test_published_map_divides_by_every_held_out_item() -> None:
    # hits at 1 and 3 of [a, x, b]; four held out: (1/1 + 2/3) / 4
    assert published_map({"u": ["a", "x", "b"]}, {"u": {"a", "b", "c", "d"}}, 3) == pytest.approx((1 + 2 / 3) / 4)
    # the harness' MAP divides by min(4, 3) instead
    split = Split([("u", "z", 1.0)], {"u": {"a", "b", "c", "d"}})
    assert evaluate(lambda u, k, ex: ["a", "x", "b"], split, k=3).map == pytest.approx((1 + 2 / 3) / 3)
    assert popularity([])("u", 3, set()) == []


def test_movielens_100k_is_recognised_by_its_shape() -> None:
    assert recognise(100_000, 943, 1_682) is PUBLISHED["movielens-100k"]
    assert recognise(100_000, 943, 1_681) is None
