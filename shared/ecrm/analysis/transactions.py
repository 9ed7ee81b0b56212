"""The transaction log every statistic starts from: columnar arrays, and reading them from any CSV.

One row per purchase line: who (an index into the unique customer ids), when (a day number), how
much, and optionally a category. Columns are numpy arrays rather than row objects so that ten
million rows fit in a few hundred megabytes and every model downstream works on whole columns.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
DELIMITERS = ",;\t"
ROWS_PER_BLOCK = 4096  # small enough that the rows held at once stay cheap for the garbage collector
_COMPACT_DATE = re.compile(r"^\d{8}$")


def to_day(value: date) -> int:
    """Days since 1970-01-01: integer days make recency and gaps plain subtraction."""
    if isinstance(value, datetime):
        value = value.date()
    return value.toordinal() - EPOCH_ORDINAL


def from_day(day: int) -> date:
    return date.fromordinal(int(day) + EPOCH_ORDINAL)


def parse_day(text: str) -> int:
    """YYYY-MM-DD, an ISO datetime (its date part, as written, without converting time zones) or YYYYMMDD."""
    text = text.strip()
    if _COMPACT_DATE.match(text):
        return to_day(date(int(text[:4]), int(text[4:6]), int(text[6:])))
    if len(text) > 10 and text[10] in "T ":
        text = text[:10]
    return to_day(date.fromisoformat(text))


def factorize(values: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique values as an object array, int64 index of each value into them).

    A dict pass then a sort of the uniques only: much faster than `np.unique` on ten million
    Python strings, and the sorted uniques keep results independent of row order.
    """
    codes = _Codes()
    codes.add(list(values))
    return codes.finish()


def _days_array(days: Iterable[Any]) -> np.ndarray:
    values = days if isinstance(days, np.ndarray) else list(days)
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        return values.astype(np.int64, copy=False)
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        return values.astype("datetime64[D]").astype(np.int64)
    return np.fromiter(
        (to_day(v) if isinstance(v, date) else parse_day(v) if isinstance(v, str) else int(v) for v in values),
        dtype=np.int64,
        count=len(values),
    )


@dataclass(frozen=True)
class Transactions:
    customers: np.ndarray
    customer_index: np.ndarray
    day: np.ndarray
    amount: np.ndarray
    categories: np.ndarray | None = None
    category_index: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.day)

    @property
    def is_purchase(self) -> np.ndarray:
        """Rows that are purchases: any amount but a negative one (a free item is bought too). A refund or a
        return (a negative row) is never one: it lowers spend, but is no order, no purchase day, no sign of life."""
        return self.amount >= 0

    def until(self, last_day: int) -> Transactions:
        """Rows on or before `last_day`, keeping the same `customers` so indices stay comparable."""
        keep = self.day <= last_day
        return Transactions(
            customers=self.customers,
            customer_index=self.customer_index[keep],
            day=self.day[keep],
            amount=self.amount[keep],
            categories=self.categories,
            category_index=None if self.category_index is None else self.category_index[keep],
        )

    @classmethod
    def from_rows(
        cls,
        customer_ids: Sequence[Any] | np.ndarray,
        days: Sequence[Any] | np.ndarray,
        amounts: Sequence[Any] | np.ndarray,
        categories: Sequence[Any] | np.ndarray | None = None,
    ) -> Transactions:
        """Days may be day numbers, `date`s or date strings; customer ids become strings."""
        customers, customer_index = factorize([str(c) for c in customer_ids])
        day = _days_array(days)
        amount = np.asarray(amounts, dtype=np.float64)
        if not len(customer_index) == len(day) == len(amount):
            raise ValueError(
                f"customer_ids, days and amounts differ in length: {len(customer_index)}, {len(day)}, {len(amount)}"
            )
        category_names = category_index = None
        if categories is not None:
            category_names, category_index = factorize([str(c) for c in categories])
            if len(category_index) != len(day):
                raise ValueError(f"categories has {len(category_index)} rows, expected {len(day)}")
        return cls(customers, customer_index, day, amount, category_names, category_index)


def _sniff_dialect(sample: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS)
    except csv.Error:
        return csv.excel


def _column_position(header: list[str], name: str, role: str) -> int:
    stripped = [h.strip() for h in header]
    if name not in stripped:
        raise ValueError(f"{role} column {name!r} not found; the file has columns: {', '.join(stripped)}")
    return stripped.index(name)


class _Codes:
    """Running factorization of a column read in chunks: first-seen codes, sorted at the end."""

    def __init__(self) -> None:
        self.positions: dict[Any, int] = {}
        self.chunks: list[np.ndarray] = []

    def add(self, values: list[Any]) -> None:
        positions = self.positions
        for value in dict.fromkeys(values):  # (not `keys() - keys()`: that walks the whole of `positions`)
            if value not in positions:
                positions[value] = len(positions)
        self.chunks.append(np.fromiter(map(positions.__getitem__, values), dtype=np.int64, count=len(values)))

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        uniques = np.empty(len(self.positions), dtype=object)
        uniques[:] = list(self.positions)
        order = np.argsort(uniques, kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order), dtype=np.int64)
        first_seen = np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.int64)
        return uniques[order], rank[first_seen]


class _ChunkParser:
    """Turns blocks of CSV rows into typed columns; a whole block is converted at C speed, and only a
    block holding a bad value is walked row by row, to name the row."""

    def __init__(self, positions: dict[str, int], names: dict[str, str]) -> None:
        self.positions = positions
        self.names = names
        self.needed = max(positions.values()) + 1
        self.day_of: dict[str, int] = {}  # dates repeat across rows: parse each distinct string once
        self.customers = _Codes()
        self.categories = _Codes()
        self.days: list[np.ndarray] = []
        self.amounts: list[np.ndarray] = []

    def _fail(self, row_number: int, role: str, value: str, reason: str) -> ValueError:
        return ValueError(f"row {row_number}, column {self.names[role]!r}: bad value {value!r} ({reason})")

    def _amount(self, text: str, row_number: int) -> float:
        try:
            return float(text)
        except ValueError:
            raise self._fail(row_number, "amount", text, "not a decimal number") from None

    def add(self, rows: list[list[str]], first_row_number: int) -> None:
        row_numbers: Sequence[int] = range(first_row_number, first_row_number + len(rows))
        if min(map(len, rows)) < self.needed:
            kept = [(number, row) for number, row in zip(row_numbers, rows, strict=True) if row]  # skip blank lines
            for number, row in kept:
                if len(row) < self.needed:
                    raise ValueError(f"row {number}: expected at least {self.needed} fields, found {len(row)}")
            row_numbers, rows = [number for number, _ in kept], [row for _, row in kept]
        if rows:
            self._parse(rows, row_numbers)

    def _parse(self, rows: list[list[str]], row_numbers: Sequence[int]) -> None:
        column = {role: list(map(itemgetter(at), rows)) for role, at in self.positions.items()}

        customer_ids = list(map(str.strip, column["customer"]))
        if "" in customer_ids:
            row_number = row_numbers[customer_ids.index("")]
            raise ValueError(f"row {row_number}, column {self.names['customer']!r}: empty customer id")

        dates = column["date"]
        day_of = self.day_of
        for text in [text for text in dict.fromkeys(dates) if text not in day_of]:
            try:
                day_of[text] = parse_day(text)
            except ValueError as error:
                raise self._fail(row_numbers[dates.index(text)], "date", text, str(error)) from None
        self.days.append(np.fromiter(map(day_of.__getitem__, dates), dtype=np.int64, count=len(dates)))

        texts = column["amount"]
        try:
            amounts = np.array(texts, dtype=np.float64)
        except ValueError:
            amounts = np.array([self._amount(text, number) for text, number in zip(texts, row_numbers, strict=True)])
        finite = np.isfinite(amounts)
        if not finite.all():
            bad = int(np.argmin(finite))
            raise self._fail(row_numbers[bad], "amount", texts[bad], "not a finite number")
        self.amounts.append(amounts)

        self.customers.add(customer_ids)
        if "category" in column:
            self.categories.add(list(map(str.strip, column["category"])))

    def finish(self) -> Transactions:
        customers, customer_index = self.customers.finish()
        category_names = category_index = None
        if "category" in self.positions:
            category_names, category_index = self.categories.finish()
        return Transactions(
            customers=customers,
            customer_index=customer_index,
            day=np.concatenate(self.days) if self.days else np.zeros(0, dtype=np.int64),
            amount=np.concatenate(self.amounts) if self.amounts else np.zeros(0, dtype=np.float64),
            categories=category_names,
            category_index=category_index,
        )


def read_transactions_csv(
    path: str | Path,
    *,
    customer_col: str,
    date_col: str,
    amount_col: str,
    category_col: str | None = None,
) -> Transactions:
    """Read a transaction log from CSV (comma, semicolon or tab separated, with a header row).

    A bad value fails the whole read with its row number (the header is row 1) and column: a
    silently skipped row would bias every statistic computed from the rest. Rows are parsed in
    blocks, so ten million rows take tens of seconds and little more memory than the arrays.
    """
    with open(path, newline="", encoding="utf-8-sig") as handle:
        dialect = _sniff_dialect(handle.read(64 * 1024))
        handle.seek(0)
        reader = csv.reader(handle, dialect)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: the file is empty (expected a header row)")
        names = {"customer": customer_col, "date": date_col, "amount": amount_col}
        if category_col is not None:
            names["category"] = category_col
        positions = {role: _column_position(header, name, role) for role, name in names.items()}
        parser = _ChunkParser(positions, names)
        row_number = 2
        while rows := list(islice(reader, ROWS_PER_BLOCK)):
            parser.add(rows, row_number)
            row_number += len(rows)
    return parser.finish()
