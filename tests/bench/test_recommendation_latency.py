"""A recommendation request inside the personalization API handler, warm: p50/p99 per slot.

Workload (generated, seed 11): ECRM_BENCH_LAT_ITEMS items (default 5,000, in 50 categories) bought by
ECRM_BENCH_LAT_USERS users (default 20,000) in ECRM_BENCH_LAT_INTERACTIONS interactions (default 200,000),
trained by the engine's own `train` and written as the training job writes a version (neighbour and
bought-together lists per item, popular lists), with the item catalogue; 1,000 customers are projected from
customer-store events (profile, consents, five product views and two orders each).

Then the real API handler (`functions.personalization.api.handler`, services built from its environment,
as in Lambda) answers `GET /customers/{id}/recommendations` for random customers: for_you, similar and
bought_together, k=10, after one warm-up request each. DynamoDB is moto in this process (with the local
cloud's fix of its whole-table sort per key query), so a request's time is split: the handler's own time
(routing, validation, the service, serialising; everything but the storage calls) and the storage calls
themselves, timed through botocore's before/after-call events.

Reference, measured in the same run: one GetItem of an item's neighbour list through the same client,
the smallest storage read a request can make. On DynamoDB a request's reads are one GetItem of the
customer plus one or two BatchGetItem calls (single-digit milliseconds in region); the handler's own time
is what this code adds to them. Nothing asserts on time.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.local import moto_hot_paths
from tests.bench.harness import Measurement, report
from tests.samples import api_request

ITEMS = int(os.environ.get("ECRM_BENCH_LAT_ITEMS", "5000"))
USERS = int(os.environ.get("ECRM_BENCH_LAT_USERS", "20000"))
INTERACTIONS = int(os.environ.get("ECRM_BENCH_LAT_INTERACTIONS", "200000"))
CUSTOMERS = 1_000
REQUESTS = int(os.environ.get("ECRM_BENCH_LAT_REQUESTS", "2000"))
CATEGORIES = 50
SEED = 11
REGION = "us-east-1"


class StorageTimer:
    """Wall time spent inside the client's API calls (botocore before-call to after-call), and their count."""

    def __init__(self, client: Any) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._started = 0.0
        client.meta.events.register("before-call.dynamodb.*", self._before)
        client.meta.events.register("after-call.dynamodb.*", self._after)

    def _before(self, **_: Any) -> None:
        self._started = time.perf_counter()

    def _after(self, **_: Any) -> None:
        self.seconds += time.perf_counter() - self._started
        self.calls += 1


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    moto_hot_paths.install()  # moto's key query sorts the whole table per read: the local cloud's fix
    with mock_aws():
        yield


def _train() -> Any:
    import numpy as np
    from ecrm.personalization import recommenders as rec

    rng = np.random.default_rng(SEED)
    users = rng.integers(0, USERS, INTERACTIONS)
    item_category = rng.integers(0, CATEGORIES, ITEMS)
    taste = rng.integers(0, CATEGORIES, USERS)[users]
    popularity = 1.0 / (np.arange(ITEMS) + 10.0)
    anywhere = np.searchsorted(np.cumsum(popularity / popularity.sum()), rng.random(INTERACTIONS), side="right")
    members = [np.flatnonzero(item_category == c) for c in range(CATEGORIES)]
    within = rng.integers(0, 10**6, INTERACTIONS)
    own = np.array([members[t][w % len(members[t])] for t, w in zip(taste, within, strict=True)])
    items = np.where(rng.random(INTERACTIONS) < 0.7, own, np.minimum(anywhere, ITEMS - 1))
    labels = np.array([f"p{n:05d}" for n in range(ITEMS)])
    model = rec.train(
        np.array([f"u{n:06d}" for n in users]),
        labels[items],
        timestamps=1_700_000_000 + rng.random(INTERACTIONS) * 365 * 86_400,
        baskets=users * 4 + rng.integers(0, 4, INTERACTIONS),
        item_categories={str(labels[i]): f"c{item_category[i]:02d}" for i in range(ITEMS)},
    )
    return model, {str(labels[i]): f"c{item_category[i]:02d}" for i in range(ITEMS)}


def _seed(model: Any, categories: dict[str, str]) -> list[str]:
    """The version, the catalogue and the customers, written through the engine's own store and projection."""
    from ecrm.core.clock import FixedClock
    from ecrm.personalization.customer_events import ProjectionService
    from ecrm.personalization.service_models import CatalogueItem
    from ecrm.personalization.store import PersonalizationStore

    from tests.integration.personalization.conftest import RecordingPublisher, created, interaction, write_model

    table = os.environ["PERSONALIZATION_TABLE_NAME"]
    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk")],
    )
    now = datetime.now(UTC)
    store = PersonalizationStore(client, table)
    write_model(store, model, now.strftime("%Y%m%dT%H%M%S000Z"))  # as the training job writes a version
    catalogue = [
        CatalogueItem(item_id=item, name=f"Item {item}", category=category, price=10.0 + n % 90, currency="EUR")
        for n, (item, category) in enumerate(categories.items())
    ]
    for start in range(0, len(catalogue), 100):
        store.put_items(catalogue[start : start + 100])

    rng = random.Random(SEED)
    projections = ProjectionService(store, RecordingPublisher(), FixedClock(now))
    consents = {"email:marketing": "granted", "email:profiling": "granted"}
    trained_items = sorted(model.neighbours)
    customers = []
    for n in range(CUSTOMERS):
        customer = f"cus_{n:026d}"
        customers.append(customer)
        projections.apply(created(customer, consents=consents, at=now - timedelta(days=60), country="FR"))
        for step in range(7):
            kind = "order_completed" if step >= 5 else "product_viewed"
            at = now - timedelta(days=30 - step)
            projections.apply(interaction(customer, rng.choice(trained_items), kind=kind, at=at))
    return customers


def _request(slot: str, customer: str, item: str | None) -> dict[str, Any]:
    query = {"slot": slot, "k": "10"} | ({"item": item} if item else {})
    return api_request(
        "GET", "/customers/{customer_id}/recommendations", path_parameters={"customer_id": customer}, query=query
    )


def test_recommendation_request_in_the_handler_warm(cloud: None, lambda_context: Any) -> None:
    from ecrm.core import aws
    from ecrm.personalization import wiring

    started = time.perf_counter()
    model, categories = _train()
    trained = time.perf_counter() - started
    customers = _seed(model, categories)
    print(
        f"\nworkload: {ITEMS} items, {USERS} users, {INTERACTIONS} interactions ({model.algorithm}, trained in "
        f"{trained:.1f}s); {len(customers)} customers projected"
    )

    aws.client.cache_clear()
    wiring.store_for.cache_clear()
    wiring.publisher_for.cache_clear()
    from functions.personalization import api

    api.default_deps.cache_clear()
    timer = StorageTimer(aws.client("dynamodb"))
    rng = random.Random(SEED + 1)
    items = sorted(model.neighbours)
    together = sorted(model.bought_together) or items
    about = {"for_you": None, "similar": items, "bought_together": together}
    rows = []
    for slot, pool in about.items():
        api.handler(_request(slot, customers[0], pool[0] if pool else None), lambda_context)  # warm-up
        handler_ms, storage_ms, calls, empty = [], [], 0, 0
        for _ in range(REQUESTS):
            event = _request(slot, rng.choice(customers), rng.choice(pool) if pool else None)
            before_seconds, before_calls = timer.seconds, timer.calls
            began = time.perf_counter()
            response = api.handler(event, lambda_context)
            total = time.perf_counter() - began
            assert response["statusCode"] == 200, response
            empty += '"items":[]' in response["body"].replace(" ", "")
            spent = timer.seconds - before_seconds
            storage_ms.append(spent * 1000)
            handler_ms.append((total - spent) * 1000)
            calls += timer.calls - before_calls
        rows.append(Measurement(f"{slot}: handler's own time", handler_ms))
        rows.append(Measurement(f"{slot}: storage calls (moto)", storage_ms))
        print(f"  {slot}: {calls / REQUESTS:.2f} storage calls per request; {empty} empty lists of {REQUESTS}")

    client = aws.client("dynamodb")
    table = os.environ["PERSONALIZATION_TABLE_NAME"]
    version = wiring.store_for(api.config).active_model()
    key = {"pk": {"S": f"ITEM#{items[0]}"}, "sk": {"S": f"NEIGHBOURS#{version}"}}
    assert "Item" in client.get_item(TableName=table, Key=key)
    reference = []
    for _ in range(REQUESTS):
        began = time.perf_counter()
        client.get_item(TableName=table, Key=key)
        reference.append((time.perf_counter() - began) * 1000)
    reference_row = Measurement("one GetItem of a neighbour list (moto)", reference)
    report("Recommendation request in the API handler, warm (k=10)", rows, reference_row)
    for row in [reference_row, *rows]:
        print(f"  {row.name:42} p50 {row.median:7.3f} ms   p99 {row.p99:7.3f} ms")
