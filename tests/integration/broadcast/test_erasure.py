"""The broadcast engine's part of an erasure, on moto: the customer's records deleted, messages kept without
them (one not yet sent ended), the suppression of their address kept under its hash and still honoured for
whoever has the address next, acknowledged from this engine once per delivery; a redelivery changes nothing."""

from __future__ import annotations

import json
from typing import Any

from ecrm.broadcast.erasure import BroadcastErasure
from ecrm.broadcast.keys import address_hash
from ecrm.broadcast.models import BroadcastDataErased, Device
from ecrm.core.erasure import CustomerErasureRequested
from ecrm.core.events import envelope_for

from functions.broadcast import on_erasure_requested
from tests.integration.broadcast.conftest import NOW, TABLE, Engine
from tests.integration.broadcast.test_pipeline import Feedback
from tests.samples import sqs_batch


class RecordingPublisher:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def publish_all(self, events: Any, *, correlation_id: str | None = None) -> None:
        self.events.extend(events)


def request_body(customer_id: str) -> str:
    request = CustomerErasureRequested(
        request_id="era_01JD3Z6Q5N8V4W7X2Y9A0B1C2D",
        customer_id=customer_id,
        customer_ids=[customer_id],
        requested_at=NOW,
    )
    return json.dumps(
        {
            "id": "eb-erasure",
            "source": request.source,
            "detail-type": request.detail_type,
            "time": NOW.isoformat(),
            "detail": envelope_for(request),
        }
    )


def table_text(engine: Engine) -> str:
    items = engine.client.scan(TableName=TABLE)["Items"]
    return json.dumps(items, default=str)  # a content item is compressed bytes


def test_an_erasure_deletes_detaches_hashes_the_suppression_and_is_acknowledged(
    engine: Engine, lambda_context: Any
) -> None:
    # Given a customer with a bounced email (their address suppressed), a message still queued, an inbox
    # item, a device and a webhook endpoint
    engine.contacts.add("c1")
    bounced = engine.request(key="a")
    engine.run(bounced)
    engine.feedback.apply(Feedback("bounced", bounced, address="c1@example.com", permanent=True))
    delivered = engine.request(key="d", purpose="transactional", channel="sms", content={"sms": {"body": "Hi"}})
    engine.run(delivered)
    waiting = engine.request(key="b", purpose="transactional", channel="sms", content={"sms": {"body": "Code 1234"}})
    engine.dispatcher.dispatch([waiting], correlation_id="c")
    queued = engine.queues.drain()
    engine.store.deliver(engine.store.get_message(bounced))
    engine.store.put_device(
        "c1",
        Device(device_id="dev1", platform="fcm", endpoint_arn="arn:aws:sns:us-east-1:1:endpoint/x", registered_at=NOW),
    )
    engine.store.put_endpoint("wh1", url="https://hooks.example.com/c1", secret="s", customer_id="c1")
    assert queued
    assert "c1@example.com" in table_text(engine)

    # When the erasure request is delivered twice
    acks = RecordingPublisher()
    handler: Any = on_erasure_requested.handler
    erasure = BroadcastErasure(engine.store, engine.clock)
    batch = sqs_batch([request_body("c1"), request_body("c1")])
    assert handler(batch, lambda_context, (erasure, acks)) == {"batchItemFailures": []}

    # Then nothing names the customer or their address
    text = table_text(engine)
    assert "c1@example.com" not in text
    assert "+33612345678" not in text
    assert "CUST#c1" not in text
    assert '"c1"' not in text
    assert engine.store.owner_of("c1@example.com") is None
    assert engine.store.endpoint("wh1") is None
    # The messages stay as bookkeeping without the customer; the queued one ended and is not sent
    kept = engine.store.get_message(bounced)
    assert kept is not None
    assert (kept.customer_id, kept.address, kept.content, kept.status) == ("erased", None, {}, "bounced")
    still_sent = engine.store.get_message(delivered)
    assert still_sent is not None
    assert (still_sent.status, still_sent.customer_id) == ("sent", "erased")
    ended = engine.store.get_message(waiting)
    assert ended is not None
    assert (ended.status, ended.reason) == ("failed", "erased")
    sent_before = sum(len(a.sent) for a in engine.adapters.values())
    for body in queued:
        assert engine.sender.send(body) != "sent"
    assert sum(len(a.sent) for a in engine.adapters.values()) == sent_before
    # The suppression outlives the customer, under the address's hash, for whoever has the address next
    (entry,) = engine.messages.suppressions(limit=10, cursor=None).items
    assert (entry.address, entry.customer_id, entry.reason) == (
        f"sha256:{address_hash('c1@example.com')}",
        None,
        "hard_bounce",
    )
    engine.contacts.add("c2", addresses={"email": ["C1@example.com"], "phone": []})
    again = engine.request("c2", key="c")
    engine.run(again)
    after = engine.messages.get(again)
    assert after.reason == "suppressed:hard_bounce"
    # And each delivery is acknowledged from this engine
    assert [type(a) for a in acks.events] == [BroadcastDataErased, BroadcastDataErased]
    assert {(a.engine, a.source, a.request_id) for a in acks.events} == {
        ("broadcast", "ecrm.broadcast", "era_01JD3Z6Q5N8V4W7X2Y9A0B1C2D")
    }


def test_an_erased_suppression_can_still_be_lifted_by_its_address(engine: Engine) -> None:
    engine.contacts.add("c1")
    first = engine.request(key="a")
    engine.run(first)
    engine.feedback.apply(Feedback("bounced", first, address="c1@example.com", permanent=True))
    BroadcastErasure(engine.store, engine.clock).erase(
        CustomerErasureRequested(request_id="era_1", customer_id="c1", customer_ids=["c1"], requested_at=NOW)
    )
    engine.messages.unsuppress("C1@example.com")
    assert engine.messages.suppressions(limit=10, cursor=None).items == []
    assert engine.store.suppressed(["c1@example.com"]) == {}
