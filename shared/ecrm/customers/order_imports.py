"""The orders mapping of a bulk import: a file's rows read as orders from another system (an ERP, a till).

A row is one line of an order (CSV), or one order with its `lines` as a list (JSON Lines); the rows of one
order follow each other and share its `order_ref` (an ERP export lists orders line by line). The import
never splits an order across chunks (`keyed_rows`), so a chunk sees each of its orders whole. Everything
here is checked against the transactions engine's contract (`ecrm.transactions.models`), so a row the
engine would refuse lands in the import's error report, with its number and reason, and nothing of its
order is handed over; the other orders of the file go on.

Targets (the customer import's identity targets name the customer):
- `order_ref` (required): the order's number in its system; with the import's source, its idempotency key.
- `email`, `phone`, `external_id`, `loyalty_card`, `device_id` (at least one): the customer, resolved like
  a customer import row carrying only those identities (matched, created when nobody has them, merged).
- `placed_at` (required): when it was placed, ISO 8601; the order keeps that date (lake, models, history).
- `currency` (required, ISO 4217), `channel` (required: web, app, store, callcenter, marketplace, partner),
  `store`, `status` (placed, the default, paid, shipped, delivered or cancelled).
- the line: `sku` and `quantity` (required), `unit_price` (required: a decimal in the currency's major unit,
  `19.99` or `19,99`), `name` (the sku when absent), `category`; or `lines`, a list of objects with those keys.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

from pydantic import TypeAdapter, ValidationError

from ecrm.core.errors import InvalidInput
from ecrm.customers.identity import NormalizedIdentity
from ecrm.customers.imports import (
    IDENTITY_TARGETS,
    IGNORE,
    RowError,
    SourceRow,
    _CellError,
    _describe,
    _identity,
    _instant,
    _kind,
    _text,
    validate_mapping,
)
from ecrm.customers.models import IdentityIn, ImportRequest
from ecrm.transactions.models import (
    Currency,
    ImportedStatus,
    OrderIn,
    OrderLineIn,
    SalesChannel,
    ShortText,
    minor_units,
)

ORDER_REF = "order_ref"
LINES = "lines"
ORDER_FIELDS = ("placed_at", "currency", "channel", "store", "status")
LINE_FIELDS = ("sku", "name", "quantity", "unit_price", "category")
REQUIRED = (ORDER_REF, "placed_at", "currency", "channel")
MAX_LINES = 100  # what `OrderIn` takes
# A customer id the contract accepts, to check a row before its customer is resolved.
PLACEHOLDER_CUSTOMER = "cus_" + "0" * 26
_CURRENCY: TypeAdapter[str] = TypeAdapter(Currency)
_CHANNEL: TypeAdapter[str] = TypeAdapter(SalesChannel)
_STATUS: TypeAdapter[str] = TypeAdapter(ImportedStatus)
_SHORT_TEXT: TypeAdapter[str] = TypeAdapter(ShortText)


def validate_import_mapping(request: ImportRequest) -> None:
    """Raise `InvalidInput` naming every problem of the mapping for the import's kind, before any row is read."""
    if request.kind == "customers":
        validate_mapping(request.mapping)
        return
    known = {ORDER_REF, LINES, *IDENTITY_TARGETS, *ORDER_FIELDS, *LINE_FIELDS}
    problems = [
        f"column {column!r} -> {target!r}: not an order field (use {', '.join(sorted(known))}, or '{IGNORE}')"
        for column, target in request.mapping.items()
        if target != IGNORE and target not in known
    ]
    targets = [target for target in request.mapping.values() if target != IGNORE]
    problems += [
        f"{target!r} is mapped from more than one column"
        for target in sorted(set(targets))
        if target not in IDENTITY_TARGETS and targets.count(target) > 1
    ]
    problems += [f"no column is mapped to {target}" for target in REQUIRED if target not in targets]
    if not set(targets) & set(IDENTITY_TARGETS):
        problems.append(f"no identity: map at least one column to {', '.join(IDENTITY_TARGETS)} (the customer)")
    line_targets = set(targets) & set(LINE_FIELDS)
    if LINES in targets and line_targets:
        problems.append(f"map either {LINES} or the line's own columns ({', '.join(sorted(line_targets))}), not both")
    elif LINES not in targets:
        problems += [
            f"no column is mapped to {target}" for target in ("sku", "quantity", "unit_price") if target not in targets
        ]
    if problems:
        raise InvalidInput(f"invalid orders mapping: {'; '.join(problems)}", problems=problems)


def _column_of(request: ImportRequest, target: str) -> str | None:
    return next((column for column, mapped in request.mapping.items() if mapped == target), None)


def order_ref_of(row: SourceRow, request: ImportRequest) -> str | None:
    """The row's order reference, or None for a row that cannot be read or has none (it stands alone)."""
    column = _column_of(request, ORDER_REF)
    if row.values is None or column is None:
        return None
    try:
        return _text(row.values.get(column))
    except _CellError:
        return None


def keyed_rows(rows: Iterable[SourceRow], request: ImportRequest) -> Iterator[tuple[SourceRow, str | None]]:
    """The rows with their order reference, for chunking: a chunk may end only where the reference changes.

    An order with more rows than an order takes lines is an error on each of its rows (keyed None, so that a
    chunk may end inside it): the import would otherwise carry a file of one endless order in one chunk."""
    group: list[SourceRow] = []
    ref: str | None = None
    oversized = False

    def too_many(row: SourceRow) -> SourceRow:
        reason = f"order {ref!r} has more than {MAX_LINES} rows: an order takes at most {MAX_LINES} lines"
        return SourceRow(row.number, None, reason, row.data)

    for row in rows:
        row_ref = order_ref_of(row, request)
        if row_ref is None or row_ref != ref:
            if not oversized:
                yield from ((kept, ref) for kept in group)
            group, ref, oversized = [], row_ref, False
            if row_ref is None:
                yield row, None
                continue
        if oversized:
            yield too_many(row), None
            continue
        group.append(row)
        if len(group) > MAX_LINES:
            yield from ((too_many(kept), None) for kept in group)
            group, oversized = [], True
    if not oversized:
        yield from ((kept, ref) for kept in group)


def group_orders(rows: Iterable[SourceRow], request: ImportRequest) -> Iterator[list[SourceRow]]:
    """Consecutive rows of one order reference together; a row without one is a group of its own."""
    group: list[SourceRow] = []
    ref: str | None = None
    for row in rows:
        row_ref = order_ref_of(row, request)
        if group and (row_ref is None or row_ref != ref):
            yield group
            group = []
        group.append(row)
        ref = row_ref
    if group:
        yield group


@dataclass(frozen=True)
class OrderDraft:
    """An order read from its rows, checked against the contract, waiting for its customer."""

    order_ref: str
    rows: tuple[int, ...]
    identities: tuple[IdentityIn, ...]
    order: OrderIn  # for `PLACEHOLDER_CUSTOMER`
    placed_at: datetime
    status: ImportedStatus

    def for_customer(self, customer_id: str) -> OrderIn:
        return self.order.model_copy(update={"customer_id": customer_id})

    def fingerprint(self, earns_points: bool) -> str:
        """The order's content as the file gives it: the same order imported again has the same one.

        The customer is left out: it is whom the identities resolve to, which a merge changes, and moving an
        order to another customer is the customer store's merge, not a re-import."""
        order = self.order.model_dump(mode="json", exclude={"customer_id"})
        order["lines"] = sorted(order["lines"], key=lambda line: line["sku"])  # listed in any order, one order
        content = {
            "v": 1,
            "order": order,
            "placed_at": self.placed_at.isoformat(),
            "status": self.status,
            "earns_points": earns_points,
        }
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class OrderRejected(InvalidInput):
    """One of an order's rows cannot be imported: each row of the order is reported, the bad one with why."""

    def __init__(self, bad: RowError, rows: list[SourceRow], order_ref: str | None) -> None:
        super().__init__(bad.detail)
        self.bad = bad
        self.reasons = {
            row.number: bad.reason
            if row.number == bad.number
            else f"order {order_ref!r} not imported: row {bad.number} is invalid"
            for row in rows
        }


def read_order(rows: list[SourceRow], request: ImportRequest, imported_at: datetime) -> OrderDraft:
    """The order its rows stand for, or `OrderRejected` naming the bad row and why."""
    ref = order_ref_of(rows[0], request)
    try:
        return _read_order(rows, request, imported_at)
    except RowError as exc:
        raise OrderRejected(exc, rows, ref) from None


def _read_order(rows: list[SourceRow], request: ImportRequest, imported_at: datetime) -> OrderDraft:
    for row in rows:
        if row.error is not None or row.values is None:
            raise RowError(row.number, row.error or "the row has no values")
    first = rows[0]
    ref = order_ref_of(first, request)
    if ref is None:
        raise RowError(
            first.number, f"column {_column_of(request, ORDER_REF)!r} ({ORDER_REF}): the order has no reference"
        )
    identities: dict[NormalizedIdentity, IdentityIn] = {}
    order_fields: dict[str, Any] = {}
    lines: dict[str, dict[str, Any]] = {}
    for row in rows:
        fields, row_lines = _read_row(row, request, imported_at, identities)
        for name, value in fields.items():
            if name in order_fields and order_fields[name] != value:
                raise RowError(
                    row.number, f"{name} {value!r} differs from the order's earlier row ({order_fields[name]!r})"
                )
            order_fields[name] = value
        for line in row_lines:
            earlier = lines.get(line["sku"])
            if earlier is None:
                lines[line["sku"]] = line
            elif (earlier["unit_price_minor"], earlier["name"]) == (line["unit_price_minor"], line["name"]):
                earlier["quantity"] += line["quantity"]  # the same article on two rows: one line of both
            else:
                raise RowError(row.number, f"sku {line['sku']!r} is on an earlier row of the order at another price")
    if not identities:
        columns = ", ".join(repr(c) for c, t in request.mapping.items() if t in IDENTITY_TARGETS)
        raise RowError(first.number, f"no identity: the order has no customer ({columns} empty)")
    for name in ("placed_at", "currency", "channel"):
        if order_fields.get(name) is None:
            raise RowError(first.number, f"column {_column_of(request, name)!r} ({name}): required")
    try:
        order = OrderIn(
            customer_id=PLACEHOLDER_CUSTOMER,
            currency=order_fields["currency"],
            channel=order_fields["channel"],
            store=order_fields.get("store"),
            external_ref=ref,
            lines=[OrderLineIn.model_validate(line) for line in lines.values()],
        )
    except ValidationError as exc:
        raise RowError(first.number, _describe(exc)) from None
    return OrderDraft(
        order_ref=ref,
        rows=tuple(row.number for row in rows),
        identities=tuple(identities.values()),
        order=order,
        placed_at=order_fields["placed_at"],
        status=order_fields.get("status") or "placed",
    )


def _read_row(
    row: SourceRow,
    request: ImportRequest,
    imported_at: datetime,
    identities: dict[NormalizedIdentity, IdentityIn],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The order's fields this row gives, and its lines; identities are added to `identities`."""
    assert row.values is not None

    def fail(column: str, target: str, reason: str) -> NoReturn:
        raise RowError(row.number, f"column {column!r} ({target}): {reason}")

    fields: dict[str, Any] = {}
    line: dict[str, Any] = {}
    lines: list[dict[str, Any]] = []
    for column, target in request.mapping.items():
        cell = row.values.get(column)
        try:
            if target in IDENTITY_TARGETS:
                identity = _identity(target, cell, request)
                if identity is not None:
                    identities.setdefault(identity[0], identity[1])
            elif target in ORDER_FIELDS:
                value = _order_field(target, cell, imported_at)
                if value is not None:
                    fields[target] = value
            elif target in LINE_FIELDS:
                line[target] = cell
            elif target == LINES:
                lines += _listed_lines(cell)
        except InvalidInput as exc:
            fail(column, target, exc.detail)
        except ValidationError as exc:
            fail(column, target, _describe(exc, located=False))
        except _CellError as exc:
            fail(column, target, str(exc))
    if line:
        lines.append(line)
    currency = fields.get("currency") or "EUR"
    try:
        return fields, [_line(raw, currency) for raw in lines]
    except _CellError as exc:
        raise RowError(row.number, str(exc)) from None


def _order_field(target: str, cell: Any, imported_at: datetime) -> Any:
    if target == "placed_at":
        return _instant(cell, imported_at)
    text = _text(cell)
    if text is None:
        return None
    if target == "currency":
        return _CURRENCY.validate_python(text.upper())
    if target == "channel":
        return _CHANNEL.validate_python(text.lower())
    if target == "status":
        return _STATUS.validate_python(text.lower())
    return _SHORT_TEXT.validate_python(text)


def _listed_lines(cell: Any) -> list[dict[str, Any]]:
    if isinstance(cell, str):
        try:
            cell = json.loads(cell)
        except json.JSONDecodeError:
            raise _CellError("expected a JSON list of lines") from None
    if not isinstance(cell, list) or not all(isinstance(item, dict) for item in cell):
        raise _CellError(f"expected a list of line objects, got {_kind(cell)}")
    unknown = sorted({key for item in cell for key in item} - set(LINE_FIELDS))
    if unknown:
        raise _CellError(f"a line has {', '.join(map(repr, unknown))}: a line takes {', '.join(LINE_FIELDS)}")
    return cell


def _line(raw: dict[str, Any], currency: str) -> dict[str, Any]:
    """A line's cells as `OrderLineIn` fields; `_CellError` naming the field at fault."""
    sku = _text(raw.get("sku"))
    if sku is None:
        raise _CellError("the line has no sku")
    try:
        line = {
            "sku": sku,
            "name": _text(raw.get("name")) or sku,
            "category": _category(raw.get("category")),
            "quantity": _quantity(raw.get("quantity")),
            "unit_price_minor": _price(raw.get("unit_price"), currency),
        }
        OrderLineIn.model_validate(line)
    except ValidationError as exc:
        raise _CellError(f"line {sku!r}: {_describe(exc)}") from None
    except _CellError as exc:
        raise _CellError(f"line {sku!r}: {exc}") from None
    return line


def _category(cell: Any) -> str | None:
    text = _text(cell)
    return None if text is None else text.lower().replace(" ", "-")


def _quantity(cell: Any) -> int:
    if isinstance(cell, int) and not isinstance(cell, bool):
        return cell
    text = _text(cell) if not isinstance(cell, float) else str(cell)
    if text is None:
        raise _CellError("quantity: required")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise _CellError(f"quantity: {text!r} is not a whole number") from None
    if number != number.to_integral_value():
        raise _CellError(f"quantity: {text!r} is not a whole number")
    return int(number)


def _price(cell: Any, currency: str) -> int:
    """A decimal in the currency's major unit; '19,99' as a decimal comma, never a thousands separator."""
    if isinstance(cell, bool) or cell is None:
        raise _CellError("unit_price: required" if cell is None else "unit_price: expected a number")
    text = str(cell) if isinstance(cell, int | float) else _text(cell)
    if text is None:
        raise _CellError("unit_price: required")
    if "," in text and "." not in text and text.count(",") == 1:
        text = text.replace(",", ".")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise _CellError(f"unit_price: {text!r} is not a decimal number (like 19.99)") from None
    if amount < 0:
        raise _CellError(f"unit_price: {text!r} is negative (a refund is a return of the order)")
    try:
        return minor_units(amount, currency)
    except ValueError as exc:
        raise _CellError(f"unit_price: {exc}") from None
