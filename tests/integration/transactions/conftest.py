"""The transactions engine on moto: its table (as `infra/engines/transactions.py` declares it), the services
on a fixed clock, the API handler, and a bus: the outbox relayed from the table's stream to the loyalty
consumer, as the relay and the queue do in the cloud.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from ecrm.core.clock import FixedClock
from ecrm.core.events import DomainEvent
from ecrm.transactions.loyalty_service import LoyaltyService
from ecrm.transactions.loyalty_store import LoyaltyStore
from ecrm.transactions.order_service import OrderService
from ecrm.transactions.order_store import OrderStore
from moto import mock_aws

from functions.transactions import api, on_order_event
from tests.integration.outbox import OutboxDrain, StreamTail
from tests.samples import api_request, sqs_batch
from tests.unit.fakes import bus_event_from_entry

REGION = "us-east-1"
TABLE = "ecrm-transactions"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CUSTOMER = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"
INDEXES = ("by_customer", "by_expiry")
# botocore sends stream calls with an ARN to <account>.streams-ddb.<region>, which moto's in-process mock
# does not intercept; the service's plain endpoint it does.
STREAMS_ENDPOINT = "https://streams.dynamodb.us-east-1.amazonaws.com"


def order_body(**overrides: Any) -> dict[str, Any]:
    return {
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


def create_table(client: Any, name: str = TABLE) -> None:
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"}
            for name in ("pk", "sk", *(f"{i}_{k}" for i in INDEXES for k in ("pk", "sk")))
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": f"{index}_pk", "KeyType": "HASH"},
                    {"AttributeName": f"{index}_sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in INDEXES
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client)
        yield client


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def orders(dynamodb: Any, clock: FixedClock) -> OrderService:
    return OrderService(OrderStore(dynamodb, TABLE), clock)


@pytest.fixture
def loyalty(dynamodb: Any, clock: FixedClock) -> LoyaltyService:
    return LoyaltyService(LoyaltyStore(dynamodb, TABLE), clock)


class Engine:
    """The API, the outbox relay and the loyalty consumer, called as Lambda would call them."""

    def __init__(self, orders: OrderService, loyalty: LoyaltyService, dynamodb: Any, context: Any) -> None:
        self.deps = api.Deps(orders, loyalty)
        self.loyalty = loyalty
        self.context = context
        self.drain = OutboxDrain(
            StreamTail(
                dynamodb, boto3.client("dynamodbstreams", region_name=REGION, endpoint_url=STREAMS_ENDPOINT), TABLE
            )
        )
        self.published: list[dict[str, Any]] = []  # order events relayed and not yet delivered to loyalty
        self.events: list[DomainEvent] = []  # every event relayed so far

    def call(
        self,
        method: str,
        resource: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        groups: str | None = "agent",
        customer: str | None = None,
        path: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        event = api_request(method, resource, path_parameters=path, body=body, groups=groups, customer_id=customer)
        event["headers"] = {**(event.get("headers") or {}), **(headers or {})}
        event["multiValueHeaders"] = {name: [value] for name, value in event["headers"].items()}
        handler: Any = api.handler
        response = handler(event, self.context, self.deps)
        return response["statusCode"], json.loads(response["body"]) if response.get("body") else None

    def relay(self) -> list[DomainEvent]:
        """Relay what the outbox got since the last call; returns its events."""
        before = len(self.drain.bus.accepted)
        events = self.drain.drain()
        self.published += self.drain.bus.accepted[before:]
        self.events += events
        return events

    def deliver_order_events(self, *, times: int = 1) -> dict[str, Any]:
        """The order events relayed so far to the loyalty consumer, in one batch, each `times` times."""
        entries = [e for e in self.published if e["DetailType"].startswith("Order")]
        self.published = [e for e in self.published if not e["DetailType"].startswith("Order")]
        bodies = [json.dumps(bus_event_from_entry(e, f"eb-{n}")) for n, e in enumerate(entries)] * times
        handler: Any = on_order_event.handler
        return handler(sqs_batch(bodies), self.context, self.loyalty) if bodies else {"batchItemFailures": []}


@pytest.fixture
def engine(orders: OrderService, loyalty: LoyaltyService, dynamodb: Any, lambda_context: Any) -> Engine:
    return Engine(orders, loyalty, dynamodb, lambda_context)
