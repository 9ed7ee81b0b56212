"""A comparison request (`GET /me/compare?product=`) on warm invocations: p50/p99 of the code's own time.

Workload (generated, seed 5): ECRM_BENCH_CMP_PRODUCTS products (default 100,000), each with its summary of
50 vendors' offers; ECRM_BENCH_CMP_OFFERED of them (default 2,000) hold their 50 offers as items (100,000
offer items, with their skus in the sku index), the rest only the product: a comparison reads one product's
partition, whose cost does not grow with the other partitions (in DynamoDB, and in moto with the local cloud's
fix of its whole-table sort per key query), so the other 4.9 million offers would only add memory. 300
customers have 10 orders each, buying offers of those products; half have stated preferences. Items are
written into moto's backend directly, in the layouts of `catalog_store` and `order_store`; the orders sit in a
table of their own because moto answers a query on an index by sorting every item of the table (DynamoDB
reads the index's partition), which would time moto's sort of the catalogue, not the customer's orders.
The seeded heap is frozen out of the garbage collector: it is moto's, and a Lambda function holds none of it.

Then the transactions API handler (`functions.transactions.api.handler`, the services injected over moto)
answers `GET /me/compare?product=` for random customers and products after a warm-up. DynamoDB is moto in
this process, so a request's time is split into the code's own time (everything but the storage calls:
routing, the token's claims, validation, learning, ranking, serialising, taking the recommendations a worker
thread asked of a recommender that answers at once) and the storage calls (a Query of
the product's partition and one of the customer's: their preferences and their purchase history, counted by
the order events' consumer, which the seeding does for each customer after their orders).

Reference, measured in the same run: the plain store read of a product's 50 offers (one Query through the
same client). Nothing asserts on time.
"""

from __future__ import annotations

import gc
import os
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from ecrm.core.clock import FixedClock
from ecrm.transactions.catalog import Offer, OfferSummary, Product, Recommendations, RecommendedItem, summarize
from ecrm.transactions.catalog_recommendations import RecommendationsBeside
from ecrm.transactions.catalog_service import CatalogService
from ecrm.transactions.catalog_store import SKU_SK, CatalogStore, product_pk
from ecrm.transactions.loyalty_service import LoyaltyService
from ecrm.transactions.loyalty_store import LoyaltyStore
from ecrm.transactions.models import OrderIn
from ecrm.transactions.need_matching import product_terms
from ecrm.transactions.order_service import OrderService
from ecrm.transactions.order_store import OrderStore
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from infra.local import moto_hot_paths
from tests.bench.harness import Measurement, report
from tests.bench.test_recommendation_latency import StorageTimer
from tests.integration.transactions.conftest import create_table
from tests.samples import api_request

PRODUCTS = int(os.environ.get("ECRM_BENCH_CMP_PRODUCTS", "100000"))
OFFERED = int(os.environ.get("ECRM_BENCH_CMP_OFFERED", "2000"))
VENDORS = 50
CUSTOMERS = 300
ORDERS_EACH = 10
REQUESTS = int(os.environ.get("ECRM_BENCH_CMP_REQUESTS", "2000"))
SEED = 5
REGION = "us-east-1"
TABLE = "ecrm-transactions-bench"
ORDERS_TABLE = "ecrm-transactions-bench-orders"  # see the module docstring
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    moto_hot_paths.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, TABLE)
        create_table(client, ORDERS_TABLE)
        yield client


def _offers(product_id: str, rng: random.Random) -> list[Offer]:
    base = rng.randint(1_000, 50_000)
    return [
        Offer(
            product_id=product_id,
            vendor_id=f"vendor-{v:02d}",
            vendor_name=f"Vendor {v}",
            sku=f"{product_id}.vendor-{v:02d}",
            price_minor=base + rng.randint(0, base // 2),
            currency="EUR" if v % 10 else "USD",
            stock=0 if v % 17 == 0 else rng.randint(1, 100),
            delivery_days=rng.randint(0, 10),
            vendor_rating=Decimal(rng.randint(20, 50)) / 10,
            return_days=rng.choice((0, 14, 30)),
            updated_at=NOW,
        )
        for v in range(VENDORS)
    ]


def _seed_catalogue(rng: random.Random) -> dict[str, list[Offer]]:
    """Products and offers straight into moto's table, in the store's layout; returns the offered ones."""
    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION]
    store = CatalogStore(None, TABLE)
    offered: dict[str, list[Offer]] = {}
    for n in range(PRODUCTS):
        product_id = f"p{n:06d}"
        offers = _offers(product_id, rng) if n < OFFERED else []
        product = Product(
            product_id=product_id,
            name=f"Product {n} kettle",
            category=f"c{n % 50:02d}",
            attributes={"colour": rng.choice(("red", "steel", "white"))},
            summary=summarize(offers) if n < OFFERED else OfferSummary(offers=VENDORS, in_stock=VENDORS),
            created_at=NOW,
            updated_at=NOW,
            version=VENDORS + 1,
        )
        backend.put_item(TABLE, store._product_item(product, product_terms(product)))
        if n >= OFFERED:
            continue
        offered[product_id] = offers
        for offer in offers:
            pk = {"S": product_pk(product_id)}
            backend.put_item(
                TABLE, {"pk": pk, "sk": {"S": f"OFFER#{offer.vendor_id}"}, "offer": {"S": offer.model_dump_json()}}
            )
            backend.put_item(
                TABLE,
                {
                    "pk": {"S": f"SKU#{offer.sku}"},
                    "sk": {"S": SKU_SK},
                    "product_id": {"S": product_id},
                    "vendor_id": {"S": offer.vendor_id},
                    "delivery_days": {"N": str(offer.delivery_days)},
                },
            )
    return offered


def _seed_customers(catalog: CatalogService, offered: dict[str, list[Offer]]) -> list[str]:
    """Orders straight into moto's table in the order store's layout (moto copies the whole table for each
    transaction, so placing thousands through the service would time moto, not the engine)."""
    from ecrm.transactions import orders
    from ecrm.transactions.catalog import ComparePreferencesIn

    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION]
    order_store = OrderStore(None, ORDERS_TABLE)
    rng = random.Random(SEED + 1)
    products = sorted(offered)
    customers = []
    for c in range(CUSTOMERS):
        customer = f"cus_{c:026d}"
        customers.append(customer)
        for o in range(ORDERS_EACH):
            offer = rng.choice([x for x in offered[rng.choice(products)] if x.currency == "EUR"])
            line = {"sku": offer.sku, "name": "x", "quantity": 1, "unit_price_minor": offer.price_minor}
            body = OrderIn.model_validate(
                {"customer_id": customer, "currency": "EUR", "channel": "web", "lines": [line]}
            )
            order, _ = orders.new_order(f"ord_{c:013d}{o:013d}", body, NOW - timedelta(days=o))
            backend.put_item(ORDERS_TABLE, order_store._order_item(order))
        if c % 2:
            favourites = [f"vendor-{rng.randrange(VENDORS):02d}"]
            priority = rng.choice(("price", "speed", "balanced"))
            catalog.set_preferences(customer, ComparePreferencesIn(priority=priority, favourite_vendors=favourites))
        catalog.refresh_history(customer)  # what the order events' consumer does after each of their orders
    return customers


class StorageCpuTimer:
    """The CPU time this thread spends inside the client's calls: with the own CPU time beside the wall time,
    a figure taken on a machine busy with other work still says what the handler itself costs."""

    def __init__(self, client: Any) -> None:
        self.seconds = 0.0
        self._started = 0.0
        client.meta.events.register("before-call.dynamodb.*", self._before)
        client.meta.events.register("after-call.dynamodb.*", self._after)

    def _before(self, **_: Any) -> None:
        self._started = time.thread_time()

    def _after(self, **_: Any) -> None:
        self.seconds += time.thread_time() - self._started


class AnsweringRecommender:
    """Answers at once: the request pays for handing the ask to a worker thread and taking its answer, not for
    the personalization engine's own time (its bench is `test_recommendation_latency`)."""

    def recommend(self, customer_id: str, k: int) -> Recommendations:
        return Recommendations(
            items=[RecommendedItem(item_id=f"item-{n}", name="Teapot", price=19.5, currency="EUR") for n in range(k)],
            strategy="personal",
            note="from the customer's recent items",
        )


@pytest.mark.timeout(3600)  # seeding 100,000 products into moto took nearly ten minutes on a loaded machine
def test_comparison_request_warm(cloud: Any, lambda_context: Any) -> None:
    rng = random.Random(SEED)
    started = time.perf_counter()
    offered = _seed_catalogue(rng)
    clock = FixedClock(NOW + timedelta(days=1))
    orders = OrderService(OrderStore(cloud, ORDERS_TABLE), clock)
    catalog = CatalogService(
        CatalogStore(cloud, TABLE), orders, clock, RecommendationsBeside(AnsweringRecommender(), budget_seconds=1.0)
    )
    customers = _seed_customers(catalog, offered)
    print(
        f"\nworkload: {PRODUCTS} products ({OFFERED} with {VENDORS} offer items each), {CUSTOMERS} customers x "
        f"{ORDERS_EACH} orders; seeded in {time.perf_counter() - started:.1f}s"
    )
    products = sorted(offered)
    gc.collect()
    gc.freeze()  # the seeded table is moto's heap, not the function's: its collections are not the request's

    from functions.transactions import api

    handler: Any = api.handler
    deps = api.Deps(orders, LoyaltyService(LoyaltyStore(cloud, TABLE), clock), catalog=catalog)

    def request(customer: str, product_id: str) -> dict[str, Any]:
        return api_request("GET", "/me/compare", query={"product": product_id}, groups=None, customer_id=customer)

    def answer(event: dict[str, Any]) -> str:
        response = handler(event, lambda_context, deps)
        assert response["statusCode"] == 200, response
        return str(response["body"])

    timer = StorageTimer(cloud)
    cpu = StorageCpuTimer(cloud)
    body = answer(request(customers[1], products[0]))  # warm-up
    assert '"rank":50' in body or '"left_out":[{' in body
    assert '"item_id":"item-4"' in body
    own, own_cpu, storage, calls = [], [], [], 0
    for _ in range(REQUESTS):
        event = request(rng.choice(customers), rng.choice(products))  # the test's work, not the handler's
        before_seconds, before_calls, before_cpu = timer.seconds, timer.calls, cpu.seconds
        began, began_cpu = time.perf_counter(), time.thread_time()
        answer(event)
        total, total_cpu = time.perf_counter() - began, time.thread_time() - began_cpu
        spent = timer.seconds - before_seconds
        storage.append(spent * 1000)
        own.append((total - spent) * 1000)
        own_cpu.append((total_cpu - (cpu.seconds - before_cpu)) * 1000)
        calls += timer.calls - before_calls
    print(f"  {calls / REQUESTS:.2f} storage calls per request")

    store = CatalogStore(cloud, TABLE)
    reference = []
    for _ in range(REQUESTS):
        product_id = rng.choice(products)
        began = time.perf_counter()
        _, offers = store.product_with_offers(product_id)
        reference.append((time.perf_counter() - began) * 1000)
        assert len(offers) == VENDORS
    reference_row = Measurement("plain store read of 50 offers (moto Query)", reference)
    rows = [
        Measurement("comparison: handler's own time", own),
        Measurement("comparison: handler's own CPU time", own_cpu),
        Measurement("comparison: storage calls (moto)", storage),
    ]
    report("Comparison request, warm (50 vendors per product)", rows, reference_row)
    for row in [reference_row, *rows]:
        print(f"  {row.name:44} p50 {row.median:7.3f} ms   p99 {row.p99:7.3f} ms")
