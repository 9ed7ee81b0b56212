"""The transaction log: day numbers, building from rows, and reading any reasonable CSV."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest
from ecrm.analysis import transactions
from ecrm.analysis.transactions import Transactions, factorize, from_day, parse_day, read_transactions_csv, to_day


def test_days_count_from_the_unix_epoch_both_ways() -> None:
    assert to_day(date(1970, 1, 1)) == 0
    assert to_day(date(1997, 9, 30)) == 10134
    assert to_day(datetime(1997, 9, 30, 23, 59)) == 10134
    assert from_day(10134) == date(1997, 9, 30)
    assert from_day(to_day(date(1969, 12, 31))) == date(1969, 12, 31)


@pytest.mark.parametrize(
    "text", ["1997-09-30", "19970930", "1997-09-30T23:59:59+02:00", "1997-09-30 08:00", " 1997-09-30 "]
)
def test_dates_are_read_in_every_accepted_form(text: str) -> None:
    assert parse_day(text) == to_day(date(1997, 9, 30))


def test_factorize_gives_sorted_uniques_whatever_the_row_order() -> None:
    uniques, index = factorize(["b", "a", "c", "a", "b"])
    assert list(uniques) == ["a", "b", "c"]
    assert list(index) == [1, 0, 2, 0, 1]
    assert index.dtype == np.int64


def test_from_rows_accepts_dates_strings_and_day_numbers() -> None:
    # Given three rows for two customers, days given three ways
    tx = Transactions.from_rows(
        ["c2", "c1", 7], [date(2024, 1, 2), "2024-01-01", to_day(date(2024, 1, 3))], [10, 2.5, 1], ["x", "y", "x"]
    )
    # Then customers and categories are factorized, columns typed
    assert list(tx.customers) == ["7", "c1", "c2"]
    assert list(tx.customer_index) == [2, 1, 0]
    assert list(tx.day) == [to_day(date(2024, 1, 2)), to_day(date(2024, 1, 1)), to_day(date(2024, 1, 3))]
    assert tx.amount.dtype == np.float64
    assert tx.categories is not None
    assert tx.category_index is not None
    assert list(tx.categories) == ["x", "y"]
    assert list(tx.category_index) == [0, 1, 0]
    assert len(tx) == 3


def test_from_rows_rejects_columns_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        Transactions.from_rows(["a", "b"], [1, 2], [1.0])


def test_until_keeps_rows_up_to_the_day_and_the_same_customers() -> None:
    tx = Transactions.from_rows(["a", "b", "a"], [1, 5, 9], [1.0, 2.0, 3.0], ["x", "y", "z"])
    before = tx.until(5)
    assert list(before.day) == [1, 5]
    assert list(before.amount) == [1.0, 2.0]
    assert before.customers is tx.customers
    assert before.category_index is not None
    assert list(before.category_index) == [0, 1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tx.csv"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_reads_comma_semicolon_and_tab_separated_files(tmp_path: Path, delimiter: str) -> None:
    # Given the same three rows, separated by `delimiter`, with an extra column
    rows = [["customer", "when", "total", "shop"], ["a", "2024-01-01", "10.50", "x"], ["b", "20240102", "3", "y"]]
    rows.append(["a", "2024-01-03T10:00:00Z", "-1.25", "x"])
    path = write(tmp_path, "\n".join(delimiter.join(row) for row in rows) + "\n")
    # When read
    tx = read_transactions_csv(path, customer_col="customer", date_col="when", amount_col="total", category_col="shop")
    # Then
    assert list(tx.customers) == ["a", "b"]
    assert list(tx.customer_index) == [0, 1, 0]
    assert [from_day(d) for d in tx.day] == [date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)]
    assert list(tx.amount) == [10.5, 3.0, -1.25]
    assert tx.categories is not None
    assert list(tx.categories) == ["x", "y"]


def test_reads_quoted_fields_and_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text('\ufeffid,date,amount\n"C-1, north",2024-01-01,"7.00"\n\n', encoding="utf-8")
    tx = read_transactions_csv(path, customer_col="id", date_col="date", amount_col="amount")
    assert list(tx.customers) == ["C-1, north"]
    assert tx.categories is None


def test_a_missing_column_is_named_with_the_columns_found(tmp_path: Path) -> None:
    path = write(tmp_path, "id,day,amount\na,2024-01-01,1\n")
    with pytest.raises(ValueError, match=r"date column 'date' not found; the file has columns: id, day, amount"):
        read_transactions_csv(path, customer_col="id", date_col="date", amount_col="amount")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("a,2024-13-01,1", r"row 3, column 'date': bad value '2024-13-01'"),
        ("a,yesterday,1", r"row 3, column 'date': bad value 'yesterday'"),
        ("a,2024-01-01,1.2.3", r"row 3, column 'amount': bad value '1.2.3'"),
        ("a,2024-01-01,nan", r"row 3, column 'amount': bad value 'nan'"),
        (",2024-01-01,1", r"row 3, column 'id': empty customer id"),
        ("a,2024-01-01", r"row 3: expected at least 3 fields, found 2"),
    ],
)
def test_a_bad_value_is_reported_with_its_row_and_column(tmp_path: Path, row: str, message: str) -> None:
    path = write(tmp_path, f"id,date,amount\na,2024-01-01,1\n{row}\n")
    with pytest.raises(ValueError, match=message):
        read_transactions_csv(path, customer_col="id", date_col="date", amount_col="amount")


def test_an_empty_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        read_transactions_csv(write(tmp_path, ""), customer_col="id", date_col="date", amount_col="amount")


def test_rows_are_numbered_across_blocks_and_blank_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given blocks of 3 rows, a blank line in the first block and a bad amount in the third
    monkeypatch.setattr(transactions, "ROWS_PER_BLOCK", 3)
    good = "id,date,amount\na,2024-01-01,1\n\nb,2024-01-02,2\nc,2024-01-03,3\na,2024-01-04,4\n"
    tx = read_transactions_csv(write(tmp_path, good), customer_col="id", date_col="date", amount_col="amount")
    assert list(tx.customers) == ["a", "b", "c"]
    assert list(tx.customer_index) == [0, 1, 2, 0]
    assert list(tx.amount) == [1, 2, 3, 4]
    # When a later row is bad, its number counts the header and the blank line (it is line 7 of the file)
    bad = good + "d,2024-01-05,x\n"
    with pytest.raises(ValueError, match=r"row 7, column 'amount': bad value 'x'"):
        read_transactions_csv(write(tmp_path, bad), customer_col="id", date_col="date", amount_col="amount")
