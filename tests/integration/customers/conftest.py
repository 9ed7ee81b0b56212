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

from tests.integration.outbox import OutboxDrain, StreamTail

TABLE = "customers"
# botocore sends stream calls with an ARN to <account>.streams-ddb.<region>, which moto's in-process mock does
# not route (its server routes by the X-Amz-Target header); the regional endpoint is routed.
STREAMS_ENDPOINT = "https://streams.dynamodb.us-east-1.amazonaws.com"


class RecordingPublisher:
    """What the customer store put on the bus: published directly, or relayed from its outbox (ADR 11)."""

    def __init__(self, outbox: OutboxDrain | None = None) -> None:
        self.outbox = outbox
        self._events: list[Any] = []

    def publish_all(self, events: Any, *, correlation_id: str | None = None) -> None:
        self._drain()
        self._events.extend(events)

    @property
    def events(self) -> list[Any]:
        self._drain()
        return list(self._events)

    def of(self, detail_type: str) -> list[Any]:
        return [e for e in self.events if e.detail_type == detail_type]

    def _drain(self) -> None:
        if self.outbox is not None:
            self._events.extend(self.outbox.drain())


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
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        yield client


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 23, 10, 0, tzinfo=UTC))


@pytest.fixture
def publisher(dynamodb: Any) -> RecordingPublisher:
    streams = boto3.client("dynamodbstreams", region_name="us-east-1", endpoint_url=STREAMS_ENDPOINT)
    return RecordingPublisher(OutboxDrain(StreamTail(dynamodb, streams, TABLE)))


@pytest.fixture
def service(dynamodb: Any, publisher: RecordingPublisher, clock: FixedClock) -> CustomerService:
    policy = MergePolicy(source_priority={"*": ("erp", "callcenter", "shop", "web")})
    return CustomerService(CustomerStore(dynamodb, TABLE), publisher, clock, policy, default_region="DE")
