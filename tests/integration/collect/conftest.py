"""A moto table shaped like the collection table, the service on it, and the API handler around it.

The bus and the lake are in-memory fakes: the handler's tests are about the table and HTTP.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from ecrm.collect.service import CollectService
from ecrm.collect.store import CollectStore
from ecrm.core.clock import FixedClock
from ecrm.core.publisher import EventPublisher

from tests.samples import api_request
from tests.unit.collect.fakes import FakeLake
from tests.unit.fakes import FakeEventsClient

# The function reads its environment at import (tests/conftest.py sets the other engines').
os.environ.setdefault("COLLECT_TABLE_NAME", "ecrm-collect")

TABLE = "collect"
NOW = datetime(2026, 11, 23, 10, 15, 31, tzinfo=UTC)


@pytest.fixture
def dynamodb(aws: None) -> Any:
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
    client.update_time_to_live(
        TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )
    return client


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def store(dynamodb: Any) -> CollectStore:
    return CollectStore(dynamodb, TABLE)


@pytest.fixture
def bus() -> FakeEventsClient:
    return FakeEventsClient()


@pytest.fixture
def lake() -> FakeLake:
    return FakeLake()


@pytest.fixture
def service(store: CollectStore, bus: FakeEventsClient, lake: FakeLake, clock: FixedClock) -> CollectService:
    return CollectService(store, EventPublisher("ecrm", bus, sleep=lambda _: None, clock=clock), lake, clock)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


@pytest.fixture
def call(service: CollectService, lambda_context: Any) -> Any:
    from functions.collect import api

    def invoke(event: dict[str, Any]) -> Answer:
        response = api.handler(event, lambda_context, api.Deps(service))
        headers = {k: v for k, v in (response.get("headers") or {}).items()}
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[name] = values[-1]
        body = response.get("body")
        return Answer(response["statusCode"], headers, json.loads(body) if body else None)

    return invoke


def basic_auth(write_key: str) -> str:
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


def tracking_request(
    path: str,
    body: Any,
    *,
    write_key: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A public `/v1` request: no Cognito claims, the write key as HTTP Basic auth if given."""
    event = api_request("POST", path, body=body, groups=None)
    event["requestContext"].pop("authorizer", None)
    sent = {"Content-Type": "application/json", "User-Agent": "analytics-python/2.4.0", **(headers or {})}
    if write_key is not None:
        sent["Authorization"] = basic_auth(write_key)
    event["headers"] = sent
    event["multiValueHeaders"] = {k: [v] for k, v in sent.items()}
    return event


def staff_request(method: str, resource: str, *, groups: str = "admin", **kwargs: Any) -> dict[str, Any]:
    return api_request(method, resource, groups=groups, **kwargs)
