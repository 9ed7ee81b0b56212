"""Bulk imports: turning an uploaded CSV or JSON Lines file into customer records.

This module owns the file side of an import (reading rows, mapping columns to fields, reporting
bad rows); the customer engine applies the records. Two rules shape it:

- Bad rows never block good ones. A row that cannot be read or mapped becomes a line in the
  error report (`row,reason,data`, the file users download to fix and re-upload), and the rest
  of the file is imported. Only a problem with the whole file (no header, duplicate columns, a
  bad mapping) stops the job, and it does so before any row is applied.
- Re-importing is idempotent. Every record has a fingerprint of its normalised content, so
  uploading the same file again (or an export that overlaps the last one) changes nothing for
  the rows already seen, and a retried chunk does no harm.

Rows are numbered from 1 in the order they appear; a CSV header is not a row, and blank lines
are not rows in either format (they are skipped and not counted), so `count_rows` equals the
number of rows `read_rows` yields and chunks planned on it cover the file exactly.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import IO, Any, Literal, NoReturn, get_args

from pydantic import TypeAdapter, ValidationError

from ecrm.core.errors import InvalidInput
from ecrm.core.vocabulary import CHANNELS
from ecrm.customers.identity import InvalidIdentity, NormalizedIdentity, normalize_identity
from ecrm.customers.models import (
    AttributeName,
    ConsentIn,
    ConsentProof,
    CustomerUpsert,
    IdentityIn,
    IdentityType,
    ImportRequest,
    Preferences,
    Purpose,
)

Format = Literal["csv", "jsonl"]

IGNORE = "-"
OBSERVED_AT = "observed_at"
IDENTITY_TARGETS: tuple[str, ...] = get_args(IdentityType)
PREFERENCE_TARGETS = ("language", "time_zone", "preferred_channels")
CONSENT_ANSWERS = {
    **dict.fromkeys(("yes", "y", "true", "1", "granted"), "granted"),
    **dict.fromkeys(("no", "n", "false", "0", "denied"), "denied"),
}
REPORT_HEADER = ("row", "reason", "data")
# A source's clock may run ahead of ours, or write local time without an offset; beyond this it is a typo.
FUTURE_TOLERANCE = timedelta(days=1)
MAX_RAW_CHARS = 4096
_READ_SIZE = 1 << 16
_BOM = b"\xef\xbb\xbf"
_PURPOSE: TypeAdapter[str] = TypeAdapter(Purpose)
_ATTRIBUTE: TypeAdapter[str] = TypeAdapter(AttributeName)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class RowError(InvalidInput):
    """One row cannot be imported; it goes to the error report and the import goes on."""

    code = "invalid-row"
    title = "Invalid row"

    def __init__(self, number: int, reason: str) -> None:
        super().__init__(f"row {number}: {reason}", row=number)
        self.number = number
        self.reason = reason


@dataclass(frozen=True)
class SourceRow:
    """A row as read from the file: its values, or why they could not be read (`raw` then holds them)."""

    number: int
    values: dict[str, Any] | None
    error: str | None = None
    raw: Any = None

    @property
    def data(self) -> Any:
        """What the error report shows of this row."""
        return self.values if self.values is not None else self.raw


@dataclass(frozen=True)
class Chunk:
    index: int
    first_row: int
    last_row: int

    @property
    def size(self) -> int:
        return self.last_row - self.first_row + 1


# -- the mapping ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Target:
    kind: Literal["identity", "consent", "preference", "observed_at", "attribute"]
    name: str  # identity type, preference field, attribute name or the consent target itself
    channel: str = ""
    purpose: str = ""


@dataclass(frozen=True)
class _Plan:
    columns: tuple[tuple[str, str, _Target], ...]  # (column, target as written, parsed)
    identity_columns: tuple[str, ...]


_TARGET_HELP = (
    f"use one of {', '.join(IDENTITY_TARGETS)}, {OBSERVED_AT}, consent.<channel>.<purpose>, "
    f"preference.<{'|'.join(PREFERENCE_TARGETS)}>, a snake_case attribute name, or '{IGNORE}' to ignore the column"
)


def _parse_target(target: str) -> _Target:
    if target in IDENTITY_TARGETS:
        return _Target("identity", target)
    if target == OBSERVED_AT:
        return _Target("observed_at", target)
    if target.startswith("consent."):
        channel, _, purpose = target.removeprefix("consent.").partition(".")
        if channel not in CHANNELS:
            raise ValueError(f"{channel!r} is not a channel ({', '.join(CHANNELS)})")
        try:
            _PURPOSE.validate_python(purpose)
        except ValidationError:
            raise ValueError(
                f"{purpose!r} is not a purpose (marketing, transactional, profiling, topic:<name>)"
            ) from None
        return _Target("consent", target, channel, purpose)
    if target.startswith("preference."):
        name = target.removeprefix("preference.")
        if name not in PREFERENCE_TARGETS:
            raise ValueError(f"{name!r} is not an importable preference ({', '.join(PREFERENCE_TARGETS)})")
        return _Target("preference", name)
    try:
        return _Target("attribute", _ATTRIBUTE.validate_python(target))
    except ValidationError:
        raise ValueError(f"not a field: {_TARGET_HELP}") from None


def validate_mapping(mapping: dict[str, str]) -> None:
    """Raise `InvalidInput` naming every bad target at once, so one round of fixes is enough."""
    _compile(tuple(mapping.items()))


@lru_cache(maxsize=64)
def _compile(items: tuple[tuple[str, str], ...]) -> _Plan:
    problems: list[dict[str, str]] = []
    columns: list[tuple[str, str, _Target]] = []
    claimed: dict[tuple[str, str], str] = {}
    for column, target in items:
        if target == IGNORE:
            continue
        try:
            parsed = _parse_target(target)
        except ValueError as exc:
            problems.append({"column": column, "target": target, "reason": str(exc)})
            continue
        if parsed.kind != "identity" and (parsed.kind, parsed.name) in claimed:
            reason = f"also mapped from column {claimed[parsed.kind, parsed.name]!r}; map each field from one column"
            problems.append({"column": column, "target": target, "reason": reason})
            continue
        claimed[parsed.kind, parsed.name] = column
        columns.append((column, target, parsed))
    counts = {kind: sum(1 for *_, t in columns if t.kind == kind) for kind in ("identity", "consent", "attribute")}
    limits = {"identity": 50, "consent": 50, "attribute": 100}
    general = [f"at most {limit} {kind} columns" for kind, limit in limits.items() if counts[kind] > limit]
    if not counts["identity"]:
        general.append(f"no identity: map at least one column to {', '.join(IDENTITY_TARGETS)}")
    if problems or general:
        detail = "; ".join([f"column {p['column']!r} -> {p['target']!r}: {p['reason']}" for p in problems] + general)
        raise InvalidInput(f"invalid mapping: {detail}", errors=problems, problems=general)
    identity_columns = tuple(column for column, _, t in columns if t.kind == "identity")
    return _Plan(tuple(columns), identity_columns)


# -- reading -------------------------------------------------------------------------------------
def read_rows(data: bytes | IO[bytes], fmt: Format) -> Iterator[SourceRow]:
    """The file's rows, in order, read lazily: a chunk worker stops reading after its last row.

    CSV: UTF-8 (a BOM is dropped), the first line names the columns (names are trimmed; the
    mapping refers to them), fields are separated by ',', ';' or tab, whichever the header uses
    most. JSONL: one object per line, whose top-level keys are the columns. Raises
    `InvalidInput` only for what makes the whole file unreadable (a CSV without a usable
    header); anything wrong with one row is an error row.
    """
    lines = _byte_lines(data)
    return _read_csv(lines) if fmt == "csv" else _read_jsonl(lines)


def count_rows(data: bytes | IO[bytes], fmt: Format) -> int:
    """How many rows `read_rows` yields (this reads, and so consumes, a stream)."""
    return sum(1 for _ in read_rows(data, fmt))


def _byte_lines(data: bytes | IO[bytes]) -> Iterator[bytes]:
    """Physical lines, from bytes or anything with `read(n)` (an S3 body iterates in chunks, not lines)."""
    if isinstance(data, bytes | bytearray):
        lines: Iterator[bytes] = iter(io.BytesIO(data))
    else:
        lines = _split_stream(data)
    first = next(lines, None)
    if first is None:
        return
    yield first.removeprefix(_BOM)
    yield from lines


def _split_stream(stream: IO[bytes]) -> Iterator[bytes]:
    parts: list[bytes] = []
    while chunk := stream.read(_READ_SIZE):
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            parts.append(chunk[start : end + 1])
            yield b"".join(parts)
            parts, start = [], end + 1
        if start < len(chunk):
            parts.append(chunk[start:])
    if parts:
        yield b"".join(parts)


class _DecodedLines:
    """Feeds `csv.reader` text lines, remembering whether any line since the last record was not UTF-8."""

    def __init__(self, lines: Iterator[bytes]) -> None:
        self._lines = lines
        self.undecodable = False

    def __iter__(self) -> _DecodedLines:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError:
            self.undecodable = True
            return line.decode("utf-8", errors="replace")


def _read_csv(lines: Iterator[bytes]) -> Iterator[SourceRow]:
    source = _DecodedLines(lines)
    first = next((line for line in source if line.strip()), None)
    if first is None:
        raise InvalidInput("the file is empty: a CSV import needs a header row naming its columns")
    # Spreadsheets in many locales save with ';' (or tabs); the header line says which one.
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(itertools.chain([first], source), delimiter=delimiter)
    try:
        header = [name.strip() for name in next(reader)]
    except csv.Error as exc:
        raise InvalidInput(f"the header row is not valid CSV: {exc}") from None
    if source.undecodable:
        raise InvalidInput("the header row is not UTF-8 text: save the file as CSV UTF-8")
    _check_header(header)
    number = 0
    while True:
        source.undecodable = False
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            number += 1
            yield SourceRow(number, None, f"malformed CSV: {exc}")
            continue
        if not record or (len(record) == 1 and not record[0].strip()):
            continue
        number += 1
        if source.undecodable:
            yield SourceRow(number, None, "not UTF-8 text: save the file as CSV UTF-8", _clip_fields(record))
        elif len(record) != len(header):
            reason = f"expected {len(header)} fields, got {len(record)}"
            yield SourceRow(number, None, reason, _clip_fields(record))
        else:
            yield SourceRow(number, dict(zip(header, record, strict=True)))


def _check_header(header: list[str]) -> None:
    empty = [str(position) for position, name in enumerate(header, 1) if not name]
    repeated = sorted(name for name, times in Counter(header).items() if name and times > 1)
    problems = []
    if empty:
        problems.append(f"column {', '.join(empty)} of the header has no name")
    if repeated:
        problems.append(f"{', '.join(map(repr, repeated))} appears more than once in the header")
    if problems:
        raise InvalidInput(f"the header row is unusable: {'; '.join(problems)}")


def _read_jsonl(lines: Iterator[bytes]) -> Iterator[SourceRow]:
    number = 0
    for line in lines:
        if not line.strip():
            continue
        number += 1
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            yield SourceRow(number, None, "not UTF-8 text", _clip(line.decode("utf-8", errors="replace").strip()))
            continue
        text = text.strip()
        try:
            value = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            yield SourceRow(number, None, f"invalid JSON: {exc.msg} at character {exc.pos + 1}", _clip(text))
            continue
        except (ValueError, RecursionError) as exc:
            yield SourceRow(number, None, f"invalid JSON: {exc or 'nested too deeply'}", _clip(text))
            continue
        if isinstance(value, dict):
            yield SourceRow(number, value)
        else:
            yield SourceRow(number, None, f"expected a JSON object, got {_kind(value)}", _clip(text))


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _clip(text: str) -> str:
    return text if len(text) <= MAX_RAW_CHARS else text[:MAX_RAW_CHARS] + "..."


def _clip_fields(record: list[str]) -> list[str]:
    return [_clip(field) for field in record]


def _kind(value: Any) -> str:
    kinds = {bool: "true/false", dict: "an object", list: "an array", str: "text", type(None): "null"}
    return kinds.get(type(value), "a number")


# -- chunks --------------------------------------------------------------------------------------
def plan_chunks(total_rows: int, chunk_size: int) -> list[Chunk]:
    """Consecutive row ranges (1-based, inclusive) covering rows 1..total_rows exactly once."""
    if total_rows < 0 or chunk_size < 1:
        raise ValueError(f"cannot plan {total_rows} rows in chunks of {chunk_size}")
    return [
        Chunk(index, first, min(first + chunk_size - 1, total_rows))
        for index, first in enumerate(range(1, total_rows + 1, chunk_size))
    ]


def rows_in_chunk(rows: Iterable[SourceRow], chunk: Chunk) -> Iterator[SourceRow]:
    """The chunk's rows, reading no further than its last one.

    A CSV file cannot be split by byte ranges (a quoted field may hold a newline), so every chunk
    reads from the top of the file and skips the rows before its own.
    """
    for row in rows:
        if row.number > chunk.last_row:
            return
        if row.number >= chunk.first_row:
            yield row


# -- rows to records -----------------------------------------------------------------------------
class _CellError(ValueError):
    pass


def row_to_upsert(row: SourceRow, request: ImportRequest, *, import_id: str, imported_at: datetime) -> CustomerUpsert:
    """The record a row stands for; `RowError` with a reason naming the column if it cannot be one.

    Identities are checked with the engine's normalisation; phones are sent in E.164 (the record
    carries no region), other identifiers as the file has them, trimmed. An invalid mapping
    raises `InvalidInput`, which fails the job rather than every row: validate it up front.
    """
    if row.error is not None or row.values is None:
        raise RowError(row.number, row.error or "the row has no values")
    plan = _compile(tuple(request.mapping.items()))
    values = row.values
    imported_at = imported_at if imported_at.tzinfo else imported_at.replace(tzinfo=UTC)

    def fail(column: str, target: str, reason: str) -> NoReturn:
        raise RowError(row.number, f"column {column!r} ({target}): {reason}")

    observed_at = None
    for column, target, parsed in plan.columns:
        if parsed.kind == "observed_at":
            try:
                observed_at = _instant(values.get(column), imported_at)
            except _CellError as exc:
                fail(column, target, str(exc))
    try:
        proof = ConsentProof(
            source=request.source, captured_at=observed_at or imported_at, notice_version=f"import:{import_id}"
        )
    except ValidationError as exc:
        raise InvalidInput(f"import {import_id!r} cannot stamp consent proofs: {_describe(exc)}") from None

    identities: dict[NormalizedIdentity, IdentityIn] = {}
    attributes: dict[str, Any] = {}
    attribute_columns: dict[str, str] = {}
    consents: list[ConsentIn] = []
    preferences: dict[str, Any] = {}
    for column, target, parsed in plan.columns:
        cell = values.get(column)
        try:
            if parsed.kind == "identity":
                identity = _identity(parsed.name, cell, request)
                if identity is not None:
                    identities.setdefault(identity[0], identity[1])
            elif parsed.kind == "consent":
                state = _consent_state(cell)
                if state is not None:
                    consent = {"channel": parsed.channel, "purpose": parsed.purpose, "state": state, "proof": proof}
                    consents.append(ConsentIn.model_validate(consent))
            elif parsed.kind == "preference":
                preference = _preference(parsed.name, cell)
                if preference is not None:
                    preferences[parsed.name] = preference
            elif parsed.kind == "attribute":
                attribute = _attribute(cell)
                if attribute is not None:
                    attributes[parsed.name] = attribute
                    attribute_columns[parsed.name] = column
        except InvalidIdentity as exc:
            fail(column, target, exc.detail)
        except ValidationError as exc:
            fail(column, target, _describe(exc, located=False))
        except _CellError as exc:
            fail(column, target, str(exc))

    if not identities:
        empty = ", ".join(repr(column) for column in plan.identity_columns)
        raise RowError(row.number, f"no identity: the row has none of {'/'.join(IDENTITY_TARGETS)} ({empty} empty)")
    fields: dict[str, Any] = {
        "source": request.source,
        "identities": list(identities.values()),
        "attributes": attributes,
        "consents": consents,
        "preferences": Preferences(**preferences) if preferences else None,
        "observed_at": observed_at,
    }
    try:
        return CustomerUpsert(**fields)
    except ValidationError as exc:
        # Find the attribute at fault, so the reason names its column.
        for name, value in attributes.items():
            try:
                CustomerUpsert(**{**fields, "attributes": {name: value}})
            except ValidationError as single:
                fail(attribute_columns[name], name, _describe(single, located=False))
        raise RowError(row.number, _describe(exc)) from None


def _text(cell: Any) -> str | None:
    if cell is None:
        return None
    if isinstance(cell, str):
        return cell.strip() or None
    if isinstance(cell, int) and not isinstance(cell, bool):
        return str(cell)
    raise _CellError(f"expected text, got {_kind(cell)}")


def _identity(kind: str, cell: Any, request: ImportRequest) -> tuple[NormalizedIdentity, IdentityIn] | None:
    text = _text(cell)
    if text is None:
        return None
    namespace = request.source if kind == "external_id" else ""
    identity = IdentityIn.model_validate({"type": kind, "value": text, "namespace": namespace})
    normalized = normalize_identity(identity, default_region=request.default_phone_region)
    if kind == "phone":
        identity = identity.model_copy(update={"value": normalized.value})
    return normalized, identity


def _consent_state(cell: Any) -> str | None:
    if isinstance(cell, bool):
        return "granted" if cell else "denied"
    text = _text(cell)
    if text is None:
        return None
    if text.lower() not in CONSENT_ANSWERS:
        raise _CellError(f"{text!r} is not a yes or no (use yes/no, true/false, 1/0, granted/denied, y/n)")
    return CONSENT_ANSWERS[text.lower()]


def _preference(name: str, cell: Any) -> Any:
    value: Any
    if name == "preferred_channels":
        if isinstance(cell, list) and all(isinstance(item, str) for item in cell):
            items = cell
        else:
            text = _text(cell)
            items = [] if text is None else text.replace(";", ",").split(",")
        value = list(dict.fromkeys(item.strip().lower() for item in items if item.strip())) or None
        unknown = [channel for channel in value or () if channel not in CHANNELS]
        if unknown:
            raise _CellError(f"{', '.join(map(repr, unknown))} is not a channel ({', '.join(CHANNELS)})")
    elif name == "language":
        value = _text(cell)
        if value is not None:
            primary, _, rest = value.replace("_", "-").partition("-")
            value = f"{primary.lower()}-{rest}" if rest else primary.lower()
    else:
        value = _text(cell)
    if value is None:
        return None
    try:
        return getattr(Preferences.model_validate({name: value}), name)
    except ValidationError as exc:
        if name == "language":
            raise _CellError(f"{cell!r} is not a language tag (like en, de or pt-BR)") from None
        raise _CellError(_describe(exc, located=False)) from None


def _attribute(cell: Any) -> str | int | float | bool | None:
    if isinstance(cell, str):
        return cell.strip() or None
    if isinstance(cell, float) and not math.isfinite(cell):
        raise _CellError("expected a finite number")
    if cell is None or isinstance(cell, str | int | float | bool):
        return cell
    raise _CellError(f"expected a single value, got {_kind(cell)}")


def _instant(cell: Any, imported_at: datetime) -> datetime | None:
    text = _text(cell)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _CellError(
            f"{text!r} is not an ISO 8601 date or date-time (like 2024-05-31 or 2024-05-31T14:30Z)"
        ) from None
    parsed = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    if parsed > imported_at + FUTURE_TOLERANCE:
        raise _CellError(f"{text!r} is in the future")
    return parsed


def _describe(exc: ValidationError, *, located: bool = True) -> str:
    reasons = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) if located else ""
        message = error["msg"].removeprefix("Value error, ")
        reasons.append(f"{where}: {message}" if where else message)
    return "; ".join(reasons)


# -- idempotence ---------------------------------------------------------------------------------
def row_fingerprint(upsert: CustomerUpsert) -> str:
    """sha256 of what the record says, not how or when it was sent: identities normalised, consent
    proofs (capture time, import id) left out, so the same row imported again has the same one."""
    identities = set()
    for identity in upsert.identities:
        try:
            normalized = normalize_identity(identity)
        except InvalidIdentity:
            normalized = NormalizedIdentity(identity.type, identity.namespace, identity.value.strip())
        identities.add((normalized.type, normalized.namespace, normalized.value))
    content = {
        "v": 1,
        "source": upsert.source,
        "identities": sorted(identities),
        "attributes": upsert.attributes,
        "consents": sorted((c.channel, c.purpose, c.state) for c in upsert.consents),
        "preferences": upsert.preferences.model_dump(mode="json") if upsert.preferences else None,
        "observed_at": upsert.observed_at.astimezone(UTC).isoformat() if upsert.observed_at else None,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


# -- the error report ----------------------------------------------------------------------------
class ErrorReport:
    """The rows that were not imported and why: `row,reason,data`, `data` being the row as compact JSON."""

    def __init__(self) -> None:
        self._entries: list[tuple[int, str, str]] = []

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, number: int, reason: str, data: Any) -> None:
        compact = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
        self._entries.append((number, reason, compact))

    def add_row(self, row: SourceRow, reason: str | None = None) -> None:
        self.add(row.number, reason or row.error or "rejected", row.data)

    def render(self) -> bytes:
        return _render(self._entries)


def merge_reports(parts: Iterable[bytes]) -> bytes:
    """One report from the chunks' reports: a single header, rows in file order."""
    entries: list[tuple[int, str, str]] = []
    for part in parts:
        text = part.decode("utf-8-sig")
        if not text.strip():
            continue
        reader = csv.reader(io.StringIO(text, newline=""))
        if tuple(next(reader, ())) != REPORT_HEADER:
            raise InvalidInput(f"not an error report: the header is not {','.join(REPORT_HEADER)}")
        for record in reader:
            if not record:
                continue
            if len(record) != len(REPORT_HEADER) or not record[0].isdigit():
                raise InvalidInput(f"not an error report: unexpected line {record!r}")
            entries.append((int(record[0]), record[1], record[2]))
    return _render(entries)


def _render(entries: list[tuple[int, str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(REPORT_HEADER)
    for number, reason, data in sorted(entries, key=lambda entry: entry[0]):
        writer.writerow((number, _defuse(reason), _defuse(data)))
    return out.getvalue().encode("utf-8")


def _defuse(cell: str) -> str:
    """Spreadsheets run cells starting with '=', '+', '-' or '@' as formulas; the report is opened in one."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell
