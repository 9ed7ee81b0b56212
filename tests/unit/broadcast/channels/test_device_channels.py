"""Push (SNS platform endpoints), WhatsApp templates and the in-app inbox: requests and error classes."""

from __future__ import annotations

import json

import pytest
from ecrm.broadcast.channels.base import ChannelError
from ecrm.broadcast.channels.in_app import InAppAdapter
from ecrm.broadcast.channels.push import DeviceRegistrar, PushAdapter
from ecrm.broadcast.channels.whatsapp import WhatsAppAdapter

from tests.unit.broadcast.channels.fakes import CUSTOMER_ID, MESSAGE_ID, FakeClient, FakeInbox, message, provider_error

ENDPOINT = "arn:aws:sns:us-east-1:123456789012:endpoint/APNS/ecrm-ios/5e3e9847-3183-3f18-a7e8-671c3a57d4b3"
APPLICATION = "arn:aws:sns:us-east-1:123456789012:app/APNS/ecrm-ios"


def test_push_publishes_one_payload_per_platform_with_our_message_id() -> None:
    client = FakeClient(publish={"MessageId": "sns-push-1"})
    content = {"title": "Sale", "body": "50% off today", "data": {"deep_link": "shop://sale", "n": 2}}
    result = PushAdapter(lambda: client).send(message("push", ENDPOINT, content))

    assert result.provider_message_id == "sns-push-1"
    request = client.only("publish")
    assert request["TargetArn"] == ENDPOINT
    assert request["MessageStructure"] == "json"
    structured = json.loads(request["Message"])
    assert structured["default"] == "50% off today"
    apns = json.loads(structured["APNS"])
    assert apns["aps"]["alert"] == {"title": "Sale", "body": "50% off today"}
    assert apns["message_id"] == MESSAGE_ID
    assert structured["APNS_SANDBOX"] == structured["APNS"]
    fcm = json.loads(structured["GCM"])["fcmV1Message"]["message"]
    assert fcm["notification"] == {"title": "Sale", "body": "50% off today"}
    assert fcm["data"] == {"deep_link": "shop://sale", "n": "2", "message_id": MESSAGE_ID}  # FCM data: strings only


@pytest.mark.parametrize(
    ("code", "permanent", "throttled", "expected"),
    [
        ("EndpointDisabled", True, False, "endpoint_disabled"),
        ("NotFound", True, False, "NotFound"),
        ("InvalidParameter", True, False, "InvalidParameter"),
        ("Throttling", False, True, "Throttling"),
        ("PlatformApplicationDisabled", False, False, "PlatformApplicationDisabled"),
        ("InternalError", False, False, "InternalError"),
    ],
)
def test_push_errors_are_classified(code: str, permanent: bool, throttled: bool, expected: str) -> None:
    client = FakeClient()
    client.errors["publish"] = provider_error(code)
    with pytest.raises(ChannelError) as raised:
        PushAdapter(lambda: client).send(message("push", ENDPOINT, {"body": "x"}))
    assert (raised.value.permanent, raised.value.throttled, raised.value.code) == (permanent, throttled, expected)


def test_push_refuses_an_address_that_is_not_an_endpoint_arn() -> None:
    client = FakeClient()
    with pytest.raises(ChannelError) as raised:
        PushAdapter(lambda: client).send(message("push", "device-token-abc", {"body": "x"}))
    assert raised.value.permanent
    assert client.calls == []


def test_a_device_token_becomes_an_enabled_endpoint() -> None:
    client = FakeClient(
        create_platform_endpoint={"EndpointArn": ENDPOINT},
        get_endpoint_attributes={"Attributes": {"Token": "tok", "Enabled": "true", "CustomUserData": CUSTOMER_ID}},
    )
    registrar = DeviceRegistrar(lambda: client, {"apns": APPLICATION})
    assert registrar.register("apns", "tok", customer_id=CUSTOMER_ID) == ENDPOINT
    assert client.only("create_platform_endpoint") == {
        "PlatformApplicationArn": APPLICATION,
        "Token": "tok",
        "CustomUserData": CUSTOMER_ID,
    }
    assert not [c for c in client.calls if c[0] == "set_endpoint_attributes"]


def test_a_known_token_with_other_attributes_is_taken_over_and_enabled() -> None:
    client = FakeClient(get_endpoint_attributes={"Attributes": {"Token": "tok", "Enabled": "false"}})
    client.errors["create_platform_endpoint"] = provider_error(
        "InvalidParameter",
        f"Invalid parameter: Token Reason: Endpoint {ENDPOINT} already exists with the same Token, "
        "but different attributes.",
    )
    registrar = DeviceRegistrar(lambda: client, {"apns": APPLICATION})
    assert registrar.register("apns", "tok", customer_id=CUSTOMER_ID) == ENDPOINT
    assert client.only("set_endpoint_attributes") == {
        "EndpointArn": ENDPOINT,
        "Attributes": {"Token": "tok", "Enabled": "true", "CustomUserData": CUSTOMER_ID},
    }


def test_an_unknown_platform_or_an_empty_token_is_refused() -> None:
    registrar = DeviceRegistrar(lambda: FakeClient(), {"apns": APPLICATION})
    with pytest.raises(ValueError, match="fcm"):
        registrar.register("fcm", "tok", customer_id=CUSTOMER_ID)
    with pytest.raises(ValueError, match="token"):
        registrar.register("apns", "", customer_id=CUSTOMER_ID)


def test_whatsapp_sends_an_approved_template_with_its_parameters() -> None:
    client = FakeClient(send_whatsapp_message={"messageId": "wa-1"})
    adapter = WhatsAppAdapter(lambda: client, phone_number_id="phone-number-id-abc")
    content = {"template_name": "order_shipped", "language": "fr", "parameters": ["Émilie", "A-123"]}
    result = adapter.send(message("whatsapp", "+33612345678", content))

    assert result.provider_message_id == "wa-1"
    request = client.only("send_whatsapp_message")
    assert request["originationPhoneNumberId"] == "phone-number-id-abc"
    assert request["metaApiVersion"].startswith("v")
    body = json.loads(request["message"])
    assert body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+33612345678",
        "type": "template",
        "template": {
            "name": "order_shipped",
            "language": {"code": "fr"},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": "Émilie"}, {"type": "text", "text": "A-123"}]}
            ],
        },
        "biz_opaque_callback_data": MESSAGE_ID,
    }


@pytest.mark.parametrize(
    ("code", "permanent", "throttled"),
    [
        ("ValidationException", True, False),
        ("InvalidParametersException", True, False),
        ("ThrottledRequestException", False, True),
        ("DependencyException", False, False),
        ("ResourceNotFoundException", False, False),
    ],
)
def test_whatsapp_errors_are_classified(code: str, permanent: bool, throttled: bool) -> None:
    client = FakeClient()
    client.errors["send_whatsapp_message"] = provider_error(code)
    adapter = WhatsAppAdapter(lambda: client, phone_number_id="phone-number-id-abc")
    with pytest.raises(ChannelError) as raised:
        adapter.send(message("whatsapp", "+33612345678", {"template_name": "t", "language": "en"}))
    assert (raised.value.permanent, raised.value.throttled) == (permanent, throttled)


def test_whatsapp_refuses_parameters_that_are_not_texts() -> None:
    adapter = WhatsAppAdapter(lambda: FakeClient(), phone_number_id="p")
    with pytest.raises(ChannelError, match="parameters"):
        adapter.send(message("whatsapp", "+33612345678", {"template_name": "t", "language": "en", "parameters": [1]}))


def test_in_app_is_stored_once_through_the_inbox() -> None:
    inbox = FakeInbox()
    adapter = InAppAdapter(inbox)
    content = {"title": "Hi", "body": "Welcome", "cta_label": "Shop", "cta_url": "https://www.example.com/"}
    first = adapter.send(message("in_app", CUSTOMER_ID, content))
    again = adapter.send(message("in_app", CUSTOMER_ID, content))
    assert first == again
    assert list(inbox.items) == [MESSAGE_ID]


@pytest.mark.parametrize(
    ("address", "content"),
    [
        ("cus_other", {"title": "t", "body": "b"}),
        (CUSTOMER_ID, {"body": "b"}),
        (CUSTOMER_ID, {"title": "t", "body": "b", "cta_url": "https://x.example.com/"}),
        (CUSTOMER_ID, {"title": "t", "body": "b", "image_url": "javascript:alert(1)"}),
    ],
)
def test_in_app_refuses_what_it_cannot_show(address: str, content: dict[str, str]) -> None:
    inbox = FakeInbox()
    with pytest.raises(ChannelError) as raised:
        InAppAdapter(inbox).send(message("in_app", address, content))
    assert raised.value.permanent
    assert inbox.items == {}


def test_an_inbox_fault_is_transient() -> None:
    with pytest.raises(ChannelError) as raised:
        InAppAdapter(FakeInbox(broken=True)).send(message("in_app", CUSTOMER_ID, {"title": "t", "body": "b"}))
    assert not raised.value.permanent
