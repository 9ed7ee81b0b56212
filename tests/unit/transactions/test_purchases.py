"""The brokered purchase's rules: the happy path in order, compensation named by its first failure, the
events each end publishes, and the order a completed purchase becomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from ecrm.transactions import purchases
from ecrm.transactions.models import PurchaseIn
from ecrm.transactions.purchases import IllegalPurchaseMove, PricedOffer, PurchaseAborted

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CUSTOMER = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"
OFFER = PricedOffer("Trail shoe", "shoes", 4999, "EUR", sku="SHOE-1.acme")


def requested():
    body = PurchaseIn(product_id="prd_shoe", vendor_id="acme", quantity=2)
    return purchases.new_purchase("pur_01JD3Z6Q5N8V4W7X2Y9A0B1C2D", CUSTOMER, body, OFFER, NOW)


def confirmed():
    p = requested()
    for status in ("reserved", "charged", "awaiting_confirmation", "confirmed"):
        p = purchases.advance(p, status, NOW)
    return p


def test_a_new_purchase_is_priced_from_the_offer():
    p = requested()
    assert (p.status, p.total_minor, p.currency, p.version) == ("requested", 9998, "EUR", 1)


def test_the_happy_path_goes_one_step_at_a_time_and_counts_versions():
    p = requested()
    with pytest.raises(IllegalPurchaseMove):
        purchases.advance(p, "charged", NOW)
    p = purchases.advance(p, "reserved", NOW, reservation_ref="R-1")
    assert (p.status, p.reservation_ref, p.version) == ("reserved", "R-1", 2)
    assert purchases.already_past(p, "reserved")
    assert purchases.already_past(p, "requested")
    assert not purchases.already_past(p, "charged")


def test_a_forward_step_after_compensation_started_is_aborted():
    p = purchases.start_compensation(requested(), "vendor_refused", "no", NOW)
    assert p is not None
    with pytest.raises(PurchaseAborted):
        purchases.advance(p, "reserved", NOW)
    assert not purchases.already_past(p, "reserved")


def test_compensation_keeps_its_first_failure():
    p = purchases.start_compensation(confirmed(), "confirmation_refused", "sold out", NOW)
    assert p is not None
    assert p.status == "compensating"
    assert purchases.start_compensation(p, "confirmation_timed_out", None, NOW) is None


def test_a_completed_purchase_is_not_compensated():
    done, _ = purchases.complete(confirmed(), "ord_01JD3Z6Q5N8V4W7X2Y9A0B1C2D", NOW)
    with pytest.raises(IllegalPurchaseMove):
        purchases.start_compensation(done, "completion_failed", None, NOW)


@pytest.mark.parametrize(
    ("error", "status", "failure"),
    [
        ("VendorRefused", "requested", "vendor_refused"),
        ("PaymentDeclined", "reserved", "payment_declined"),
        ("States.Timeout", "awaiting_confirmation", "confirmation_timed_out"),
        ("ConfirmationRefused", "awaiting_confirmation", "confirmation_refused"),
        ("Lambda.Unknown", "requested", "vendor_unavailable"),
        ("States.TaskFailed", "reserved", "payment_unavailable"),
        (None, "confirmed", "completion_failed"),
    ],
)
def test_a_saga_error_names_the_failure(error, status, failure):
    p = requested().model_copy(update={"status": status})
    assert purchases.failure_for(p, error) == failure


def test_failing_publishes_what_was_undone():
    p = purchases.start_compensation(confirmed(), "confirmation_timed_out", None, NOW)
    assert p is not None
    p = purchases.mark_refunded(purchases.mark_released(p, NOW), NOW + timedelta(seconds=1))
    failed, event = purchases.fail(p, NOW + timedelta(seconds=2))
    assert failed.status == "failed"
    assert (event.reason, event.released, event.refunded, event.customer_id) == (
        "confirmation_timed_out",
        True,
        True,
        CUSTOMER,
    )


def test_compensation_steps_run_only_while_compensating():
    with pytest.raises(IllegalPurchaseMove):
        purchases.mark_refunded(confirmed(), NOW)
    with pytest.raises(IllegalPurchaseMove):
        purchases.fail(confirmed(), NOW)


def test_a_completed_purchase_becomes_a_marketplace_order_with_the_vendors_sku():
    done, event = purchases.complete(confirmed(), "ord_01JD3Z6Q5N8V4W7X2Y9A0B1C2D", NOW)
    assert (done.status, done.order_id, event.order_id, event.total_minor) == (
        "completed",
        "ord_01JD3Z6Q5N8V4W7X2Y9A0B1C2D",
        "ord_01JD3Z6Q5N8V4W7X2Y9A0B1C2D",
        9998,
    )
    order = purchases.order_for(done)
    assert (order.channel, order.store, order.external_ref) == ("marketplace", "acme", done.purchase_id)
    assert [(line.sku, line.quantity, line.unit_price_minor) for line in order.lines] == [("SHOE-1.acme", 2, 4999)]
