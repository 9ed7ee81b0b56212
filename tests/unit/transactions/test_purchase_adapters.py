"""The vendor adapter (signed requests, answers classified as refusal or outage, the callback's signature)
and the payment double (one charge per key, a refund of a lost answer, told to fail)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from ecrm.core.clock import FixedClock
from ecrm.transactions import purchases
from ecrm.transactions.models import PurchaseIn
from ecrm.transactions.payments import InMemoryChargeBook, PaymentDeclined, PaymentDouble, PaymentUnavailable
from ecrm.transactions.vendors import (
    SIGNATURE_HEADER,
    HttpAnswer,
    VendorClient,
    VendorEndpoint,
    VendorRefused,
    VendorUnavailable,
    signature,
    verify_signature,
)

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SECRET = "s" * 40
VENDOR = VendorEndpoint("acme", "https://vendor.example/api", SECRET)
PURCHASE = purchases.new_purchase(
    "pur_01JD3Z6Q5N8V4W7X2Y9A0B1C2D",
    "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D",
    PurchaseIn(product_id="prd_shoe", vendor_id="acme", quantity=1),
    purchases.PricedOffer("Trail shoe", "shoes", 4999, "EUR"),
    NOW,
)


class FakeHttp:
    def __init__(self, answer: HttpAnswer | Exception) -> None:
        self.answer = answer
        self.calls: list[tuple[str, bytes, dict[str, str]]] = []

    def __call__(self, url, body, headers, timeout):
        self.calls.append((url, body, dict(headers)))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_a_reservation_is_a_signed_post_keyed_by_the_purchase():
    http = FakeHttp(HttpAnswer(201, b'{"reference": "R-7"}'))
    assert VendorClient(FixedClock(NOW), http=http).reserve(VENDOR, PURCHASE) == "R-7"
    url, body, headers = http.calls[0]
    assert url == "https://vendor.example/api/reservations"
    assert json.loads(body) == {"purchase_id": PURCHASE.purchase_id, "product_id": "prd_shoe", "quantity": 1}
    # Then the vendor can verify it with the shared secret, and not with another one
    assert verify_signature(SECRET, headers[SIGNATURE_HEADER], body, now_s=NOW.timestamp(), tolerance_s=300)
    assert not verify_signature("x" * 40, headers[SIGNATURE_HEADER], body, now_s=NOW.timestamp(), tolerance_s=300)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (HttpAnswer(409), VendorRefused),
        (HttpAnswer(422), VendorRefused),
        (HttpAnswer(302), VendorRefused),
        (HttpAnswer(503), VendorUnavailable),
        (HttpAnswer(429), VendorUnavailable),
        (TimeoutError("slow"), VendorUnavailable),
        (ConnectionRefusedError("down"), VendorUnavailable),
    ],
)
def test_a_vendor_answer_is_a_refusal_or_an_outage(answer, error):
    with pytest.raises(error):
        VendorClient(FixedClock(NOW), http=FakeHttp(answer)).reserve(VENDOR, PURCHASE)


def test_a_release_of_nothing_is_fine_and_plain_http_only_to_the_loopback_when_allowed():
    VendorClient(FixedClock(NOW), http=FakeHttp(HttpAnswer(404))).release(VENDOR, PURCHASE.purchase_id)
    plain = VendorEndpoint("acme", "http://vendor.example", SECRET)
    with pytest.raises(VendorRefused):
        VendorClient(FixedClock(NOW), http=FakeHttp(HttpAnswer(200))).release(plain, PURCHASE.purchase_id)
    loopback = VendorEndpoint("acme", "http://127.0.0.1:9", SECRET)
    VendorClient(FixedClock(NOW), http=FakeHttp(HttpAnswer(200)), allow_loopback_http=True).release(loopback, "p")


def test_a_signature_outside_the_tolerance_or_malformed_is_refused():
    body = b'{"purchase_id": "x"}'
    stamped = int(NOW.timestamp()) - 301
    assert not verify_signature(SECRET, signature(SECRET, stamped, body), body, now_s=NOW.timestamp(), tolerance_s=300)
    for header in (None, "", "t=abc,v1=00", "v1=00", f"t={int(NOW.timestamp())}"):
        assert not verify_signature(SECRET, header, body, now_s=NOW.timestamp(), tolerance_s=300)
    # And the body is what is signed: one byte changed fails
    good = signature(SECRET, int(NOW.timestamp()), body)
    assert not verify_signature(SECRET, good, body + b" ", now_s=NOW.timestamp(), tolerance_s=300)


def test_the_payment_double_charges_once_per_key_and_refunds_by_key():
    book = InMemoryChargeBook()
    double = PaymentDouble(book)
    first = double.charge(key="pur_1", customer_id="c", amount_minor=100, currency="EUR")
    assert double.charge(key="pur_1", customer_id="c", amount_minor=100, currency="EUR") == first
    assert len(book.charges) == 1
    assert double.refund(key="pur_1")
    assert double.refund(key="pur_1")
    assert book.charges["pur_1"].refunded
    assert not double.refund(key="pur_never_charged")


def test_the_payment_double_can_be_told_to_fail():
    with pytest.raises(PaymentDeclined):
        PaymentDouble(InMemoryChargeBook(), decline_from_minor=1000).charge(
            key="k", customer_id="c", amount_minor=1000, currency="EUR"
        )
    with pytest.raises(PaymentUnavailable):
        PaymentDouble(InMemoryChargeBook(), unavailable=True).charge(
            key="k", customer_id="c", amount_minor=1, currency="EUR"
        )
