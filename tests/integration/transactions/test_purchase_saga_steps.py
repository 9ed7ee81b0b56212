"""The brokered purchase's service on moto, step by step as the saga calls it: each end (brokered, vendor
refusal, payment failure, a vendor that never calls back, a refusal in the callback) leaves nothing half
done, each step run twice changes nothing, and the vendor's callback is verified and taken once."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from ecrm.core.clock import FixedClock
from ecrm.core.errors import Conflict, InvalidInput, NotFound, Unauthorized
from ecrm.core.outbox import messages_in
from ecrm.transactions.models import PurchaseIn, VendorIn
from ecrm.transactions.order_service import OrderService
from ecrm.transactions.orders import IdempotencyKeyReused
from ecrm.transactions.payments import InMemoryChargeBook, PaymentDeclined, PaymentDouble
from ecrm.transactions.purchase_service import PurchaseService
from ecrm.transactions.purchase_store import PurchaseStore, TokenClosed
from ecrm.transactions.purchases import PricedOffer, PurchaseAborted
from ecrm.transactions.vendors import HttpAnswer, VendorClient, VendorRefused, signature

from tests.integration.transactions.conftest import CUSTOMER, TABLE

SECRET = "vendor-secret-" + "x" * 30
OFFERS = {("prd_shoe", "acme"): PricedOffer("Trail shoe", "shoes", 4999, "EUR", sku="SHOE-1.acme")}
REQUEST = PurchaseIn(product_id="prd_shoe", vendor_id="acme", quantity=2)


class Offers:
    def priced_offer(self, product_id: str, vendor_id: str) -> PricedOffer | None:
        return OFFERS.get((product_id, vendor_id))


class Vendor:
    """The vendor's side of HTTP: records each signed request, answers as told per path."""

    def __init__(self) -> None:
        self.answers: dict[str, HttpAnswer] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, url: str, body: bytes, headers: Any, timeout: float) -> HttpAnswer:
        path = url.rsplit("/", 1)[1]
        self.calls.append((path, json.loads(body)))
        return self.answers.get(path, HttpAnswer(200, b'{"reference": "R-1"}'))

    def paths(self) -> list[str]:
        return [path for path, _ in self.calls]


class Saga:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.resumed: list[tuple[str, str]] = []
        self.closed: set[str] = set()

    def start(self, purchase_id: str) -> None:
        self.started.append(purchase_id)

    def succeed(self, token: str, output: dict[str, Any]) -> None:
        self._resume(token, "success")

    def fail(self, token: str, error: str, cause: str) -> None:
        self._resume(token, error)

    def _resume(self, token: str, how: str) -> None:
        if token in self.closed:
            raise TokenClosed("TaskTimedOut")
        self.resumed.append((token, how))
        self.closed.add(token)


@pytest.fixture
def world(dynamodb: Any, clock: FixedClock, orders: OrderService) -> Any:
    return make_world(dynamodb, clock, orders)


def make_world(dynamodb: Any, clock: FixedClock, orders: OrderService) -> Any:
    """The purchase service on moto with a recording vendor, the payment double and a fake saga."""

    class World:
        vendor = Vendor()
        saga = Saga()
        book = InMemoryChargeBook()
        payments = PaymentDouble(book, decline_from_minor=100_000)
        service = PurchaseService(
            PurchaseStore(dynamodb, TABLE),
            offers=Offers(),
            vendors=VendorClient(clock, http=vendor),
            payments=payments,
            saga=saga,
            orders=orders,
            clock=clock,
            callback_base_url="https://api.example/prod/",
        )

        def events(self, purchase_id: str) -> list[str]:
            item = dynamodb.get_item(
                TableName=TABLE, Key={"pk": {"S": f"PURCHASE#{purchase_id}"}, "sk": {"S": "OUTBOX"}}
            ).get("Item")
            return [m.detail_type for m in messages_in(item)] if item else []

        def callback(
            self, purchase_id: str, outcome: str = "confirmed", *, secret: str = SECRET, at: Any = None
        ) -> Any:
            body = json.dumps({"purchase_id": purchase_id, "outcome": outcome, "vendor_reference": "V-9"}).encode()
            stamp = int((at or clock.now()).timestamp())
            return self.service.vendor_callback("acme", body, signature(secret, stamp, body))

    world = World()
    world.service.register_vendor("acme", VendorIn(name="Acme", endpoint="https://acme.example/api", secret=SECRET))
    return world


def waiting(world: Any) -> str:
    purchase, created = world.service.request(CUSTOMER, REQUEST, idempotency_key="k-1")
    assert created
    assert purchase.status == "requested"
    assert world.saga.started == [purchase.purchase_id]
    world.service.reserve(purchase.purchase_id)
    world.service.charge(purchase.purchase_id)
    world.service.request_confirmation(purchase.purchase_id, "token-1")
    return purchase.purchase_id


def compensate(world: Any, purchase_id: str, error: str) -> Any:
    world.service.compensate(purchase_id, error, json.dumps({"errorMessage": f"{error} happened"}))
    world.service.refund(purchase_id)
    world.service.release(purchase_id)
    return world.service.fail(purchase_id)


def test_a_brokered_purchase_is_reserved_paid_confirmed_and_becomes_a_paid_order_once(world, orders):
    purchase_id = waiting(world)
    assert world.vendor.paths() == ["reservations", "confirmations"]
    assert world.vendor.calls[1][1]["callback_url"] == "https://api.example/prod/vendors/acme/callbacks"

    receipt = world.callback(purchase_id)
    assert (receipt.status, receipt.replayed) == ("confirmed", False)
    assert world.saga.resumed == [("token-1", "success")]

    done = world.service.complete(purchase_id)
    again = world.service.complete(purchase_id)  # a retried step
    assert done.status == again.status == "completed"
    assert done.order_id == again.order_id
    order = orders.get(done.order_id)
    assert (order.status, order.total_minor, order.channel, order.lines[0].sku) == (
        "paid",
        9998,
        "marketplace",
        "SHOE-1.acme",
    )
    assert [o.order_id for o in orders.for_customer(CUSTOMER)] == [done.order_id]
    assert world.events(purchase_id) == ["PurchaseBrokered"]
    assert world.service.get_for_customer(CUSTOMER, purchase_id).status == "completed"


def test_the_request_is_once_per_key_and_a_replay_changes_nothing(world):
    first, created = world.service.request(CUSTOMER, REQUEST, idempotency_key="k-1")
    replay, again = world.service.request(CUSTOMER, REQUEST, idempotency_key="k-1")
    assert created
    assert not again
    assert replay.purchase_id == first.purchase_id
    assert world.saga.started == [first.purchase_id, first.purchase_id]  # a start lost the first time is made
    with pytest.raises(IdempotencyKeyReused):
        world.service.request(CUSTOMER, REQUEST.model_copy(update={"quantity": 3}), idempotency_key="k-1")
    with pytest.raises(InvalidInput):
        world.service.request(CUSTOMER, REQUEST, idempotency_key=" ")
    with pytest.raises(NotFound):
        world.service.request(
            CUSTOMER, PurchaseIn(product_id="prd_none", vendor_id="acme", quantity=1), idempotency_key="k-2"
        )
    with pytest.raises(NotFound):
        world.service.get_for_customer("cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2E", first.purchase_id)


def test_each_forward_step_run_twice_calls_the_vendor_and_the_provider_once(world):
    purchase, _ = world.service.request(CUSTOMER, REQUEST, idempotency_key="k-1")
    for _ in range(2):
        world.service.reserve(purchase.purchase_id)
        world.service.charge(purchase.purchase_id)
    assert world.vendor.paths() == ["reservations"]
    assert len(world.book.charges) == 1


def test_a_vendor_refusal_ends_failed_with_nothing_to_undo(world):
    world.vendor.answers["reservations"] = HttpAnswer(409)
    purchase, _ = world.service.request(CUSTOMER, REQUEST, idempotency_key="k-1")
    with pytest.raises(VendorRefused):
        world.service.reserve(purchase.purchase_id)
    failed = compensate(world, purchase.purchase_id, "VendorRefused")
    assert (failed.status, failed.failure, failed.released, failed.refunded) == (
        "failed",
        "vendor_refused",
        False,
        False,
    )
    assert world.book.charges == {}
    assert world.vendor.paths() == ["reservations"]
    assert world.events(purchase.purchase_id) == ["PurchaseFailed"]
    with pytest.raises(PurchaseAborted):  # a late retry of a forward step does nothing
        world.service.charge(purchase.purchase_id)
    assert world.book.charges == {}


def test_a_payment_failure_releases_the_reservation(world):
    big = REQUEST.model_copy(update={"quantity": 30})  # 1,499.70 EUR: the double declines from 1,000.00
    purchase, _ = world.service.request(CUSTOMER, big, idempotency_key="k-1")
    world.service.reserve(purchase.purchase_id)
    with pytest.raises(PaymentDeclined):
        world.service.charge(purchase.purchase_id)
    failed = compensate(world, purchase.purchase_id, "PaymentDeclined")
    assert (failed.failure, failed.released, failed.refunded) == ("payment_declined", True, False)
    assert world.vendor.paths() == ["reservations", "releases"]
    assert world.events(purchase.purchase_id) == ["PurchaseFailed"]


def test_a_vendor_that_never_calls_back_ends_refunded_and_released_and_its_late_answer_is_refused(world, clock):
    purchase_id = waiting(world)
    world.saga.closed.add("token-1")  # the execution's wait timed out
    failed = compensate(world, purchase_id, "States.Timeout")
    assert (failed.failure, failed.released, failed.refunded) == ("confirmation_timed_out", True, True)
    assert world.book.charges[purchase_id].refunded
    assert world.vendor.paths() == ["reservations", "confirmations", "releases"]
    assert world.events(purchase_id) == ["PurchaseFailed"]
    with pytest.raises(Conflict):
        world.callback(purchase_id)
    assert world.service.get_for_customer(CUSTOMER, purchase_id).status == "failed"


def test_an_answer_racing_the_timeout_is_refused_and_the_purchase_still_compensated(world):
    purchase_id = waiting(world)
    world.saga.closed.add("token-1")  # timed out, compensation not started yet
    with pytest.raises(Conflict):
        world.callback(purchase_id)
    failed = compensate(world, purchase_id, "States.Timeout")
    assert (failed.failure, failed.released, failed.refunded) == ("confirmation_timed_out", True, True)


def test_a_refusal_in_the_callback_fails_the_wait_and_is_the_reason(world):
    purchase_id = waiting(world)
    receipt = world.callback(purchase_id, "refused")
    assert receipt.status == "compensating"
    assert world.saga.resumed == [("token-1", "ConfirmationRefused")]
    failed = compensate(world, purchase_id, "ConfirmationRefused")
    assert (failed.failure, failed.released, failed.refunded) == ("confirmation_refused", True, True)
    replay = world.callback(purchase_id, "refused")
    assert replay.replayed
    assert replay.status == "failed"


def test_a_replayed_callback_changes_nothing_and_a_lost_resumption_is_made_by_the_replay(world):
    purchase_id = waiting(world)
    original = world.saga.succeed

    def lost(token: str, output: dict[str, Any]) -> None:
        raise RuntimeError("network")

    world.saga.succeed = lost  # the answer is recorded, its resumption lost
    with pytest.raises(RuntimeError):
        world.callback(purchase_id)
    world.saga.succeed = original
    replay = world.callback(purchase_id)
    assert (replay.status, replay.replayed) == ("confirmed", True)
    assert world.saga.resumed == [("token-1", "success")]
    again = world.callback(purchase_id)
    assert again.replayed
    assert world.saga.resumed == [("token-1", "success")]
    with pytest.raises(Conflict):  # the same purchase answered the other way
        world.callback(purchase_id, "refused")


def test_a_callback_is_verified_with_the_vendors_secret_and_its_time(world, clock):
    purchase_id = waiting(world)
    with pytest.raises(Unauthorized):
        world.callback(purchase_id, secret="another-secret-" + "y" * 30)
    with pytest.raises(Unauthorized):
        world.callback(purchase_id, at=clock.now() - timedelta(minutes=6))
    body = json.dumps({"purchase_id": purchase_id, "outcome": "confirmed"}).encode()
    with pytest.raises(Unauthorized):
        world.service.vendor_callback("other", body, signature(SECRET, int(clock.now().timestamp()), body))
    bad = b'{"purchase_id": "nope", "outcome": "confirmed"}'
    with pytest.raises(InvalidInput):
        world.service.vendor_callback("acme", bad, signature(SECRET, int(clock.now().timestamp()), bad))
    assert world.saga.resumed == []
    assert world.service.get_for_customer(CUSTOMER, purchase_id).status == "awaiting_confirmation"


def test_the_purchase_is_priced_from_the_catalogues_current_offer(dynamodb, clock, orders):
    from ecrm.transactions.catalog import OfferIn, ProductIn
    from ecrm.transactions.catalog_service import CatalogService
    from ecrm.transactions.catalog_store import CatalogStore
    from ecrm.transactions.purchase_wiring import CatalogOffers

    catalog = CatalogService(CatalogStore(dynamodb, TABLE), orders, clock)
    product, _ = catalog.save_product(ProductIn(name="Camp stove", category="stoves"))
    offer = {"vendor_name": "Acme", "price_minor": 4500, "currency": "EUR", "delivery_days": 2}
    offer |= {"vendor_rating": "4.5", "return_days": 30}
    catalog.save_offer(product.product_id, OfferIn.model_validate({**offer, "vendor_id": "acme", "stock": 3}))
    catalog.save_offer(product.product_id, OfferIn.model_validate({**offer, "vendor_id": "empty", "stock": 0}))
    offers = CatalogOffers(CatalogStore(dynamodb, TABLE))

    priced = offers.priced_offer(product.product_id, "acme")
    assert priced is not None
    assert (priced.product_name, priced.unit_price_minor, priced.currency, priced.in_stock) == (
        "Camp stove",
        4500,
        "EUR",
        True,
    )
    assert priced.sku == f"{product.product_id}.acme"
    sold_out = offers.priced_offer(product.product_id, "empty")
    assert sold_out is not None
    assert not sold_out.in_stock
    assert offers.priced_offer(product.product_id, "nobody") is None
    assert offers.priced_offer("prd_missing", "acme") is None
