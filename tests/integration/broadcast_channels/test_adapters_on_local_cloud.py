"""The channel adapters against the local cloud's emulations (a moto server on 127.0.0.1, in process).

Each adapter sends through a real boto3 client as in AWS; what the emulated provider then publishes
(SES events, End User Messaging events and inbound texts, SNS push events, WhatsApp statuses) reaches
an SQS queue subscribed to a topic and is read back with `parse_feedback`: the loop the broadcast
engine closes, naming our message, with the provider errors the adapters classify.
"""

from __future__ import annotations

import email
import email.policy
import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from ecrm.broadcast.channels import ChannelError, ChannelSettings, OutboundMessage, build_adapters, device_registrar
from ecrm.broadcast.feedback_events import ProviderFeedback, parse_feedback
from ecrm.core.clock import FixedClock

from infra.local import messaging, ses, ses_events, ses_mail
from infra.local.cloud import free_port
from infra.local.messaging.client import LocalMessaging
from infra.local.template import ACCOUNT_ID
from tests.integration.queues import drain
from tests.unit.broadcast.channels.fakes import FakeEndpoints, FakeInbox

REGION = "us-east-1"
CLOCK = FixedClock(datetime(2026, 11, 23, 10, 15, tzinfo=UTC))


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    ses.install()
    messaging.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    yield f"http://127.0.0.1:{server._port}"
    server.stop()


class Clients:
    """boto3 clients on the local cloud, one per service, without retries (a throttle must reach the adapter)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.made: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self.made:
            self.made[service] = boto3.client(
                service,  # type: ignore[call-overload]
                endpoint_url=self.endpoint,
                region_name=REGION,
                aws_access_key_id="local",
                aws_secret_access_key="local",
                config=Config(retries={"max_attempts": 1}),
            )
        return self.made[service]

    def queue(self) -> tuple[str, str]:
        """A new SNS topic with an SQS queue subscribed: (topic ARN, queue URL)."""
        name = f"t-{uuid.uuid4().hex[:10]}"
        topic = self("sns").create_topic(Name=name)["TopicArn"]
        url = self("sqs").create_queue(QueueName=name)["QueueUrl"]
        arn = self("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        return topic, url

    def feedback(self, queue_url: str) -> list[ProviderFeedback]:
        """What the feedback queue received, parsed as the broadcast engine parses it."""
        ses_events.flush()  # SES publishes after its call has answered
        return [f for m in drain(self("sqs"), queue_url) for f in parse_feedback(json.loads(m["Body"]))]


@pytest.fixture
def aws(endpoint: str) -> Clients:
    return Clients(endpoint)


def outbound(channel: str, address: str, content: dict[str, Any], **extra: Any) -> OutboundMessage:
    message_id = "msg_" + uuid.uuid4().hex[:26].upper()
    fields: dict[str, Any] = {
        "message_id": message_id,
        "customer_id": "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D",
        "channel": channel,
        "address": address,
        "purpose": "transactional",
        "topic": None,
        "content": content,
        "tags": {"message_id": message_id},
    }
    return OutboundMessage(**(fields | extra))


def adapters(aws: Clients, **settings: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"email_from": "Example Shop <news@example.com>", "configuration_set": None} | settings
    return dict(
        build_adapters(
            ChannelSettings(**fields), session=aws, inbox=FakeInbox(), endpoints=FakeEndpoints(), clock=CLOCK
        )
    )


# -- email ---------------------------------------------------------------------------------------------------
@pytest.fixture
def mail_set(aws: Clients) -> Iterator[tuple[str, str]]:
    """A verified sending domain and a configuration set whose every event goes to a queue (via SNS)."""
    sesv2 = aws("sesv2")
    sesv2.create_email_identity(EmailIdentity="example.com")
    name = f"ecrm-{uuid.uuid4().hex[:8]}"
    topic, queue = aws.queue()
    sesv2.create_configuration_set(ConfigurationSetName=name)
    sesv2.create_configuration_set_event_destination(
        ConfigurationSetName=name,
        EventDestinationName="feedback",
        EventDestination={
            "Enabled": True,
            "MatchingEventTypes": ["SEND", "DELIVERY", "BOUNCE", "COMPLAINT", "REJECT"],
            "SnsDestination": {"TopicArn": topic},
        },
    )
    yield name, queue
    ses_mail.configure_send_quota(ACCOUNT_ID, REGION, max_24_hour_send=-1, max_send_rate=-1)


def test_marketing_email_reaches_ses_whole_and_its_events_name_the_message(
    aws: Clients, mail_set: tuple[str, str]
) -> None:
    configuration_set, queue = mail_set
    email_adapter = adapters(aws, configuration_set=configuration_set)["email"]
    message = outbound(
        "email",
        "success@simulator.amazonses.com",
        {"subject": "Soldes d'hiver ☃", "html": "<p>Bonjour</p><a href='https://www.example.com/w'>Voir</a>"},
        purpose="marketing",
        unsubscribe_url="https://www.example.com/u/token",
        preferences_url="https://www.example.com/p/token",
    )

    result = email_adapter.send(message)

    [kept] = ses.sent_mail(ACCOUNT_ID, REGION, message_id=result.provider_message_id)
    parsed = email.message_from_bytes(kept.mime, policy=email.policy.default)
    assert parsed["Subject"] == "Soldes d'hiver ☃"
    assert parsed["List-Unsubscribe"] == "<https://www.example.com/u/token>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert {"Name": "message_id", "Value": message.message_id} in kept.tags
    feedback = aws.feedback(queue)
    assert [(f.kind, f.message_id, f.provider_message_id) for f in feedback] == [
        ("sent", message.message_id, result.provider_message_id),
        ("delivered", message.message_id, result.provider_message_id),
    ]


def test_a_hard_bounce_comes_back_permanent_and_a_quota_is_a_throttle(aws: Clients, mail_set: tuple[str, str]) -> None:
    configuration_set, queue = mail_set
    email_adapter = adapters(aws, configuration_set=configuration_set)["email"]
    bounce = outbound("email", "bounce@simulator.amazonses.com", {"subject": "Receipt", "text": "Thanks"})
    email_adapter.send(bounce)
    [bounced] = [f for f in aws.feedback(queue) if f.kind == "bounced"]
    assert (bounced.message_id, bounced.permanent, bounced.address) == (
        bounce.message_id,
        True,
        "bounce@simulator.amazonses.com",
    )

    ses_mail.configure_send_quota(ACCOUNT_ID, REGION, max_24_hour_send=0, max_send_rate=-1)
    with pytest.raises(ChannelError) as raised:
        email_adapter.send(outbound("email", "customer@example.com", {"subject": "s", "text": "t"}))
    assert (raised.value.throttled, raised.value.permanent, raised.value.code) == (
        True,
        False,
        "LimitExceededException",
    )


# -- SMS and voice --------------------------------------------------------------------------------------------
def test_a_text_and_a_call_settle_from_their_events_and_a_stop_opts_the_number_out(aws: Clients) -> None:
    sms = aws("pinpoint-sms-voice-v2")
    number = sms.request_phone_number(
        IsoCountryCode="FR", MessageType="TRANSACTIONAL", NumberCapabilities=["SMS", "VOICE"], NumberType="LONG_CODE"
    )
    events_topic, events = aws.queue()
    inbound_topic, inbound = aws.queue()
    config = f"ecrm-sms-{uuid.uuid4().hex[:8]}"
    sms.create_configuration_set(ConfigurationSetName=config)
    sms.create_event_destination(
        ConfigurationSetName=config,
        EventDestinationName="feedback",
        MatchingEventTypes=["ALL"],
        SnsDestination={"TopicArn": events_topic},
    )
    sms.update_phone_number(PhoneNumberId=number["PhoneNumberId"], TwoWayEnabled=True, TwoWayChannelArn=inbound_topic)
    channels = adapters(aws, origination_identities={"FR": number["PhoneNumberId"]}, sms_configuration_set=config)
    customer = f"+3361{uuid.uuid4().int % 10**7:07d}"

    text = outbound("sms", customer, {"body": "Votre colis arrive demain ✔"})
    sent = channels["sms"].send(text)
    call = outbound("voice", customer, {"text": "Votre code est 1 2 3 4", "language": "fr-FR"})
    called = channels["voice"].send(call)

    assert (sent.detail["encoding"], sent.detail["segments"]) == ("UCS-2", "1")
    assert called.detail["voice"] == "LEA"
    kinds = [(f.channel, f.kind, f.message_id, f.provider_message_id) for f in aws.feedback(events)]
    assert ("sms", "delivered", text.message_id, sent.provider_message_id) in kinds
    assert ("voice", "delivered", call.message_id, called.provider_message_id) in kinds
    assert {k[2] for k in kinds} == {text.message_id, call.message_id}

    LocalMessaging(aws.endpoint).reply_sms(sender=customer, to=number["PhoneNumber"], body="STOP")
    [stop] = aws.feedback(inbound)
    assert (stop.kind, stop.channel, stop.address) == ("opted_out", "sms", customer)
    with pytest.raises(ChannelError) as raised:
        channels["sms"].send(replace(text, message_id=text.message_id + "B"))
    assert raised.value.permanent
    assert raised.value.code == "DESTINATION_PHONE_NUMBER_OPTED_OUT"


# -- push -----------------------------------------------------------------------------------------------------
def test_a_registered_device_gets_the_push_and_a_dead_token_is_permanent(aws: Clients) -> None:
    topic, queue = aws.queue()
    application = aws("sns").create_platform_application(
        Name=f"ecrm-android-{uuid.uuid4().hex[:8]}",
        Platform="GCM",
        Attributes={"PlatformCredential": "key", "EventDeliveryFailure": topic, "EventEndpointUpdated": topic},
    )["PlatformApplicationArn"]
    settings = ChannelSettings(
        email_from="n@example.com", configuration_set=None, push_applications={"fcm": application}
    )
    registrar = device_registrar(settings, session=aws)
    token = f"token-{uuid.uuid4().hex}"
    endpoint_arn = registrar.register("fcm", token, customer_id="cus_1")
    push = adapters(aws)["push"]

    message = outbound("push", endpoint_arn, {"title": "Soldes", "body": "-50% aujourd'hui"})
    push.send(message)

    local = LocalMessaging(aws.endpoint)
    [device] = local.push(endpoint_arn)
    delivered = json.loads(device["messages"][0]["payload"])["fcmV1Message"]["message"]
    assert delivered["notification"] == {"title": "Soldes", "body": "-50% aujourd'hui"}
    assert delivered["data"]["message_id"] == message.message_id

    local.invalidate_push_token(endpoint_arn)
    accepted = push.send(replace(message, message_id=message.message_id + "B"))
    feedback = aws.feedback(queue)
    assert [(f.kind, f.permanent, f.address) for f in feedback] == [
        ("failed", True, endpoint_arn),
        ("endpoint_disabled", True, endpoint_arn),
    ]
    assert feedback[0].provider_message_id == accepted.provider_message_id
    with pytest.raises(ChannelError) as raised:
        push.send(replace(message, message_id=message.message_id + "C"))
    assert (raised.value.permanent, raised.value.code) == (True, "endpoint_disabled")

    # The app registering its token again (reinstalled, token refreshed) revives the same endpoint.
    assert registrar.register("fcm", token, customer_id="cus_1") == endpoint_arn
    assert local.push(endpoint_arn)[0]["enabled"] is True


# -- WhatsApp -------------------------------------------------------------------------------------------------
def test_a_whatsapp_template_is_sent_and_its_statuses_come_back(aws: Clients) -> None:
    topic, queue = aws.queue()
    template = {
        "name": "order_shipped",
        "language": "fr",
        "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Votre commande {{1}} est partie"}],
    }
    linked = LocalMessaging(aws.endpoint).link_whatsapp_account(
        waba_name="Boutique", phone_numbers=["+33170009999"], event_destination_arn=topic, templates=[template]
    )
    whatsapp = adapters(aws, whatsapp_phone_number_id=linked["phoneNumbers"][0]["phoneNumberId"])["whatsapp"]
    customer = f"+3364{uuid.uuid4().int % 10**7:07d}"

    message = outbound(
        "whatsapp", customer, {"template_name": "order_shipped", "language": "fr", "parameters": ["A-123"]}
    )
    result = whatsapp.send(message)

    [sent] = LocalMessaging(aws.endpoint).whatsapp(customer)
    assert sent["message"]["biz_opaque_callback_data"] == message.message_id
    statuses = [(f.kind, f.address, f.provider_message_id) for f in aws.feedback(queue)]
    assert statuses == [
        ("sent", customer, result.provider_message_id),
        ("delivered", customer, result.provider_message_id),
    ]

    with pytest.raises(ChannelError) as raised:
        whatsapp.send(replace(message, content={"template_name": "unknown", "language": "fr"}))
    assert raised.value.permanent
