"""An order of another system's history: placed at its own date, in its status, with or without points."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from ecrm.transactions import orders
from ecrm.transactions.models import OrderIn, OrderPlaced, OrderStatusChanged, minor_units

PLACED = datetime(2025, 2, 3, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
BODY = OrderIn(
    customer_id="cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D",
    currency="EUR",
    channel="store",
    external_ref="A-1",
    lines=[{"sku": "S", "name": "Shoe", "quantity": 2, "unit_price_minor": 4999}],  # type: ignore[list-item]
)


def test_minor_units_refuse_to_round() -> None:
    assert minor_units(Decimal("19.99"), "EUR") == 1999
    assert minor_units(Decimal("19.9"), "EUR") == 1990
    assert minor_units(Decimal("1999"), "JPY") == 1999
    with pytest.raises(ValueError, match="more than 0 decimals"):
        minor_units(Decimal("19.5"), "JPY")


def test_an_imported_order_keeps_its_date_and_status_with_one_placed_event() -> None:
    order, events = orders.imported_order(
        "ord_1", BODY, placed_at=PLACED, status="delivered", earns_points=False, now=NOW
    )
    assert (order.status, order.placed_at, order.updated_at, order.total_minor) == ("delivered", PLACED, NOW, 9998)
    (placed,) = events
    assert isinstance(placed, OrderPlaced)
    assert (placed.placed_at, placed.earns_points) == (PLACED, False)


def test_an_imported_cancelled_order_is_placed_then_cancelled_so_every_reader_nets_it_out() -> None:
    order, events = orders.imported_order(
        "ord_1", BODY, placed_at=PLACED, status="cancelled", earns_points=True, now=NOW
    )
    assert order.status == "cancelled"
    placed, cancelled = events
    assert isinstance(placed, OrderPlaced)
    assert placed.earns_points
    assert isinstance(cancelled, OrderStatusChanged)
    assert (cancelled.previous_status, cancelled.status, cancelled.changed_at) == ("placed", "cancelled", PLACED)


def test_the_import_fingerprint_ignores_the_customer_and_the_order_of_lines() -> None:
    two = BODY.model_copy(update={"lines": [*BODY.lines, BODY.lines[0].model_copy(update={"sku": "T"})]})
    reordered = two.model_copy(update={"lines": list(reversed(two.lines)), "customer_id": "cus_" + "1" * 26})
    kwargs = {"placed_at": PLACED, "status": "placed", "earns_points": False}
    assert orders.import_fingerprint(two, **kwargs) == orders.import_fingerprint(reordered, **kwargs)  # type: ignore[arg-type]
    assert orders.import_fingerprint(two, **kwargs) != orders.import_fingerprint(BODY, **kwargs)  # type: ignore[arg-type]
