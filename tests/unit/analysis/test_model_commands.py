"""`ecrm analysis clusters` and `ecrm analysis churn` on a CSV written from the synthetic generator."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from ecrm.analysis.artifacts import ModelArtifact
from ecrm.analysis.transactions import from_day
from ecrm_ops.analysis.synthetic import synthetic_transactions
from ecrm_ops.cli import main

CUTOFF = "2025-12-31"  # the generator's default cutoff; its data runs 90 days past it


@pytest.fixture(scope="module")
def orders_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = synthetic_transactions(3_000, seed=5)
    tx = data.transactions
    assert tx.categories is not None
    assert tx.category_index is not None
    path = tmp_path_factory.mktemp("analysis") / "orders.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["order_date", "customer", "total", "category"])
        for customer, day, amount, category in zip(
            tx.customer_index, tx.day, tx.amount, tx.category_index, strict=True
        ):
            writer.writerow(
                [from_day(day).isoformat(), tx.customers[customer], f"{amount:.2f}", tx.categories[category]]
            )
    return path


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, ["analysis", *args], catch_exceptions=False)


def _columns(path: Path, *, category: bool = True) -> list[str]:
    columns = ["--transactions", str(path), "--customer-col", "customer", "--date-col", "order_date"]
    return [*columns, "--amount-col", "total", *(["--category-col", "category"] if category else [])]


def test_clusters_json(orders_csv: Path) -> None:
    result = _run("clusters", *_columns(orders_csv), "--as-of", CUTOFF, "--k-max", "6", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["as_of"] == CUTOFF
    assert report["customers"] == 3_000
    assert set(report["silhouette_by_k"]) == {"2", "3", "4", "5", "6"}
    assert report["k"] == len(report["clusters"]) == 4
    assert sum(cluster["size"] for cluster in report["clusters"]) == 3_000
    assert all(cluster["name"] and "sd)" in cluster["description"] for cluster in report["clusters"])


def test_clusters_text_and_saved_model(orders_csv: Path, tmp_path: Path) -> None:
    result = _run(
        "clusters", *_columns(orders_csv), "--k-min", "3", "--k-max", "5", "--save-model", str(tmp_path / "models")
    )

    assert result.exit_code == 0, result.output
    assert "<- chosen" in result.output
    assert "customers (" in result.output
    (saved,) = (tmp_path / "models").glob("clusters-*.json")
    artifact = ModelArtifact.from_json(saved.read_text(encoding="utf-8"))
    assert artifact.kind == "clusters"
    assert artifact.data["source"] == "orders.csv"  # the file's name, not where it lives
    assert artifact.data["as_of"] == "2026-03-31"  # default: the last day of the data


def test_churn_json_and_saved_model(orders_csv: Path, tmp_path: Path) -> None:
    result = _run("churn", *_columns(orders_csv), "--as-of", CUTOFF, "--json", "--save-model", str(tmp_path))

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["roc_auc"] > 0.75
    assert report["customers"] == 3_000
    assert report["train_customers"] + report["test_customers"] == 3_000
    assert len(report["calibration"]) == 10
    assert report["top_features"][0]["feature"]
    artifact = ModelArtifact.from_json(Path(report["saved_model"]).read_text(encoding="utf-8"))
    assert artifact.kind == "churn"
    assert artifact.metrics["roc_auc"] == report["roc_auc"]
    assert artifact.data["cutoff"] == CUTOFF


def test_churn_text_without_categories(orders_csv: Path) -> None:
    result = _run("churn", *_columns(orders_csv, category=False), "--as-of", "2025-11-30", "--window-days", "60")

    assert result.exit_code == 0, result.output
    assert "churn = no purchase in the 60 days after 2025-11-30" in result.output
    assert "ROC AUC" in result.output
    assert "calibration by decile" in result.output
    assert "distinct_categories" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["churn", "--as-of", "2026-03-01"], "before the churn window closes"),
        (["churn", "--as-of", "31/12/2025"], "'31/12/2025' is not a date (YYYY-MM-DD)"),
        (["churn", "--as-of", "2025-12-31", "--cutoff", "2025-12-31"], "--cutoff is the former name of --as-of"),
        (["clusters", "--k-min", "5", "--k-max", "3"], "--k-max (3) is below --k-min (5)"),
        (["clusters", "--k-min", "1"], "--k-min"),
    ],
)
def test_bad_options_are_usage_errors(orders_csv: Path, args: list[str], message: str) -> None:
    result = _run(args[0], *_columns(orders_csv), *args[1:])

    assert result.exit_code == 2
    assert message in result.output


def test_bad_files_are_usage_errors(orders_csv: Path, tmp_path: Path) -> None:
    wrong_column = _run("clusters", *_columns(orders_csv)[:-4], "--amount-col", "price")
    bad_value = tmp_path / "bad.csv"
    bad_value.write_text("customer,order_date,total\nc1,2025-01-01,12.50\nc2,yesterday,3\n", encoding="utf-8")
    bad_row = _run("clusters", *_columns(bad_value, category=False))
    empty = tmp_path / "empty.csv"
    empty.write_text("customer,order_date,total\n", encoding="utf-8")
    no_rows = _run("churn", *_columns(empty, category=False), "--as-of", CUTOFF)
    missing = _run("clusters", *_columns(tmp_path / "nowhere.csv", category=False))

    assert wrong_column.exit_code == missing.exit_code == 2  # the options are wrong
    assert bad_row.exit_code == no_rows.exit_code == 1  # the file is
    assert "amount column 'price' not found" in wrong_column.output
    assert "row 3, column 'order_date': 'yesterday' is not a date" in bad_row.output
    assert "no transaction rows" in no_rows.output
    assert "does not exist" in missing.output


def test_churn_defaults_its_reference_date_to_a_window_before_the_last_day(orders_csv: Path) -> None:
    # Given the generator's data, which runs 90 days past its cutoff
    # When churn is asked without --as-of, and with the former name of the option
    default = _run("churn", *_columns(orders_csv), "--json")
    former = _run("churn", *_columns(orders_csv), "--cutoff", CUTOFF, "--json")

    # Then the window ends on the last day of the data, and --cutoff still works
    assert default.exit_code == former.exit_code == 0, default.output + former.output
    assert json.loads(default.output)["cutoff"] == json.loads(former.output)["cutoff"] == CUTOFF
