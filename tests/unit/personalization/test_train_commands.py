"""`ecrm personalization train`: a dry run on a CSV against popularity, and the local cloud's job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from ecrm_ops.cli import main

COLUMNS = ("--user-col", "customer", "--item-col", "product")


@pytest.fixture
def orders_csv(tmp_path: Path) -> Path:
    """Two tastes over two categories, one order a day per customer: p0 and p6 are everyone's bestsellers."""
    lines = ["customer,product,at,kind,category"]
    for user in range(40):
        shelf = range(0, 6) if user % 2 == 0 else range(6, 12)
        for day, product in enumerate(shelf):
            if (user + product) % 3 != 0 or product in (0, 6):
                at = 1_760_000_000 + day * 86_400 + user * 60
                lines.append(f"c{user},p{product},{at},order_completed,{'outdoor' if product < 6 else 'kitchen'}")
    path = tmp_path / "orders.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["personalization", "train", *map(str, args)])
    return result.exit_code, result.output


def test_a_dry_run_measures_the_model_against_popularity_and_writes_nothing(orders_csv: Path) -> None:
    # Given a CSV with two clear tastes; When trained as a dry run
    code, output = run("--interactions", orders_csv, *COLUMNS, "--timestamp-col", "at", "--type-col", "kind", "--json")
    # Then the report holds both rankings' held-out metrics, and nothing was written or activated
    assert code == 0, output
    report = json.loads(output)
    assert set(report["metrics"]) == {"model", "popularity"}
    assert report["metrics"]["model"]["ndcg"] > report["metrics"]["popularity"]["ndcg"]
    assert report["evaluation"]["split"] == "time"
    assert report["data"]["interactions"] == len(orders_csv.read_text().splitlines()) - 1
    assert (report["activated"], report["artifact"], report["written"]) == (False, None, {})
    assert report["source"] == "orders.csv"


def test_the_table_shows_ours_beside_popularity_and_the_lift(orders_csv: Path) -> None:
    code, output = run("--interactions", orders_csv, *COLUMNS, "--timestamp-col", "at", "--category-col", "category")
    assert code == 0, output
    lines = output.splitlines()
    assert "2025-10-09 to 2025-10-14" in lines[0]
    assert "customers to rank them for; K=10" in lines[1]
    assert "(ours)" in lines[3]
    assert lines[4].strip().startswith("popularity")
    assert "NDCG@10 against popularity: +" in output
    assert "dry run: nothing written" in output
    # at K=3 popularity's top items are everyone's history: nothing held out is ranked, and the table says so
    code, output = run("--interactions", orders_csv, *COLUMNS, "--timestamp-col", "at", "--k", "3")
    assert "NDCG@3 against popularity: n/a (popularity ranks nothing held out)" in output


def test_without_a_time_column_file_order_is_time(orders_csv: Path) -> None:
    code, output = run("--interactions", orders_csv, *COLUMNS, "--json")
    assert code == 0, output
    assert json.loads(output)["data"]["time"] == "file order"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user-col", "customer", "--item-col", "product"], "give --interactions"),
        (["--user-col", "nobody", "--item-col", "product", "--interactions"], "user column 'nobody' not found"),
        (["--local", "--interactions"], "give no --interactions"),
        ([*COLUMNS, "--days", "30", "--interactions"], "--days applies to --local"),
        ([*COLUMNS, "--test-fraction", "1.5", "--interactions"], "--test-fraction"),
    ],
)
def test_bad_input_is_a_usage_error(orders_csv: Path, args: list[str], message: str) -> None:
    full = [*args, str(orders_csv)] if args[-1] == "--interactions" else args
    code, output = run(*full)
    assert code == 2
    assert message in output


def test_a_file_without_rows_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("customer,product\n,p1\n")
    code, output = run("--interactions", empty, *COLUMNS)
    assert code == 1
    assert "no interactions to train on (1 rows skipped)" in output


def test_local_invokes_the_training_job_of_the_local_cloud(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a local cloud whose job answers with a report
    calls: list[tuple[str, Any]] = []
    report = {
        "status": "trained",
        "version": "20261123T101530123Z",
        "algorithm": "rp3beta",
        "data": {"interactions": 120, "customers": 30, "items": 12, "from": "2026-01-01", "to": "2026-11-23"},
        "evaluation": {"split": "time", "test_fraction": 0.2, "k": 10, "test_customers": 9},
        "metrics": {"model": {"ndcg": 0.3}, "popularity": {"ndcg": 0.2}},
        "activated": True,
        "reason": "no model was serving",
        "artifact": "s3://lake/models/recommender/20261123T101530123Z.json",
        "written": {"model_items": 14, "for_you_lists": 30},
    }

    def invoke(name: str, event: Any, state: Any = None) -> tuple[str, bool, Any]:
        calls.append((name, event))
        return f"EcrmPlatform-{name}Function0A1B2C3D", False, report

    monkeypatch.setattr("ecrm_ops.local_cloud.invoke_function", invoke)
    # When
    code, output = run("--local", "--days", "90")
    # Then the job ran with the window, and its report is shown
    assert code == 0, output
    assert calls == [("PersonalizationTrainingJob", {"days": 90})]
    assert "NDCG@10 against popularity: +50%" in output
    assert "version 20261123T101530123Z: serving (no model was serving)" in output
    assert "written: 14 model items, 30 for you lists" in output


def test_a_failed_or_skipped_local_job_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(
        [
            ("job", False, {"status": "skipped", "reason": "no interactions with an item since 2025-11-23"}),
            ("job", True, {"errorMessage": "boom"}),
        ]
    )
    monkeypatch.setattr("ecrm_ops.local_cloud.invoke_function", lambda name, event, state=None: next(answers))
    code, output = run("--local")
    assert (code, output.strip()) == (0, "nothing trained: no interactions with an item since 2025-11-23")
    code, output = run("--local")
    assert code == 1
    assert "job failed" in output
