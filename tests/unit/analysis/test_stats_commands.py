"""`ecrm analysis clv` and `ecrm analysis rfm` through the real CLI entry point."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from ecrm_ops.cli import main

CDNOW = Path(__file__).parents[2] / "data" / "cdnow" / "cdnow_sample.csv"
COLUMNS = ["--customer-col", "customer_id", "--date-col", "date", "--amount-col", "amount"]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["analysis", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_clv_json_reproduces_the_published_cdnow_parameters() -> None:
    # When the CDNOW sample is fitted on its 39-week calibration, in weeks
    code, output = run("clv", "--transactions", str(CDNOW), *COLUMNS, "--calibration-end", "1997-09-30", "--json")
    # Then the figures are the papers'
    assert code == 0, output
    report = json.loads(output)
    published_bgnbd = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published_bgnbd.items():
        assert report["bgnbd"][name] == pytest.approx(value, abs=0.01), name
    assert report["bgnbd"]["log_likelihood"] == pytest.approx(-9582.4, abs=0.05)
    for name, value in {"p": 6.25, "q": 3.74, "v": 15.44}.items():
        assert report["gamma_gamma"][name] == pytest.approx(value, abs=0.01), name
    assert (report["customers"], report["repeat_customers"], report["period"]) == (2357, 946, "W")
    assert report["calibration_end"] == "1997-09-30"


def test_clv_prints_a_table_and_writes_per_customer_predictions(tmp_path: Path) -> None:
    output_path = tmp_path / "clv.csv"
    code, output = run(
        "clv", "--transactions", str(CDNOW), *COLUMNS, "--calibration-end", "1997-09-30", "--output", str(output_path)
    )
    assert code == 0, output
    assert "2,357 customers (946 with repeat purchases)" in output
    assert "BG/NBD" in output
    assert "Gamma-Gamma" in output
    with open(output_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2357
    first = next(row for row in rows if row["customer_id"] == "1")
    assert (first["frequency"], float(first["recency"]), float(first["T"])) == ("2", 30.4286, 38.8571)
    assert 0 < float(first["p_alive"]) < 1
    assert float(first["clv"]) > 0


def test_clv_in_days_gives_the_same_purchase_model_rescaled() -> None:
    code, output = run(
        "clv", "--transactions", str(CDNOW), *COLUMNS, "--calibration-end", "1997-09-30", "--period", "D", "--json"
    )
    assert code == 0, output
    report = json.loads(output)
    # alpha carries the time unit; the shapes do not change
    assert report["bgnbd"]["alpha"] == pytest.approx(4.4136 * 7, rel=1e-3)
    assert report["bgnbd"]["r"] == pytest.approx(0.2426, abs=1e-3)


def test_rfm_prints_segment_counts_and_writes_scores(tmp_path: Path) -> None:
    output_path = tmp_path / "scores.csv"
    code, output = run(
        "rfm", "--transactions", str(CDNOW), *COLUMNS, "--as-of", "1997-09-30", "--output", str(output_path)
    )
    assert code == 0, output
    assert "2,357 customers, recency as of 1997-09-30" in output
    assert "champions" in output
    with open(output_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2357
    assert set(rows[0]) == {"customer_id", "recency_days", "frequency", "monetary", "r", "f", "m", "rfm", "segment"}


def test_rfm_json_counts_every_customer_once() -> None:
    code, output = run("rfm", "--transactions", str(CDNOW), *COLUMNS, "--json", "--monetary", "mean")
    assert code == 0, output
    report = json.loads(output)
    assert report["as_of"] == "1998-06-30"
    assert sum(report["segments"].values()) == report["customers"] == 2357


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "tx.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("command", ["clv", "rfm"])
def test_a_missing_column_is_a_usage_error_naming_it(command: str) -> None:
    code, output = run(command, "--transactions", str(CDNOW), *COLUMNS[:4], "--amount-col", "value")
    assert code == 2
    assert "amount column 'value' not found; the file has columns: customer_id, date, cds, amount" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("command", ["clv", "rfm"])
def test_a_bad_date_in_the_file_is_an_error_with_its_row(tmp_path: Path, command: str) -> None:
    path = write(tmp_path, "customer_id,date,amount\na,2024-01-01,1\na,01/02/2024,2\n")
    code, output = run(command, "--transactions", path, *COLUMNS)
    assert code == 1
    assert "row 3, column 'date': '01/02/2024' is not a date" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--calibration-end", "30.09.1997"], "Invalid value for '--calibration-end'"),
        (["--calibration-end", "1990-01-01"], "no transactions on or before 1990-01-01"),
        (["--period", "M"], "Invalid value for '--period'"),
    ],
)
def test_clv_bad_options_are_usage_errors(args: list[str], message: str) -> None:
    code, output = run("clv", "--transactions", str(CDNOW), *COLUMNS, *args)
    assert code == 2
    assert message in output


def test_clv_without_repeat_purchases_explains_why_it_cannot_fit(tmp_path: Path) -> None:
    path = write(tmp_path, "customer_id,date,amount\na,2024-01-01,1\nb,2024-01-05,2\n")
    code, output = run("clv", "--transactions", path, *COLUMNS)
    assert code == 2
    assert "no customer has a repeat purchase" in output


def test_a_missing_file_is_a_usage_error_and_an_empty_one_an_error(tmp_path: Path) -> None:
    code, _ = run("rfm", "--transactions", str(tmp_path / "absent.csv"), *COLUMNS)
    assert code == 2
    code, output = run("rfm", "--transactions", write(tmp_path, "customer_id,date,amount\n"), *COLUMNS)
    assert code == 1
    assert "no transaction rows" in output
