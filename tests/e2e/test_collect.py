"""The real segment-analytics-python client, pointed at the local API: timeline, lake and bus."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from ecrm_ops.tour.context import TourContext, wait_for
from segment.analytics import Client
from segment.analytics.request import APIError

from infra.local.cloud import LocalCloud
from infra.local.lake import LocalLake


@pytest.fixture(scope="module")
def write_key(tour: TourContext) -> str:
    created = tour.call(
        "POST",
        "/sources",
        token=tour.token(group="admin"),
        body={"name": "e2eshop", "kind": "server", "description": "e2e"},
    )
    assert created.status == 201, created.body
    return str(created.body["write_key"])


@pytest.fixture
def analytics(tour: TourContext, write_key: str) -> Iterator[Client]:
    client = Client(write_key, host=tour.api, sync_mode=True, max_retries=1, timeout=15)
    yield client
    client.flush()  # sync mode has no consumer thread to join


@pytest.fixture(scope="module")
def bus_tap(cloud: LocalCloud) -> str:
    """A queue subscribed to everything the collection engine puts on the bus (like any consumer)."""
    sqs, events = cloud.client("sqs"), cloud.client("events")
    url = sqs.create_queue(QueueName="e2e-collect-tap")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="e2e-collect-tap",
        EventBusName=cloud.state.event_bus_name,
        EventPattern=json.dumps({"source": ["ecrm.collect"]}),
    )
    events.put_targets(
        Rule="e2e-collect-tap", EventBusName=cloud.state.event_bus_name, Targets=[{"Id": "tap", "Arn": arn}]
    )
    return str(url)


def drain(cloud: LocalCloud, url: str) -> list[dict[str, Any]]:
    sqs = cloud.client("sqs")
    seen = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        seen += [json.loads(m["Body"]) for m in batch]
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        )
    return seen


def timeline(tour: TourContext, user_id: str, source: str = "e2eshop") -> list[dict[str, Any]]:
    admin = tour.token(group="admin")
    found = tour.call("GET", f"/customers?external_id={source}:{user_id}", token=admin)
    if found.status != 200:
        return []
    return list(
        tour.call("GET", f"/customers/{found.body['customer_id']}/timeline?limit=100", token=admin).body["items"]
    )


def test_anonymous_browsing_then_sign_in_lands_on_the_customer_in_the_lake_and_on_the_bus(
    tour: TourContext, analytics: Client, bus_tap: str
) -> None:
    anonymous_id, user_id = str(uuid.uuid4()), f"user-{uuid.uuid4().hex[:8]}"
    ids = [str(uuid.uuid4()) for _ in range(4)]
    # When an anonymous visitor browses, then signs in, through the real client library
    analytics.page(
        anonymous_id=anonymous_id, name="Home", properties={"url": "https://shop.example.com/"}, message_id=ids[0]
    )
    analytics.track(
        anonymous_id=anonymous_id, event="Product Viewed", properties={"product_id": "sku-1"}, message_id=ids[1]
    )
    analytics.identify(
        user_id=user_id, anonymous_id=anonymous_id, traits={"email": f"{user_id}@example.com"}, message_id=ids[2]
    )
    analytics.track(user_id=user_id, event="Order Completed", properties={"revenue": 42.5}, message_id=ids[3])
    analytics.flush()
    # Then the whole journey is on the known customer's timeline, pre-sign-in events included
    items = wait_for(lambda: len(t := timeline(tour, user_id)) >= 3 and t, timeout=30, what="the timeline")
    assert sorted(i["type"] for i in items) == ["order_completed", "page_view", "product_viewed"]
    # And every message is in the lake, once
    lake = LocalLake(tour.cloud.client("s3"), tour.cloud.physical_id("AWS::S3::Bucket", "LakeBucket"))
    quoted = ", ".join(f"'{i}'" for i in ids)
    rows = lake.query(f"select message_id, type from {{collected_events}} where message_id in ({quoted})")
    assert sorted(r["message_id"] for r in rows) == sorted(ids)
    # And on the bus, as the collection engine's events
    on_bus = drain(tour.cloud, bus_tap)
    assert {e["detail"]["data"]["message"]["message_id"] for e in on_bus} >= set(ids)
    assert {e["detail-type"] for e in on_bus} >= {"PageViewed", "TrackEventReceived", "UserIdentified"}


def test_a_resent_message_is_accepted_once(tour: TourContext, analytics: Client) -> None:
    user_id, message_id = f"user-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    for _ in range(3):  # a client retrying after a timeout
        analytics.track(user_id=user_id, event="Coupon Applied", message_id=message_id)
    analytics.flush()
    items = wait_for(lambda: timeline(tour, user_id), timeout=30, what="the event")
    assert [i["type"] for i in items] == ["coupon_applied"]


def test_a_wrong_write_key_is_refused(tour: TourContext) -> None:
    refused = Client("wk_not-a-key", host=tour.api, sync_mode=True, max_retries=0)
    with pytest.raises(APIError) as raised:
        refused.track(user_id="u", event="Nope")
    assert raised.value.status == 401
