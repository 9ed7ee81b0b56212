"""The insights engine on moto: its table (as `infra/engines/insights.py` declares it) and the service on a
clock the tests move, with the metrics it publishes kept in memory."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from ecrm.core.clock import FixedClock
from ecrm.insights.service import InsightsService, LiveSettings
from ecrm.insights.store import InsightsStore
from moto import mock_aws

from tests import outcome_counts

REGION = "us-east-1"
TABLE = "ecrm-insights"
NOW = datetime(2026, 11, 23, 10, 0, 30, tzinfo=UTC)


class Engine:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.clock = FixedClock(NOW)
        self.store = InsightsStore(client, TABLE)
        self.metrics: list[tuple[str, float, dict[str, str]]] = []
        self.service = InsightsService(self.store, self.clock, LiveSettings(shards=3), metric=self._metric)

    def _metric(self, name: str, value: float, dimensions: Mapping[str, str]) -> None:
        self.metrics.append((name, value, dict(dimensions)))


@pytest.fixture
def engine() -> Iterator[Engine]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
        )
        yield Engine(client)


def bus_event(source: str, detail_type: str, data: dict[str, Any], *, event_id: str, at: datetime = NOW) -> str:
    """An EventBridge event as it arrives in an SQS body, with our envelope."""
    return json.dumps(
        {
            "id": f"eb-{event_id}",
            "source": source,
            "detail-type": detail_type,
            "time": at.isoformat(),
            "detail": {
                "metadata": {"id": event_id, "version": "1", "correlation_id": "c", "occurred_at": at.isoformat()},
                "data": data,
            },
        }
    )


def message_event(detail_type: str, message_id: str, *, at: datetime = NOW, **fields: Any) -> str:
    """One of broadcast's message events as its rule delivers it (`tests.outcome_counts.message_event`'s fields)."""
    event = outcome_counts.message_event(detail_type, message_id, at=at, **fields)
    data = event.model_dump(mode="json")
    return bus_event("ecrm.broadcast", detail_type, data, event_id=f"evt-{message_id}-{detail_type}", at=at)


def order_event(order_id: str, customer_id: str, total_minor: int, at: datetime, *, currency: str = "EUR") -> str:
    data = {
        "order_id": order_id,
        "customer_id": customer_id,
        "currency": currency,
        "channel": "web",
        "lines": [{"sku": "SKU-1", "name": "Kettle", "quantity": 1, "unit_price_minor": total_minor}],
        "total_minor": total_minor,
        "placed_at": at.isoformat(),
    }
    return bus_event("ecrm.transactions", "OrderPlaced", data, event_id=f"evt-{order_id}", at=at)


def window(event_id: str, *events: Any) -> str:
    """Broadcast's counts of `events` (message events, `tests.outcome_counts.message_event`) as one window's
    `MessageOutcomesCounted`, in an SQS body."""
    (counted,) = outcome_counts.counted(events)
    return outcome_counts.bus_body(counted, event_id=event_id)
