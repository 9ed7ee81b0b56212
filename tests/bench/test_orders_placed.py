"""Orders placed per second per core through the domain logic with its transactional writes.

Workload (seeded, built before anything is timed): ECRM_BENCH_ORDERS orders (default 1000) of 1 to 5
lines each, for 500 customers, each with its own Idempotency-Key.

Measured, one thread, each 3 times on a fresh table:
- `OrderService.place` as deployed: per order a `GetItem` of the key (is it a replay?), a `GetItem` of
  the customer's merge pointer (was the id merged into another customer?), the order built and
  validated, and one `TransactWriteItems` of three items (the key, conditional; the order,
  conditional; the outbox with `OrderPlaced`).
- Reference: `put_item` of the same order items (`OrderStore.plain_put`: the order's item alone, no key,
  no condition, no event), one call per order: the floor of "just store the rows" through the same client.

The storage for both is moto's in-process DynamoDB (`mock_aws`, with the local cloud's transaction fix
installed, as `make e2e` runs it), so the absolute figures are about the code path (botocore, moto's
request handling, our logic), not DynamoDB's latency; the reference pays the same moto cost per request,
which is why it is the figure to compare with. Nothing here asserts on time; the item counts are checked.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from ecrm.core.clock import SystemClock
from ecrm.core.ids import new_id
from ecrm.transactions import orders
from ecrm.transactions.merge_map import MergeMap
from ecrm.transactions.models import OrderIn
from ecrm.transactions.order_service import OrderService
from ecrm.transactions.order_store import OrderStore
from moto import mock_aws

from infra.local import dynamodb_transactions
from tests.bench.harness import Measurement, measure, report
from tests.integration.transactions.conftest import REGION, create_table

ORDERS = int(os.environ.get("ECRM_BENCH_ORDERS", "1000"))
REPEAT = 3


def workload() -> list[OrderIn]:
    rng = random.Random(15)
    customers = [new_id("cus_") for _ in range(500)]
    return [
        OrderIn.model_validate(
            {
                "customer_id": rng.choice(customers),
                "currency": "EUR",
                "channel": rng.choice(["web", "app", "store"]),
                "lines": [
                    {
                        "sku": f"SKU-{sku}",
                        "name": f"Item {sku}",
                        "category": rng.choice(["tents", "shoes", "socks"]),
                        "quantity": rng.randint(1, 3),
                        "unit_price_minor": rng.randint(100, 20000),
                    }
                    for sku in rng.sample(range(1000), rng.randint(1, 5))
                ],
            }
        )
        for _ in range(ORDERS)
    ]


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    dynamodb_transactions.install()
    with mock_aws():
        yield boto3.client("dynamodb", region_name=REGION)


def count_items(dynamodb: Any, table: str) -> int:
    return sum(page["Count"] for page in dynamodb.get_paginator("scan").paginate(TableName=table, Select="COUNT"))


def test_orders_placed_per_second_per_core(dynamodb: Any) -> None:
    bodies = workload()
    clock = SystemClock()
    prebuilt = [orders.new_order(new_id("ord_"), body, clock.now())[0] for body in bodies]
    runs = itertools.count()
    counts: dict[str, int] = {}

    def fresh_table() -> str:
        name = f"bench-orders-{next(runs)}"
        create_table(dynamodb, name)
        return name

    def placed() -> float:
        table = fresh_table()
        service = OrderService(OrderStore(dynamodb, table), clock, MergeMap(dynamodb, table))
        started = time.perf_counter()
        for n, body in enumerate(bodies):
            service.place(body, idempotency_key=f"key-{n}", caller="bench", correlation_id="cor_bench")
        elapsed = (time.perf_counter() - started) * 1000
        counts["placed"] = count_items(dynamodb, table)
        dynamodb.delete_table(TableName=table)
        return elapsed

    def reference() -> float:
        table = fresh_table()
        store = OrderStore(dynamodb, table)
        started = time.perf_counter()
        for order in prebuilt:
            store.plain_put(order)
        elapsed = (time.perf_counter() - started) * 1000
        counts["reference"] = count_items(dynamodb, table)
        dynamodb.delete_table(TableName=table)
        return elapsed

    baseline = measure("put_item of the order item (reference)", reference, repeat=REPEAT)
    service_run = measure("OrderService.place (transaction of 3)", placed, repeat=REPEAT)
    report(
        f"Orders placed, one thread, moto DynamoDB in process ({ORDERS} orders; ms per pass)", [service_run], baseline
    )
    for row in (baseline, service_run):
        print(f"  {row.name}: {per_second(row):,.0f} orders/s")
    assert counts["reference"] == ORDERS
    assert counts["placed"] == 3 * ORDERS  # order, key and outbox per order


def per_second(row: Measurement) -> float:
    return ORDERS / (row.median / 1000)
