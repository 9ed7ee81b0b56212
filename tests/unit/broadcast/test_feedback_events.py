"""Provider feedback read from the sample events (AWS documentation shapes) into one shape."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ecrm.broadcast.feedback_events import ProviderFeedback, UnknownFeedback, keyword_kind, parse_feedback

SAMPLES = Path(__file__).resolve().parents[3] / "events" / "samples"
MESSAGE_ID = "msg_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"
SES_ID = "0100019a5c3e7b21-6f1d2c3b-4a5e-4f60-9b7c-8d9e0f1a2b3c-000000"


def sample(path: str) -> dict[str, Any]:
    return dict(json.loads((SAMPLES / path).read_text()))


def only(body: dict[str, Any]) -> ProviderFeedback:
    [feedback] = parse_feedback(body)
    return feedback


def sns(message: dict[str, Any]) -> dict[str, Any]:
    """An SNS envelope around `message`, as an SQS queue subscribed to the topic receives it."""
    return {"Type": "Notification", "Message": json.dumps(message), "Timestamp": "2026-11-23T10:15:00.000Z"}


@pytest.mark.parametrize(
    ("name", "kind", "address"),
    [
        ("email_sent", "sent", "customer@example.com"),
        ("email_delivered", "delivered", "customer@example.com"),
        ("email_opened", "opened", "customer@example.com"),
        ("email_clicked", "clicked", "customer@example.com"),
    ],
)
def test_ses_events_name_our_message_from_its_tags(name: str, kind: str, address: str) -> None:
    feedback = only(sample(f"ses/{name}.json"))
    assert (feedback.kind, feedback.channel, feedback.message_id) == (kind, "email", MESSAGE_ID)
    assert feedback.address == address
    assert feedback.provider_message_id == SES_ID
    assert feedback.occurred_at.tzinfo is not None


def test_a_hard_bounce_is_permanent_and_a_soft_one_is_not() -> None:
    event = sample("ses/email_bounced.json")
    feedback = only(event)
    assert feedback.kind == "bounced"
    assert feedback.permanent
    assert feedback.detail["bounce_type"] == "Permanent"
    soft = copy.deepcopy(event)
    soft["detail"]["bounce"]["bounceType"] = "Transient"
    assert not only(soft).permanent


def test_a_complaint_and_a_click_carry_their_detail() -> None:
    complaint = only(sample("ses/email_complaint.json"))
    assert complaint.kind == "complained"
    assert complaint.detail["feedback_type"] == "abuse"
    click = only(sample("ses/email_clicked.json"))
    assert click.detail["link"].startswith("https://")


def test_the_same_ses_record_through_an_sns_destination_reads_the_same() -> None:
    event = sample("ses/email_delivered.json")
    assert parse_feedback(sns(event["detail"])) == parse_feedback(event)


def test_ses_reject_rendering_failure_delay_and_subscription() -> None:
    reject = only(sample("ses/email_rejected.json"))
    assert (reject.kind, reject.permanent, reject.detail) == (
        "failed",
        True,
        {"code": "rejected", "reason": "Bad content"},
    )
    failure = only(sample("ses/email_rendering_failed.json"))
    assert (failure.kind, failure.permanent, failure.detail["template"]) == ("failed", True, "winter-sale")
    delayed = only(sample("ses/email_delivery_delayed.json"))
    assert (delayed.kind, delayed.message_id) == ("delayed", MESSAGE_ID)
    assert delayed.detail["delay_type"] == "TransientCommunicationFailure"
    assert delayed.occurred_at == datetime(2026, 11, 23, 10, 35, 40, 95000, tzinfo=UTC)
    unsubscribed = only(sample("ses/email_subscription.json"))
    assert (unsubscribed.kind, unsubscribed.address) == ("opted_out", "customer@example.com")
    assert (unsubscribed.detail["all"], unsubscribed.detail["topics"]) == (True, ["newsletter"])
    topic_only = sample("ses/email_subscription.json")
    topic_only["detail"]["subscription"]["newTopicPreferences"]["unsubscribeAll"] = False
    topic_only["detail"]["subscription"]["newTopicPreferences"]["topicSubscriptionStatus"][0]["subscriptionStatus"] = (
        "OptIn"
    )
    assert only(topic_only).kind == "opted_in"


def test_sms_events_carry_our_message_id_in_context() -> None:
    accepted = only(sample("messaging/sms_text_successful.json") | {})
    assert (accepted.kind, accepted.channel, accepted.message_id) == ("sent", "sms", MESSAGE_ID)
    assert accepted.address == "+14255550156"
    assert accepted.provider_message_id == "862a8790-60c0-4430-9b2b-658bdexample"
    assert accepted.occurred_at == datetime(2026, 11, 23, 10, 15, 2, tzinfo=UTC)
    assert only(sample("messaging/sms_text_successful_eventbridge.json")) == accepted
    delivered = only(sample("messaging/sms_text_delivered_sns.json"))
    assert (delivered.kind, delivered.permanent) == ("delivered", False)
    invalid = only(sample("messaging/sms_text_invalid_sns.json"))
    assert (invalid.kind, invalid.permanent, invalid.address) == ("failed", True, "+14255550199")
    assert invalid.detail["code"] == "TEXT_INVALID"


@pytest.mark.parametrize(
    ("event_type", "kind", "permanent"),
    [
        ("TEXT_PENDING", "sent", False),
        ("TEXT_BLOCKED", "failed", False),
        ("TEXT_CARRIER_UNREACHABLE", "failed", False),
        ("TEXT_TTL_EXPIRED", "failed", False),
        ("TEXT_UNKNOWN", None, False),
        ("VOICE_INITIATED", "sent", False),
        ("VOICE_RINGING", None, False),
        ("VOICE_COMPLETED", None, False),
        ("VOICE_NO_ANSWER", "failed", False),
        ("VOICE_BUSY", "failed", False),
    ],
)
def test_phone_statuses_map_to_outcomes(event_type: str, kind: str | None, permanent: bool) -> None:
    event = sample("messaging/sms_text_successful.json") | {"eventType": event_type}
    found = parse_feedback(sns(event))
    if kind is None:
        assert found == []
        return
    [feedback] = found
    assert (feedback.kind, feedback.permanent) == (kind, permanent)
    assert feedback.channel == ("voice" if event_type.startswith("VOICE") else "sms")


def test_a_voice_event_is_the_voice_channel() -> None:
    answered = only(sample("messaging/voice_answered_sns.json"))
    assert (answered.kind, answered.channel, answered.message_id) == (
        "delivered",
        "voice",
        "msg_01JD3Z6Q5N8V4W7X2Y9A0B1C2E",
    )


def test_inbound_sms_keywords() -> None:
    stop = only(sample("messaging/sms_inbound_stop_sns.json"))
    assert (stop.kind, stop.channel, stop.address, stop.message_id) == ("opted_out", "sms", "+14255550156", None)
    assert stop.detail["in_reply_to"] == "862a8790-60c0-4430-9b2b-658bdexample"
    assert stop.occurred_at == datetime(2026, 11, 23, 10, 20, 0, 310000, tzinfo=UTC)
    join = only(sns(sample("messaging/sms_inbound.json")))
    assert (join.kind, join.detail["body"]) == ("inbound", "EXAMPLE")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("STOP", "opted_out"),
        ("stop please", "opted_out"),
        ("Arrêt", "opted_out"),
        ("ARRET", "opted_out"),
        ("StopAll", "opted_out"),
        ("unsubscribe", "opted_out"),
        ("Cancel.", "opted_out"),
        ("end", "opted_out"),
        ("QUIT!", "opted_out"),
        ("HELP", "help"),
        ("info?", "help"),
        ("START", "opted_in"),
        ("unstop", "opted_in"),
        ("Yes", "opted_in"),
        ("Where is my order?", "inbound"),
        ("", "inbound"),
        ("Stop promotions", "opted_out"),
    ],
)
def test_reply_keywords(text: str, kind: str) -> None:
    assert keyword_kind(text) == kind


def test_push_delivery_failure_and_a_disabled_endpoint() -> None:
    failure = only(sample("messaging/push_delivery_failure_sns.json"))
    assert (failure.kind, failure.channel, failure.permanent) == ("failed", "push", True)
    assert failure.detail["code"] == "InvalidPlatformToken"
    assert failure.address.endswith("5e3e9847-3183-3f18-a7e8-671c3a57d4b3")  # type: ignore[union-attr]
    assert failure.provider_message_id == "9a8b7c6d-5e4f-5a3b-9c2d-1e0f9a8b7c6d"
    disabled = only(sample("messaging/push_endpoint_updated_sns.json"))
    assert (disabled.kind, disabled.address) == ("endpoint_disabled", failure.address)
    updated = json.loads(sample("messaging/push_endpoint_updated_sns.json")["Message"]) | {"Enabled": "true"}
    assert parse_feedback(sns(updated)) == []


def test_whatsapp_statuses_name_our_message_and_failures_their_error() -> None:
    delivered = only(sample("messaging/whatsapp_status_delivered_sns.json"))
    assert (delivered.kind, delivered.channel, delivered.message_id) == ("delivered", "whatsapp", MESSAGE_ID)
    assert delivered.address == "+14255550156"
    assert delivered.provider_message_id == "6d69f07a-c317-4278-9d5c-6a84078419ec"
    assert delivered.occurred_at == datetime(2026, 11, 23, 10, 15, 3, tzinfo=UTC)
    failed = only(sample("messaging/whatsapp_status_failed_sns.json"))
    assert (failed.kind, failed.permanent, failed.detail["errors"]) == ("failed", True, [131026])
    assert failed.detail["code"] == "131026"


def test_a_whatsapp_read_is_an_open_and_stop_an_opt_out() -> None:
    body = sample("messaging/whatsapp_status_delivered_sns.json")
    envelope = json.loads(body["Message"])
    entry = json.loads(envelope["whatsAppWebhookEntry"])
    entry["changes"][0]["value"]["statuses"][0]["status"] = "read"
    envelope["whatsAppWebhookEntry"] = json.dumps(entry)
    assert only(sns(envelope)).kind == "opened"
    stop = only(sample("messaging/whatsapp_inbound_stop_sns.json"))
    assert (stop.kind, stop.address, stop.message_id) == ("opted_out", "+14255550156", None)
    eventbridge = {"source": "aws.social-messaging", "detail-type": "WhatsApp Message Received", "detail": envelope}
    assert only(eventbridge).kind == "opened"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"hello": "world"},
        {"Type": "Notification", "Message": "not json"},
        {"Type": "Notification", "Message": "[1, 2]"},
        {"source": "aws.ec2", "detail": {}},
        {"source": "aws.ses", "detail": {"eventType": "Teleport", "mail": {}}},
        {"source": "aws.ses", "detail": {"eventType": "Bounce"}},
        {"eventType": "RCS_READ", "messageId": "x"},
        {"EventType": "DeliveryFailure"},
        {"whatsAppWebhookEntry": "{}"},
        {"originationNumber": "+14255550156", "messageBody": "STOP"},
    ],
)
def test_an_unknown_or_broken_shape_is_refused_with_one_error(body: dict[str, Any]) -> None:
    with pytest.raises(UnknownFeedback):
        parse_feedback(body)
