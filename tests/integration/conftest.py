"""AWS in process with moto: the bus, the platform queue and the platform table.

Clients are created inside the mock, and any endpoint override from the environment is removed
first, so nothing here can reach a network.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

REGION = "us-east-1"
BUS_NAME = "ecrm"
QUEUE_NAME = "ecrm-platform-pings"
TABLE_NAME = "ecrm-platform"
PING_PATTERN = {"source": ["ecrm.platform"], "detail-type": ["PingRequested"]}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_EVENTS",
        "AWS_ENDPOINT_URL_SQS",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


@pytest.fixture
def events_client(aws: None) -> Any:
    return boto3.client("events", region_name=REGION)


@pytest.fixture
def sqs_client(aws: None) -> Any:
    return boto3.client("sqs", region_name=REGION)


@dataclass(frozen=True)
class PingRoute:
    """The platform's wiring: custom bus -> rule on PingRequested -> queue."""

    bus_name: str
    queue_url: str
    queue_arn: str


@pytest.fixture
def ping_route(events_client: Any, sqs_client: Any) -> PingRoute:
    queue_url = sqs_client.create_queue(QueueName=QUEUE_NAME)["QueueUrl"]
    queue_arn = sqs_client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events_client.create_event_bus(Name=BUS_NAME)
    events_client.put_rule(
        Name="platform-ping-requested",
        EventBusName=BUS_NAME,
        EventPattern=json.dumps(PING_PATTERN),
        State="ENABLED",
    )
    events_client.put_targets(
        Rule="platform-ping-requested",
        EventBusName=BUS_NAME,
        Targets=[{"Id": "platform-queue", "Arn": queue_arn}],
    )
    return PingRoute(BUS_NAME, queue_url, queue_arn)


@pytest.fixture
def platform_table(aws: None) -> Any:
    dynamodb = boto3.resource("dynamodb", region_name=REGION)
    table = dynamodb.create_table(
        TableName=TABLE_NAME,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    table.wait_until_exists()
    return table
