"""The orders mapping of an import: which mappings it takes, how rows group into orders and chunks, and what a
row becomes (checked against the transactions contract), or why it is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from ecrm.core.errors import InvalidInput
from ecrm.customers.imports import SourceRow
from ecrm.customers.models import ImportRequest
from ecrm.customers.order_imports import (
    MAX_LINES,
    OrderRejected,
    group_orders,
    keyed_rows,
    read_order,
    validate_import_mapping,
)

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
MAPPING = {
    "ref": "order_ref",
    "mail": "email",
    "date": "placed_at",
    "cur": "currency",
    "via": "channel",
    "sku": "sku",
    "qty": "quantity",
    "price": "unit_price",
}


def request(mapping: dict[str, str] | None = None, **fields: Any) -> ImportRequest:
    return ImportRequest.model_validate({"source": "erp", "kind": "orders", "mapping": mapping or MAPPING, **fields})


def row(number: int, **values: Any) -> SourceRow:
    base = {
        "ref": "A-1",
        "mail": "ann@example.com",
        "date": "2025-01-31",
        "cur": "EUR",
        "via": "store",
        "sku": f"SKU-{number}",
        "qty": "1",
        "price": "9.99",
    }
    return SourceRow(number, {**base, **values})


def test_a_customer_import_keeps_its_own_mapping_rules() -> None:
    validate_import_mapping(ImportRequest.model_validate({"source": "crm", "mapping": {"mail": "email"}}))
    with pytest.raises(InvalidInput):
        validate_import_mapping(ImportRequest.model_validate({"source": "crm", "mapping": {"ref": "order_ref"}}))


def test_an_orders_mapping_names_every_problem_at_once() -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_import_mapping(request({"ref": "order_ref", "x": "colour", "a": "sku", "b": "sku"}))
    detail = raised.value.detail
    for problem in ("'colour'", "'sku' is mapped from more than one column", "placed_at", "currency", "no identity"):
        assert problem in detail
    with pytest.raises(InvalidInput, match="either lines"):
        validate_import_mapping(request({**MAPPING, "items": "lines"}))
    validate_import_mapping(request({**MAPPING, "phone": "phone", "junk": "-"}))


def test_points_are_a_choice_of_orders_imports_only() -> None:
    assert request().earn_points is False
    with pytest.raises(ValueError, match="earn_points"):
        ImportRequest.model_validate({"source": "crm", "mapping": {"mail": "email"}, "earn_points": True})


def test_a_chunk_never_ends_inside_an_order() -> None:
    rows = [row(1), row(2), row(3, ref="A-2"), row(4, ref=""), row(5, ref="A-1")]
    assert [ref for _, ref in keyed_rows(rows, request())] == ["A-1", "A-1", "A-2", None, "A-1"]
    assert [[r.number for r in group] for group in group_orders(rows, request())] == [[1, 2], [3], [4], [5]]


def test_an_order_of_more_rows_than_an_order_takes_is_an_error_on_each_of_its_rows() -> None:
    rows = [row(n) for n in range(1, MAX_LINES + 3)] + [row(MAX_LINES + 3, ref="A-2")]
    keyed = list(keyed_rows(rows, request()))
    assert [r.number for r, _ in keyed] == list(range(1, MAX_LINES + 4))
    assert all(r.error and "more than 100" in r.error and ref is None for r, ref in keyed[:-1])
    assert keyed[-1][1] == "A-2"
    assert keyed[-1][0].error is None


def test_rows_become_one_order_checked_against_the_transactions_contract() -> None:
    rows = [row(1, price="19,99", qty="2"), row(2, sku="SKU-1", price="19,99", qty="1"), row(3, price="5")]
    draft = read_order(rows, request(), NOW)
    assert draft.order_ref == "A-1"
    assert draft.rows == (1, 2, 3)
    assert [(line.sku, line.quantity, line.unit_price_minor) for line in draft.order.lines] == [
        ("SKU-1", 3, 1999),  # the same article on two rows is one line
        ("SKU-3", 1, 500),
    ]
    assert draft.placed_at == datetime(2025, 1, 31, tzinfo=UTC)
    assert (draft.status, draft.order.external_ref) == ("placed", "A-1")
    assert [i.value for i in draft.identities] == ["ann@example.com"]
    assert draft.for_customer("cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D").customer_id == "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"


def test_a_price_follows_its_currency_minor_units() -> None:
    assert read_order([row(1, cur="JPY", price="1999")], request(), NOW).order.lines[0].unit_price_minor == 1999
    assert read_order([row(1, cur="KWD", price="1.999")], request(), NOW).order.lines[0].unit_price_minor == 1999


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"price": "19.999"}, "more than 2 decimals"),
        ({"price": "1,299.00"}, "not a decimal number"),
        ({"price": "-3"}, "negative"),
        ({"qty": "two"}, "not a whole number"),
        ({"qty": "0"}, "greater than or equal to 1"),
        ({"cur": "euro"}, "'cur' (currency)"),
        ({"via": "fax"}, "'via' (channel)"),
        ({"date": "2999-01-01"}, "in the future"),
        ({"date": ""}, "placed_at"),
        ({"mail": "not-an-email"}, "'mail' (email)"),
        ({"mail": ""}, "no identity"),
        ({"sku": "bad sku!"}, "line 'bad sku!'"),
    ],
)
def test_a_bad_row_is_refused_with_its_reason(values: dict[str, Any], reason: str) -> None:
    with pytest.raises(OrderRejected) as raised:
        read_order([row(1, **values)], request(), NOW)
    assert reason in raised.value.reasons[1]


def test_one_bad_row_refuses_its_whole_order_naming_it_on_the_others() -> None:
    with pytest.raises(OrderRejected) as raised:
        read_order([row(1), row(2, cur="USD"), row(3)], request(), NOW)
    reasons = raised.value.reasons
    assert "differs from the order's earlier row" in reasons[2]
    assert reasons[1] == reasons[3] == "order 'A-1' not imported: row 2 is invalid"


def test_a_json_lines_row_carries_its_lines_as_a_list() -> None:
    mapping = {k: v for k, v in MAPPING.items() if v not in ("sku", "quantity", "unit_price")} | {"items": "lines"}
    values = {
        "ref": "W-9",
        "mail": "ann@example.com",
        "date": "2025-06-01T08:00:00+02:00",
        "cur": "EUR",
        "via": "web",
        "items": [
            {"sku": "A", "name": "Apron", "quantity": 2, "unit_price": 12.5, "category": "Home"},
            {"sku": "B", "quantity": 1, "unit_price": "3"},
        ],
    }
    draft = read_order([SourceRow(1, values)], request(mapping, format="jsonl"), NOW)
    assert [(line.sku, line.name, line.category, line.unit_price_minor) for line in draft.order.lines] == [
        ("A", "Apron", "home", 1250),
        ("B", "B", None, 300),
    ]
    assert draft.placed_at == datetime(2025, 6, 1, 6, 0, tzinfo=UTC)
    with pytest.raises(OrderRejected, match="a line takes"):
        read_order([SourceRow(1, {**values, "items": [{"sku": "A", "colour": "red"}]})], request(mapping), NOW)


def test_the_fingerprint_is_the_order_not_how_its_lines_are_listed_or_whom_it_resolves_to() -> None:
    one = read_order([row(1), row(2)], request(), NOW)
    other = read_order([row(2), row(1)], request(), NOW)
    assert one.fingerprint(False) == other.fingerprint(False)
    assert one.fingerprint(False) != one.fingerprint(True)
    assert one.fingerprint(False) != read_order([row(1), row(2, price="9.98")], request(), NOW).fingerprint(False)
