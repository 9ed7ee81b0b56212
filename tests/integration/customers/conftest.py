"""A moto DynamoDB table shaped like the customers table, and a service on it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from ecrm.core.clock import FixedClock
from ecrm.customers.logic import MergePolicy
from ecrm.customers.service import CustomerService
from ecrm.customers.store import CustomerStore
from moto import mock_aws

TABLE = "customers"


class RecordingPublisher:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def publish_all(self, events: Any, *, correlation_id: str | None = None) -> None:
        self.events.extend(events)

    def of(self, detail_type: str) -> list[Any]:
        return [e for e in self.events if e.detail_type == detail_type]


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
        )
        yield client


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def service(dynamodb: Any, publisher: RecordingPublisher, clock: FixedClock) -> CustomerService:
    policy = MergePolicy(source_priority={"*": ("erp", "callcenter", "shop", "web")})
    return CustomerService(CustomerStore(dynamodb, TABLE), publisher, clock, policy, default_region="DE")
