"""Reading an analyst's CSV: its encoding, its dialect, its header, and every bad row in one run.

The analyst commands (`ecrm analysis ...`, `ecrm personalization train|evaluate`) share the options
this module declares (`--encoding`, `--date-format`, `--bad-rows`) and the way they answer a bad
file: the header is row 1, a missing column is named with the columns the file has, and every bad
value is collected (row, column, value, reason) so one run lists them all instead of stopping at
the first. Nothing is computed from a file with bad rows: a silently dropped row would bias every
statistic of the rest.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from ecrm_ops.user_errors import OperatorError

DELIMITERS = ",;\t"
SHOWN_PROBLEMS = 20  # on the terminal; `--bad-rows FILE` writes every one
DEFAULT_ENCODING = "utf-8-sig"  # UTF-8, with or without a byte order mark
AUTO_DATES = "YYYY-MM-DD, an ISO 8601 date-time or YYYYMMDD"

F = TypeVar("F", bound=Callable[..., Any])


def input_options(command: F) -> F:
    """`--encoding`, `--date-format` and `--bad-rows`, the same on every command reading a CSV."""
    for option in reversed(
        [
            click.option(
                "--encoding",
                default=DEFAULT_ENCODING,
                show_default=True,
                callback=check_encoding,
                help="The file's text encoding (cp1252, latin-1, utf-16, ...).",
            ),
            click.option(
                "--date-format",
                help=f"strptime format of the file's dates, e.g. %d/%m/%Y (default: {AUTO_DATES}); "
                "date options accept it too.",
            ),
            click.option(
                "--bad-rows",
                "bad_rows_path",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Write every bad row (row, column, value, reason) to this CSV file.",
            ),
        ]
    ):
        command = option(command)
    return command


def check_encoding(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        codecs.lookup(value)
    except LookupError:
        raise click.BadParameter(f"unknown encoding {value!r}") from None
    return value


@dataclass(frozen=True)
class RowProblem:
    row: int  # the header is row 1
    column: str | None
    value: str | None
    reason: str

    def line(self) -> str:
        where = f"row {self.row}" + (f", column {self.column!r}" if self.column is not None else "")
        return f"{where}: {self.value!r} {self.reason}" if self.value is not None else f"{where}: {self.reason}"


@dataclass
class BadRows(Exception):
    """The problems of a file; raised after reading all of it."""

    name: str
    rows: int
    problems: list[RowProblem] = field(default_factory=list)

    def __str__(self) -> str:
        return self.message()

    def message(self, bad_rows_path: Path | None = None) -> str:
        rows = len({p.row for p in self.problems})
        lines = [f"{self.name}: {rows:,} bad row{'s' if rows != 1 else ''} of {self.rows:,}; nothing was computed"]
        lines += [f"  {p.line()}" for p in self.problems[:SHOWN_PROBLEMS]]
        hidden = len(self.problems) - SHOWN_PROBLEMS
        if hidden > 0:
            lines.append(
                f"  ... and {hidden:,} more"
                + (f" (all of them in {bad_rows_path})" if bad_rows_path else " (--bad-rows FILE writes every one)")
            )
        elif bad_rows_path:
            lines.append(f"  (also written to {bad_rows_path})")
        return "\n".join(lines)

    def write(self, path: Path) -> None:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["row", "column", "value", "reason"])
            for p in self.problems:
                writer.writerow([p.row, p.column or "", p.value if p.value is not None else "", p.reason])


def report_bad_rows(error: BadRows, bad_rows_path: Path | None) -> OperatorError:
    """The error a command raises for a file with bad rows, having written them all if asked."""
    if bad_rows_path is not None:
        error.write(bad_rows_path)
    return OperatorError(error.message(bad_rows_path))


class MissingColumns(ValueError):
    pass


@dataclass
class CsvTable:
    """An open CSV: its header, the position of each wanted column, and its rows with their numbers."""

    name: str
    header: list[str]
    rows: Iterator[tuple[int, list[str]]]

    def position(self, column: str) -> int:
        return [h.strip() for h in self.header].index(column)

    def require(self, columns: dict[str, str | None]) -> dict[str, int]:
        """{role: position} of the named columns; every missing one named at once."""
        stripped = [h.strip() for h in self.header]
        missing = [f"{role} column {name!r}" for role, name in columns.items() if name and name not in stripped]
        if missing:
            raise MissingColumns(
                f"{self.name}: {' and '.join(missing)} not found; the file has columns: {', '.join(stripped)}"
            )
        return {role: stripped.index(name) for role, name in columns.items() if name}


@contextmanager
def open_csv(path: Path, *, encoding: str = DEFAULT_ENCODING) -> Iterator[CsvTable]:
    """Open a CSV (comma, semicolon or tab separated, with a header row); decoding errors name their line."""
    path = Path(path)
    try:
        with path.open(newline="", encoding=encoding) as handle:
            sample = handle.read(64 * 1024)
            handle.seek(0)
            try:
                dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=DELIMITERS)
            except csv.Error:
                dialect = csv.excel
            reader = csv.reader(handle, dialect)
            header = next(reader, None)
            if header is None:
                raise OperatorError(f"{path.name}: the file is empty (expected a header row)")
            rows = ((reader.line_num, row) for row in reader)
            yield CsvTable(path.name, header, rows)
    except UnicodeDecodeError as error:
        raise OperatorError(decoding_problem(path, encoding, error)) from None
    except csv.Error as error:
        raise OperatorError(f"{path.name}: not a readable CSV ({error})") from None


def decoding_problem(path: Path, encoding: str, error: UnicodeDecodeError) -> str:
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 1
    with path.open("rb") as handle:
        for raw in handle:
            try:
                decoder.decode(raw)
            except UnicodeDecodeError as at:
                byte = raw[at.start : at.start + 1]
                return (
                    f"{path.name}: line {line} is not {encoding} (byte {byte!r}): give the file's encoding with "
                    "--encoding (cp1252 or latin-1 for Western European spreadsheets, utf-16 for some exports)"
                )
            line += 1
    return f"{path.name}: not {encoding} ({error.reason}): give the file's encoding with --encoding"


def parse_date(text: str, date_format: str | None) -> date:
    """A date in the file: `date_format` (strptime) when given, else YYYY-MM-DD, an ISO datetime or YYYYMMDD.

    An ISO datetime keeps its date as written (no time zone conversion), like the models' day numbers.
    """
    text = text.strip()
    if date_format:
        return datetime.strptime(text, date_format).date()
    if len(text) == 8 and text.isdigit():
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    if len(text) > 10 and text[10] in "T ":
        text = text[:10]
    return date.fromisoformat(text)


def date_problem(date_format: str | None) -> str:
    return f"does not match {date_format!r}" if date_format else f"is not a date ({AUTO_DATES}; or give --date-format)"


def option_date(value: str | None, option: str, date_format: str | None) -> date | None:
    """A date given as an option: YYYY-MM-DD always, or the file's --date-format."""
    if value is None:
        return None
    for fmt in (None, date_format) if date_format else (None,):
        try:
            return parse_date(value, fmt)
        except ValueError:
            continue
    expected = f"YYYY-MM-DD or {date_format!r}" if date_format else "YYYY-MM-DD"
    raise click.BadParameter(f"{value!r} is not a date ({expected})", param_hint=f"'{option}'")
