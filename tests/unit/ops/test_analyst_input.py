"""The analyst commands read any CSV the way an analyst has it, and list every bad row in one run.

`ecrm analysis rfm|clusters|churn|clv` and `ecrm personalization train|evaluate` share `--encoding`,
`--date-format` and `--bad-rows`; rfm, clusters and churn share `--as-of` for the reference date
(churn's former `--cutoff` stays as a hidden alias); CLV's `--calibration-end` is another thing.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from ecrm_ops.cli import main

COLUMNS = ["--customer-col", "customer", "--date-col", "day", "--amount-col", "amount"]


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="ecrm")


def orders(days: int = 400, customers: int = 30) -> list[tuple[str, str, str]]:
    """(customer, ISO day, amount): each customer buys every few days over a year, some stop halfway."""
    from datetime import date, timedelta

    start = date(2025, 1, 1)
    rows = []
    for c in range(customers):
        last = days if c % 3 else days // 2
        for d in range(c % 5, last, 7 + c % 11):
            rows.append((f"c{c}", (start + timedelta(days=d)).isoformat(), f"{10 + (c * d) % 90}.50"))
    return rows


def write(path: Path, rows: list[tuple[str, str, str]], *, encoding: str = "utf-8", delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(["customer", "day", "amount"])
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("command", ["rfm", "clv", "clusters", "churn"])
def test_every_bad_row_is_listed_in_one_run(tmp_path: Path, command: str) -> None:
    # Given a file with a bad date, a bad amount, an empty customer id and a short row, among good rows
    rows = orders()
    rows[3] = ("c0", "31/02/2025", "12.00")
    rows[10] = ("c1", "2025-02-01", "twelve")
    rows[20] = ("", "2025-03-01", "1")
    path = write(tmp_path / "orders.csv", rows)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("c9,2025-04-01\n")

    # When any analyst command reads it
    result = run("analysis", command, "--transactions", str(path), *COLUMNS)

    # Then every problem is named with its row (the header is row 1), column and value, and nothing is computed
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"orders.csv: 4 bad rows of {len(rows) + 1:,}; nothing was computed" in result.stderr
    assert "row 5, column 'day': '31/02/2025' is not a date" in result.stderr
    assert "row 12, column 'amount': 'twelve' is not a decimal number" in result.stderr
    assert "row 22, column 'customer': '' is an empty customer id" in result.stderr
    assert f"row {len(rows) + 2}: has 2 fields, expected 3" in result.stderr


def test_many_bad_rows_are_summed_up_and_all_written_with_bad_rows(tmp_path: Path) -> None:
    rows = [(c, d.replace("-", "/"), a) for c, d, a in orders()]  # every date in another format
    path = write(tmp_path / "orders.csv", rows)
    report = tmp_path / "bad.csv"

    result = run("analysis", "rfm", "--transactions", str(path), *COLUMNS, "--bad-rows", str(report))

    assert result.exit_code == 1
    assert f"... and {len(rows) - 20:,} more (all of them in {report})" in result.stderr
    with report.open(newline="", encoding="utf-8") as handle:
        written = list(csv.DictReader(handle))
    assert len(written) == len(rows)
    assert written[0] == {"row": "2", "column": "day", "value": rows[0][1], "reason": written[0]["reason"]}
    assert "--date-format" in written[0]["reason"]


def test_a_date_format_reads_the_file_and_the_reference_date(tmp_path: Path) -> None:
    from datetime import date

    rows = orders()
    iso = write(tmp_path / "iso.csv", rows)
    european = [(c, date.fromisoformat(d).strftime("%d/%m/%Y"), a) for c, d, a in rows]
    eu = write(tmp_path / "eu.csv", european, delimiter=";")

    expected = run("analysis", "rfm", "--transactions", str(iso), *COLUMNS, "--as-of", "2025-12-01", "--json")
    same = run(
        "analysis", "rfm", "--transactions", str(eu), *COLUMNS, "--date-format", "%d/%m/%Y",
        "--as-of", "01/12/2025", "--json",
    )  # fmt: skip
    also_iso = run(
        "analysis", "rfm", "--transactions", str(eu), *COLUMNS, "--date-format", "%d/%m/%Y",
        "--as-of", "2025-12-01", "--json",
    )  # fmt: skip

    assert expected.exit_code == same.exit_code == also_iso.exit_code == 0, same.output
    assert json.loads(same.output) == json.loads(expected.output) == json.loads(also_iso.output)


def test_the_encoding_is_an_option_and_a_wrong_one_names_the_line(tmp_path: Path) -> None:
    rows = orders()
    rows[6] = ("Zoé", rows[6][1], rows[6][2])
    path = write(tmp_path / "orders.csv", rows, encoding="cp1252")

    wrong = run("analysis", "rfm", "--transactions", str(path), *COLUMNS)
    right = run("analysis", "rfm", "--transactions", str(path), *COLUMNS, "--encoding", "cp1252", "--json")
    unknown = run("analysis", "rfm", "--transactions", str(path), *COLUMNS, "--encoding", "klingon")

    assert wrong.exit_code == 1
    assert "orders.csv: line 8 is not utf-8-sig (byte b'\\xe9'): give the file's encoding with --encoding" in (
        wrong.stderr
    )
    assert right.exit_code == 0, right.output
    assert json.loads(right.output)["customers"] == 31  # Zoé among them
    assert unknown.exit_code == 2
    assert "unknown encoding 'klingon'" in unknown.stderr


def test_missing_columns_are_named_together_with_the_columns_there_are(tmp_path: Path) -> None:
    path = write(tmp_path / "orders.csv", orders())

    result = run(
        "analysis", "clv", "--transactions", str(path), "--customer-col", "who", "--date-col", "when",
        "--amount-col", "amount",
    )  # fmt: skip

    assert result.exit_code == 2
    assert (
        "orders.csv: customer column 'who' and date column 'when' not found; the file has columns: customer, day, "
        "amount" in result.stderr
    )


@pytest.mark.parametrize("command", ["rfm", "clusters", "churn"])
def test_the_reference_date_has_one_name(command: str) -> None:
    result = run("analysis", command, "-h")

    assert "--as-of" in result.output
    assert "--cutoff" not in result.output  # churn's former name still works, unlisted


def test_clv_names_its_calibration_end_for_what_it_is() -> None:
    result = run("analysis", "clv", "-h")

    assert "--calibration-end" in result.output
    assert "--as-of" not in result.output


@pytest.mark.parametrize("command", ["rfm", "clusters", "churn", "clv"])
def test_a_reference_date_that_is_not_a_date_is_a_usage_error(tmp_path: Path, command: str) -> None:
    path = write(tmp_path / "orders.csv", orders())
    option = "--calibration-end" if command == "clv" else "--as-of"

    result = run("analysis", command, "--transactions", str(path), *COLUMNS, option, "1st of May")

    assert result.exit_code == 2
    assert f"Invalid value for '{option}': '1st of May' is not a date (YYYY-MM-DD)" in result.stderr


def test_personalization_lists_every_bad_time_and_reads_a_date_format(tmp_path: Path) -> None:
    path = tmp_path / "interactions.csv"
    lines = ["customer,product,when"] + [
        f"c{u},p{(u * i) % 7},{1 + i:02d}/03/2026 10:{u:02d}" for u in range(20) for i in range(6)
    ]
    lines[5] = "c0,p1,yesterday"
    lines[9] = "c1,p2,"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    columns = [
        "--interactions",
        str(path),
        "--user-col",
        "customer",
        "--item-col",
        "product",
        "--timestamp-col",
        "when",
    ]

    bad = run("personalization", "train", *columns, "--date-format", "%d/%m/%Y %H:%M")
    lines[5], lines[9] = "c0,p1,06/03/2026 11:00", "c1,p2,07/03/2026 11:00"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    good = run("personalization", "train", *columns, "--date-format", "%d/%m/%Y %H:%M", "--json")
    evaluated = run("personalization", "evaluate", *columns, "--date-format", "%d/%m/%Y %H:%M", "--json")

    assert bad.exit_code == 1
    assert "2 bad rows of 120" in bad.stderr
    assert "row 6, column 'when': 'yesterday' does not match '%d/%m/%Y %H:%M'" in bad.stderr
    assert "row 10, column 'when': '' does not match" in bad.stderr
    assert good.exit_code == 0, good.output
    assert json.loads(good.output)["data"]["interactions"] == 120
    assert evaluated.exit_code == 0, evaluated.output
    assert "trending" in json.loads(evaluated.output)  # the times were read


def test_a_clean_file_reads_as_the_runtimes_reader_reads_it(tmp_path: Path) -> None:
    import numpy as np
    from ecrm.analysis.transactions import read_transactions_csv
    from ecrm_ops.analysis.transactions_file import read_transactions

    rows = orders()
    path = tmp_path / "orders.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer", "day", "amount", "shop"])
        writer.writerows((c, d, a, f"shop-{len(c) % 3}") for c, d, a in rows)
        handle.write("\n")  # a blank line is no row
    columns = {"customer_col": "customer", "date_col": "day", "amount_col": "amount", "category_col": "shop"}

    ours, runtime = read_transactions(path, **columns), read_transactions_csv(path, **columns)

    for name in ("customers", "customer_index", "day", "amount", "categories", "category_index"):
        assert np.array_equal(getattr(ours, name), getattr(runtime, name)), name
