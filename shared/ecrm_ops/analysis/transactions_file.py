"""An analyst's transactions CSV to `Transactions`, with every bad row reported in one run.

The columns are converted a block of rows at a time (dates parsed once per distinct string, amounts
by numpy), and only a block holding a bad value is walked row by row, so a clean file of millions
of rows reads at C speed while a bad one lists all its problems (`csv_input.BadRows`).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ecrm_ops.csv_input import (
    BadRows,
    MissingColumns,
    RowProblem,
    date_problem,
    input_options,
    open_csv,
    parse_date,
    report_bad_rows,
)
from ecrm_ops.user_errors import OperatorError

if TYPE_CHECKING:
    from ecrm.analysis.transactions import Transactions

ROWS_PER_BLOCK = 4096
MAX_PROBLEMS = 100_000  # past this the file is the wrong shape, not a few bad rows: stop collecting

F = TypeVar("F", bound=Callable[..., Any])


def read_transactions(
    path: Path,
    *,
    customer_col: str,
    date_col: str,
    amount_col: str,
    category_col: str | None = None,
    encoding: str = "utf-8-sig",
    date_format: str | None = None,
) -> Transactions:
    """Raises `MissingColumns` for a column the file lacks and `BadRows` with every bad value."""
    import numpy as np
    from ecrm.analysis.transactions import Transactions, to_day

    names = {"customer": customer_col, "date": date_col, "amount": amount_col, "category": category_col}
    customers: list[str] = []
    categories: list[str] = []
    days: list[np.ndarray] = []
    amounts: list[np.ndarray] = []
    problems: list[RowProblem] = []
    day_of: dict[str, int | None] = {}  # dates repeat across rows: each distinct string parsed once
    rows_read = 0
    with open_csv(path, encoding=encoding) as table:
        at = table.require(names)
        needed = max(at.values()) + 1
        while block := list(islice(table.rows, ROWS_PER_BLOCK)):
            numbers, rows = _complete_rows(block, needed, problems)
            rows_read += len(rows) + sum(1 for _, row in block if row and len(row) < needed)
            if not rows:
                continue
            # ids interned: ten million rows of a few thousand customers hold a few thousand strings
            ids = list(map(sys.intern, map(str.strip, map(itemgetter(at["customer"]), rows))))
            dates = list(map(itemgetter(at["date"]), rows))
            bad_dates = set()
            for text in dict.fromkeys(dates):
                if text not in day_of:
                    try:
                        day_of[text] = to_day(parse_date(text, date_format))
                    except ValueError:
                        day_of[text] = None
                if day_of[text] is None:
                    bad_dates.add(text)
            texts = list(map(itemgetter(at["amount"]), rows))
            try:
                values = np.array(texts, dtype=np.float64)
            except ValueError:
                values = np.array([_number(text) for text in texts])
            good = np.isfinite(values)
            if bad_dates or "" in ids or not good.all():
                for i, (customer, text) in enumerate(zip(ids, dates, strict=True)):
                    if not customer:
                        problems.append(RowProblem(numbers[i], customer_col, "", "is an empty customer id"))
                    if text in bad_dates:
                        problems.append(RowProblem(numbers[i], date_col, text, date_problem(date_format)))
                for j in np.flatnonzero(~good).tolist():
                    problems.append(RowProblem(numbers[j], amount_col, texts[j], "is not a decimal number"))
            if problems:  # the rest is only read for its problems
                if len(problems) >= MAX_PROBLEMS:
                    break
                continue
            customers.extend(ids)
            if category_col:
                categories.extend(map(sys.intern, map(str.strip, map(itemgetter(at["category"]), rows))))
            days.append(np.fromiter(map(day_of.__getitem__, dates), dtype=np.int64, count=len(dates)))
            amounts.append(values)
    if problems:
        problems.sort(key=lambda p: p.row)
        raise BadRows(table.name, rows_read, problems)
    return Transactions.from_rows(
        customers,
        np.concatenate(days) if days else np.zeros(0, dtype=np.int64),
        np.concatenate(amounts) if amounts else np.zeros(0, dtype=np.float64),
        categories if category_col else None,
    )


def _complete_rows(
    block: list[tuple[int, list[str]]], needed: int, problems: list[RowProblem]
) -> tuple[Sequence[int], Sequence[list[str]]]:
    """(row numbers, rows) of the block's rows with every column read; blank lines skipped, short rows reported."""
    numbers, rows = zip(*block, strict=True)
    if min(map(len, rows)) >= needed:
        return numbers, rows
    kept = [(number, row) for number, row in block if len(row) >= needed]
    for number, row in block:
        if row and len(row) < needed:
            problems.append(RowProblem(number, None, None, f"has {len(row)} fields, expected {needed}"))
    return [number for number, _ in kept], [row for _, row in kept]


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def transaction_options(command: F) -> F:
    """The options every `ecrm analysis` command shares: the file, its columns, how to read it."""
    for option in reversed(
        [
            click.option(
                "--transactions",
                "transactions_path",
                required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                help="CSV of transactions, one row per order or order line (comma, semicolon or tab separated, "
                "with a header row).",
            ),
            click.option("--customer-col", required=True, help="Column holding the customer id."),
            click.option("--date-col", required=True, help="Column holding the date (see --date-format)."),
            click.option("--amount-col", required=True, help="Column holding the amount (a decimal number)."),
        ]
    ):
        command = option(command)
    return input_options(command)


def load_transactions(
    path: Path,
    *,
    customer_col: str,
    date_col: str,
    amount_col: str,
    category_col: str | None = None,
    encoding: str = "utf-8-sig",
    date_format: str | None = None,
    bad_rows_path: Path | None = None,
) -> Transactions:
    """`read_transactions` for a command: a missing column is a usage error, bad rows are all listed."""
    try:
        transactions = read_transactions(
            path,
            customer_col=customer_col,
            date_col=date_col,
            amount_col=amount_col,
            category_col=category_col,
            encoding=encoding,
            date_format=date_format,
        )
    except MissingColumns as error:
        raise click.UsageError(str(error)) from None
    except BadRows as error:
        raise report_bad_rows(error, bad_rows_path) from None
    if len(transactions) == 0:
        raise OperatorError(f"{path.name}: the file has no transaction rows")
    return transactions
