"""A push SNS refused: its feedback names only SNS's message id and the endpoint, and still reaches the message."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ecrm.broadcast.feedback import NotRecordedYet
from ecrm.broadcast.feedback_events import parse_feedback
from ecrm.broadcast.models import Device

from tests.integration.broadcast.conftest import Engine

SAMPLES = Path(__file__).resolve().parents[3] / "events" / "samples" / "messaging"
ENDPOINT = "arn:aws:sns:us-east-1:123456789012:endpoint/APNS/ecrm-ios/5e3e9847-3183-3f18-a7e8-671c3a57d4b3"


def delivery_failure(provider_message_id: str, failure_type: str, at: datetime | None = None) -> dict[str, Any]:
    """SNS's DeliveryFailure notification (the stored sample, of 2026-11-23) about one publish and failure type."""
    body = json.loads((SAMPLES / "push_delivery_failure_sns.json").read_text())
    event = json.loads(body["Message"]) | {"MessageId": provider_message_id, "FailureType": failure_type}
    if at is not None:
        event["Time"] = at.isoformat()
    return body | {"Message": json.dumps(event)}


def sent_push(engine: Engine) -> tuple[str, str]:
    """A marketing push sent to the customer's one device: (our message id, SNS's message id)."""
    engine.contacts.add("c1")
    at = datetime(2026, 12, 1, tzinfo=UTC)
    engine.store.put_device("c1", Device(device_id="d1", platform="apns", endpoint_arn=ENDPOINT, registered_at=at))
    message_id = engine.request(channel="push", content={"push": {"body": "Winter sale"}})
    assert engine.run(message_id) == {message_id: "sent"}
    message = engine.store.get_message(message_id)
    assert message is not None
    assert message.provider_message_id
    return message_id, message.provider_message_id


def apply(engine: Engine, body: dict[str, Any]) -> list[str]:
    return [engine.feedback.apply(feedback) for feedback in parse_feedback(body)]


def test_a_refused_token_fails_the_push_once_and_retires_its_device(engine: Engine) -> None:
    message_id, provider_id = sent_push(engine)
    refused = delivery_failure(provider_id, "InvalidPlatformToken")

    assert apply(engine, refused) == ["failed"]
    assert apply(engine, refused) == ["noop"]  # SQS delivers at least once

    message = engine.store.get_message(message_id)
    assert message is not None
    assert (message.status, message.reason) == ("failed", "permanent:InvalidPlatformToken")
    (failed,) = engine.store.of("MessageFailed")
    assert (failed.message_id, failed.channel) == (message_id, "push")
    assert [d.enabled for d in engine.store.devices("c1")] == [False]


def test_a_failure_sns_does_not_call_permanent_fails_the_push_and_keeps_the_device(engine: Engine) -> None:
    message_id, provider_id = sent_push(engine)

    assert apply(engine, delivery_failure(provider_id, "DeliveryFailureUnknown")) == ["failed"]

    message = engine.store.get_message(message_id)
    assert message is not None
    assert (message.status, message.reason) == ("failed", "provider:DeliveryFailureUnknown")
    assert len(engine.store.of("MessageFailed")) == 1
    assert [d.enabled for d in engine.store.devices("c1")] == [True]


def test_a_refusal_reported_before_the_sender_recorded_the_push_is_tried_again(engine: Engine) -> None:
    early = delivery_failure("prov-1", "InvalidPlatformToken", at=engine.clock.now())  # the fake's first id
    with pytest.raises(NotRecordedYet):
        apply(engine, early)
    assert engine.store.of("MessageFailed") == []

    message_id, provider_id = sent_push(engine)  # the sender's write lands, then the queue delivers again
    assert provider_id == "prov-1"
    assert apply(engine, early) == ["failed"]

    (failed,) = engine.store.of("MessageFailed")
    assert failed.message_id == message_id
    assert [d.enabled for d in engine.store.devices("c1")] == [False]


def test_a_refusal_of_a_publish_no_message_recorded_still_retires_the_device(engine: Engine) -> None:
    sent_push(engine)

    assert apply(engine, delivery_failure("not-one-of-ours", "EndpointDisabled")) == ["retired"]

    assert engine.store.of("MessageFailed") == []
    assert [d.enabled for d in engine.store.devices("c1")] == [False]


def test_only_a_push_records_its_provider_id(engine: Engine) -> None:
    engine.contacts.add("c2")
    email = engine.request("c2", key="mail")
    assert engine.run(email) == {email: "sent"}
    push, _ = sent_push(engine)

    items = engine.client.scan(TableName="ecrm-broadcast")["Items"]
    assert [i["message_id"]["S"] for i in items if i["pk"]["S"].startswith("PROVIDER#")] == [push]
