"""EventPublisher against EventBridge (moto): a custom bus, a rule and an SQS target."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from ecrm.core.publisher import EventPublisher
from ecrm.platform.models import PingRequested

from tests.integration.queues import drain

CORRELATION_ID = "cor_01JD3Z6Q5N8V4W7X2Y9A0B1C2E"


def _pings(count: int) -> list[PingRequested]:
    at = datetime(2026, 11, 23, 10, 15, 30, tzinfo=UTC)
    return [
        PingRequested(
            ping_id=f"png_{n:026d}", message=f"ping {n}", requested_by="marketer@example.com", requested_at=at
        )
        for n in range(count)
    ]


def test_fifteen_events_reach_the_queue_through_the_rule(ping_route, events_client, sqs_client):
    # Given the platform's bus, rule and queue
    publisher = EventPublisher(ping_route.bus_name, events_client)

    # When 15 pings are published (two PutEvents calls)
    receipt = publisher.publish_all(_pings(15), correlation_id=CORRELATION_ID)

    # Then every one was accepted and delivered once, as an EventBridge event carrying our envelope
    assert receipt.ok
    assert len(receipt.published_ids) == 15
    messages = drain(sqs_client, ping_route.queue_url)
    assert len(messages) == 15
    bus_events = [json.loads(m["Body"]) for m in messages]
    assert {e["id"] for e in bus_events} == set(receipt.published_ids)
    for bus_event in bus_events:
        assert bus_event["source"] == "ecrm.platform"
        assert bus_event["detail-type"] == "PingRequested"
        assert set(bus_event["detail"]) == {"metadata", "data"}
        assert bus_event["detail"]["metadata"]["correlation_id"] == CORRELATION_ID
    assert sorted(e["detail"]["data"]["ping_id"] for e in bus_events) == [p.ping_id for p in _pings(15)]


def test_an_event_the_rule_does_not_match_is_not_delivered(ping_route, events_client, sqs_client):
    # Given an event of another engine on the same bus
    entry = {
        "EventBusName": ping_route.bus_name,
        "Source": "ecrm.customers",
        "DetailType": "PingRequested",
        "Detail": json.dumps({"metadata": {}, "data": {}}),
    }

    # When it is put directly
    events_client.put_events(Entries=[entry])

    # Then the platform queue stays empty
    assert drain(sqs_client, ping_route.queue_url) == []
