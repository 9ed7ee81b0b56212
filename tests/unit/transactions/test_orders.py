"""The order's rules without AWS: totals, the status machine, partial returns, the key's fingerprint."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ecrm.core.errors import Conflict
from ecrm.transactions import orders
from ecrm.transactions.models import OrderIn, ReturnIn, StatusChangeIn
from pydantic import ValidationError

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CUSTOMER = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"
ORDER_ID = "ord_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"


def order_in(**overrides: object) -> OrderIn:
    body = {
        "customer_id": CUSTOMER,
        "currency": "EUR",
        "channel": "web",
        "store": "shop.example",
        "lines": [
            {"sku": "SHOE-1", "name": "Trail shoe", "category": "shoes", "quantity": 2, "unit_price_minor": 4999},
            {"sku": "SOCK-1", "name": "Socks", "category": "socks", "quantity": 3, "unit_price_minor": 599},
        ],
        **overrides,
    }
    return OrderIn.model_validate(body)


def delivered() -> orders.Order:
    order, _ = orders.new_order(ORDER_ID, order_in(), NOW)
    for status in ("paid", "shipped", "delivered"):
        order, _ = orders.change_status(order, StatusChangeIn(status=status), NOW)  # type: ignore[arg-type]
    return order


def test_an_order_totals_its_lines_in_minor_units() -> None:
    # Given two lines / When placed / Then the total is exact integer arithmetic and the event carries it
    order, event = orders.new_order(ORDER_ID, order_in(), NOW)
    assert order.total_minor == 2 * 4999 + 3 * 599
    assert (order.status, event.total_minor, event.placed_at) == ("placed", order.total_minor, NOW)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("currency", "eur"),
        ("channel", "fax"),
        ("lines", []),
        ("lines", [{"sku": "A", "name": "a", "quantity": 1, "unit_price_minor": 1.5}]),
        ("lines", [{"sku": "A", "name": "a", "quantity": 0, "unit_price_minor": 1}]),
        ("lines", [{"sku": "A", "name": "a", "quantity": 1, "unit_price_minor": -1}]),
        ("lines", [{"sku": "A", "name": "a", "quantity": 1, "unit_price_minor": 1}] * 2),
    ],
)
def test_bad_orders_are_refused_before_anything_happens(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        order_in(**{field: value})


def test_the_fingerprint_ignores_key_order_but_not_content() -> None:
    a = order_in()
    b = OrderIn.model_validate(dict(reversed(list(a.model_dump(mode="json").items()))))
    assert orders.fingerprint(a) == orders.fingerprint(b)
    assert orders.fingerprint(a) != orders.fingerprint(order_in(store="other"))


def test_the_status_machine_moves_forward_only() -> None:
    order, _ = orders.new_order(ORDER_ID, order_in(), NOW)
    with pytest.raises(Conflict, match="cannot become shipped"):
        orders.change_status(order, StatusChangeIn(status="shipped"), NOW)
    paid, event = orders.change_status(order, StatusChangeIn(status="paid"), NOW)
    assert (paid.status, paid.version, event.previous_status) == ("paid", 2, "placed")
    shipped, _ = orders.change_status(paid, StatusChangeIn(status="shipped"), NOW)
    with pytest.raises(Conflict, match="allowed: delivered"):
        orders.change_status(shipped, StatusChangeIn(status="cancelled"), NOW)


def test_cancelling_a_paid_order_refunds_it_and_a_placed_one_refunds_nothing() -> None:
    order, _ = orders.new_order(ORDER_ID, order_in(), NOW)
    _, unpaid = orders.change_status(order, StatusChangeIn(status="cancelled"), NOW)
    paid, _ = orders.change_status(order, StatusChangeIn(status="paid"), NOW)
    cancelled, event = orders.change_status(paid, StatusChangeIn(status="cancelled"), NOW)
    assert unpaid.refund_minor == 0
    assert event.refund_minor == cancelled.refunded_minor == order.total_minor


def test_partial_returns_refund_per_line_until_every_unit_is_back() -> None:
    order = delivered()
    first, event = orders.apply_return(
        order, ReturnIn.model_validate({"lines": [{"sku": "SHOE-1", "quantity": 1}]}), "ret_1", NOW
    )
    assert (first.status, first.refunded_minor, event.refund_minor, event.fully_returned) == (
        "delivered",
        4999,
        4999,
        False,
    )
    assert event.lines[0].category == "shoes"
    rest = ReturnIn.model_validate({"lines": [{"sku": "SHOE-1", "quantity": 1}, {"sku": "SOCK-1", "quantity": 3}]})
    second, event = orders.apply_return(first, rest, "ret_2", NOW)
    assert (second.status, second.refunded_minor, event.fully_returned) == ("returned", order.total_minor, True)
    assert [r.return_id for r in second.returns] == ["ret_1", "ret_2"]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([{"sku": "SHOE-1", "quantity": 3}], "more units returned"),
        ([{"sku": "HAT-1", "quantity": 1}], "no line for HAT-1"),
    ],
)
def test_a_return_of_what_was_not_bought_is_unprocessable(lines: list[dict[str, object]], message: str) -> None:
    with pytest.raises(orders.UnprocessableOrder, match=message):
        orders.apply_return(delivered(), ReturnIn.model_validate({"lines": lines}), "ret_1", NOW)


def test_an_order_not_yet_shipped_takes_no_return() -> None:
    order, _ = orders.new_order(ORDER_ID, order_in(), NOW)
    with pytest.raises(Conflict, match="takes no return"):
        orders.apply_return(order, ReturnIn.model_validate({"lines": [{"sku": "SHOE-1", "quantity": 1}]}), "r", NOW)
