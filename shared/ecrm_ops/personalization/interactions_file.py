"""An interactions CSV for `ecrm personalization train|evaluate`, with every bad row reported in one run.

Rows stream through (ten million interactions never sit in memory as row objects); values that
cannot be read are collected (`csv_input.RowProblem`) and the caller raises `csv_input.BadRows`
once the whole file has been read. A row without a user or an item is not an error: exports hold
anonymous events, and the training job skips them too; the caller counts them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ecrm_ops.csv_input import CsvTable, RowProblem

TIMES = "epoch seconds or ISO 8601"


@dataclass(frozen=True)
class InteractionRow:
    row: int
    user: str
    item: str
    at: float  # epoch seconds, or the row number when the file has no time column (file order is time)
    values: dict[str, str]  # the other columns asked for, by role, stripped


@dataclass
class InteractionReader:
    """Reads the columns `names` ({role: column}; roles `user` and `item` required, `time` optional)."""

    table: CsvTable
    names: dict[str, str | None]
    date_format: str | None = None
    numbers: tuple[str, ...] = ()  # roles whose values must be finite numbers
    problems: list[RowProblem] = field(default_factory=list)
    rows_read: int = 0

    def __iter__(self) -> Iterator[InteractionRow]:
        at = self.table.require(self.names)
        needed = max(at.values()) + 1
        extra = [role for role in at if role not in ("user", "item", "time")]
        for number, row in self.table.rows:
            if not row:
                continue
            self.rows_read += 1
            if len(row) < needed:
                self.problems.append(RowProblem(number, None, None, f"has {len(row)} fields, expected {needed}"))
                continue
            values = {role: row[at[role]].strip() for role in extra}
            fine = all([self._number(number, role, values[role]) for role in self.numbers if role in values])
            when = self._time(number, row[at["time"]]) if "time" in at else float(number)
            if when is None or not fine:
                continue
            yield InteractionRow(number, row[at["user"]].strip(), row[at["item"]].strip(), when, values)

    def _number(self, number: int, role: str, text: str) -> bool:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            self.problems.append(RowProblem(number, self.names[role], text, "is not a number"))
            return False
        return True

    def _time(self, number: int, text: str) -> float | None:
        when = parse_time(text, self.date_format)
        if when is None:
            expected = f"does not match {self.date_format!r}" if self.date_format else f"is not a time ({TIMES})"
            self.problems.append(RowProblem(number, self.names["time"], text, expected))
        return when


def parse_time(raw: str, date_format: str | None = None) -> float | None:
    """Epoch seconds: `date_format` (strptime) when given, else epoch seconds or ISO 8601; naive means UTC."""
    text = raw.strip()
    if not date_format:
        from ecrm.personalization.training import parse_time as parse_epoch_or_iso

        return parse_epoch_or_iso(text)
    try:
        parsed = datetime.strptime(text, date_format)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
