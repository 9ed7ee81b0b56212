"""The local cloud's messaging channels, through real boto3 clients against a moto server in process.

End User Messaging SMS and voice (`pinpoint-sms-voice-v2`) and Social (`socialmessaging`) are not in
moto: the local cloud serves them from moto's server, so a boto3 client with `endpoint_url` = the
server works as against AWS. SNS SMS and push are moto's, read back per number and endpoint, with
a token the provider refuses. Events and inbound messages reach SQS queues subscribed to SNS topics.
"""

from __future__ import annotations

import inspect
import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from infra.local import messaging
from infra.local.cloud import free_port
from infra.local.messaging.client import LocalMessaging, MessagingError
from tests.integration.queues import drain

REGION = "us-east-1"
CUSTOMER = "+33612345678"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    messaging.install()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def member(error: ClientError, name: str) -> Any:
    """A member of the error shape beyond Code and Message (Reason, Fields, ResourceType, ...)."""
    response: dict[str, Any] = dict(error.response)
    return response[name]


def client(endpoint: str, service: str, **config: Any) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1}, **config),
    )


@pytest.fixture
def sms(endpoint: str) -> Any:
    return client(endpoint, "pinpoint-sms-voice-v2")


@pytest.fixture
def local(endpoint: str) -> LocalMessaging:
    return LocalMessaging(endpoint)


def subscribed_queue(endpoint: str) -> tuple[str, str]:
    """A new SNS topic with an SQS queue subscribed to it: (topic ARN, queue URL)."""
    sns, sqs = client(endpoint, "sns"), client(endpoint, "sqs")
    name = f"t-{uuid.uuid4().hex[:10]}"
    topic = sns.create_topic(Name=name)["TopicArn"]
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return topic, url


def notifications(endpoint: str, queue_url: str) -> list[dict[str, Any]]:
    """The SNS envelopes delivered to the queue, with their Message parsed."""
    envelopes = [json.loads(m["Body"]) for m in drain(client(endpoint, "sqs"), queue_url)]
    return [{**e, "Message": json.loads(e["Message"])} for e in envelopes]


def phone_number(sms: Any, **extra: Any) -> dict[str, Any]:
    return dict(
        sms.request_phone_number(
            IsoCountryCode="FR",
            MessageType="TRANSACTIONAL",
            NumberCapabilities=["SMS", "VOICE"],
            NumberType="LONG_CODE",
            **extra,
        )
    )


# -- End User Messaging SMS: identities, sends, validation ---------------------------------------
def test_a_text_and_a_call_are_sent_from_a_requested_number_and_read_back_per_number(
    sms: Any, local: LocalMessaging
) -> None:
    # Given a phone number requested as the platform would
    number = phone_number(sms)
    assert number["Status"] == "ACTIVE"
    assert number["PhoneNumber"].startswith("+33")
    described = sms.describe_phone_numbers(PhoneNumberIds=[number["PhoneNumberId"]])["PhoneNumbers"]
    assert [n["PhoneNumber"] for n in described] == [number["PhoneNumber"]]
    assert described[0]["OptOutListName"] == "Default"
    destination = f"+3361{uuid.uuid4().int % 10**7:07d}"

    # When a text and a text-to-speech call are sent to one customer
    text_id = sms.send_text_message(
        DestinationPhoneNumber=destination,
        OriginationIdentity=number["PhoneNumberArn"],
        MessageBody="Votre code: 123456",
        MessageType="TRANSACTIONAL",
        Context={"campaign": "welcome"},
    )["MessageId"]
    call_id = sms.send_voice_message(
        DestinationPhoneNumber=destination,
        OriginationIdentity=number["PhoneNumberId"],
        MessageBody="<speak>Bonjour</speak>",
        MessageBodyTextType="SSML",
        VoiceId="CELINE",
    )["MessageId"]

    # Then both are kept for that number, with what a phone would receive
    sent = {m["messageId"]: m for m in local.sms(destination)}
    assert sent[text_id]["channel"] == "TEXT"
    assert sent[text_id]["messageBody"] == "Votre code: 123456"
    assert sent[text_id]["originationIdentity"] == number["PhoneNumber"]
    assert sent[text_id]["context"] == {"campaign": "welcome"}
    assert sent[call_id]["channel"] == "VOICE"
    assert (sent[call_id]["messageBody"], sent[call_id]["messageBodyTextType"], sent[call_id]["voiceId"]) == (
        "<speak>Bonjour</speak>",
        "SSML",
        "CELINE",
    )


def test_a_request_that_breaks_the_model_is_refused_with_the_services_validation_exception(endpoint: str) -> None:
    # Given a client that does not validate before sending (so the service has to)
    unchecked = client(endpoint, "pinpoint-sms-voice-v2", parameter_validation=False)

    # When a send lacks its destination and a voice id is not one of the model's
    with pytest.raises(ClientError) as raised:
        unchecked.send_voice_message(OriginationIdentity="phone-1", VoiceId="ROBOT")

    # Then the answer is AWS's ValidationException, naming each field
    error = raised.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Message"].startswith("2 validation errors detected: ")
    assert (
        "Value null at 'destinationPhoneNumber' failed to satisfy constraint: Member must not be null"
        in error["Message"]
    )
    assert member(raised.value, "Reason") == "FIELD_VALIDATION_FAILED"
    fields = {f["Name"]: f["Message"] for f in member(raised.value, "Fields")}
    assert fields["DestinationPhoneNumber"] == "Member must not be null"
    assert fields["VoiceId"].startswith("Member must satisfy enum value set: [AMY, ")


def test_a_value_outside_its_pattern_or_length_is_refused(endpoint: str) -> None:
    unchecked = client(endpoint, "pinpoint-sms-voice-v2", parameter_validation=False)
    with pytest.raises(ClientError) as raised:
        unchecked.send_text_message(DestinationPhoneNumber="call me", MessageBody="x" * 1601)
    fields = {f["Name"]: f["Message"] for f in member(raised.value, "Fields")}
    assert fields == {
        "DestinationPhoneNumber": "Member must satisfy regular expression pattern: \\+?[1-9][0-9]{1,18}",
        "MessageBody": "Member must have length less than or equal to 1600",
    }


def test_an_unknown_origination_identity_is_not_found(sms: Any) -> None:
    with pytest.raises(sms.exceptions.ResourceNotFoundException) as raised:
        sms.send_text_message(
            DestinationPhoneNumber=CUSTOMER, OriginationIdentity="phone-doesnotexist", MessageBody="hi"
        )
    assert member(raised.value, "ResourceType") == "phone-number"
    assert member(raised.value, "ResourceId") == "phone-doesnotexist"


def test_an_operation_the_local_cloud_does_not_emulate_says_so(sms: Any) -> None:
    with pytest.raises(ClientError) as raised:
        sms.describe_account_attributes()
    assert "does not emulate" in raised.value.response["Error"]["Message"]


# -- opt-out lists ------------------------------------------------------------------------------
def test_a_send_to_an_opted_out_number_fails_as_aws_says_and_succeeds_once_removed(sms: Any) -> None:
    # Given a number on its own opt-out list, with a customer opted out
    name = f"list-{uuid.uuid4().hex[:8]}"
    assert sms.create_opt_out_list(OptOutListName=name)["OptOutListName"] == name
    number = phone_number(sms, OptOutListName=name)
    put = sms.put_opted_out_number(OptOutListName=name, OptedOutNumber=CUSTOMER)
    assert put["EndUserOptedOut"] is False
    assert put["OptedOutNumber"] == CUSTOMER
    listed = sms.describe_opted_out_numbers(OptOutListName=name)["OptedOutNumbers"]
    assert [n["OptedOutNumber"] for n in listed] == [CUSTOMER]
    assert name in [o["OptOutListName"] for o in sms.describe_opt_out_lists()["OptOutLists"]]

    # When a text is sent to the customer
    with pytest.raises(sms.exceptions.ConflictException) as raised:
        sms.send_text_message(
            DestinationPhoneNumber=CUSTOMER, OriginationIdentity=number["PhoneNumberId"], MessageBody="Promo"
        )

    # Then it is refused as End User Messaging SMS refuses it
    assert member(raised.value, "Reason") == "DESTINATION_PHONE_NUMBER_OPTED_OUT"
    assert member(raised.value, "ResourceType") == "opted-out-number"
    assert member(raised.value, "ResourceId") == CUSTOMER

    # And once removed from the list, the same send goes through
    sms.delete_opted_out_number(OptOutListName=name, OptedOutNumber=CUSTOMER)
    assert sms.describe_opted_out_numbers(OptOutListName=name)["OptedOutNumbers"] == []
    sms.send_text_message(
        DestinationPhoneNumber=CUSTOMER, OriginationIdentity=number["PhoneNumberId"], MessageBody="Promo"
    )
    with pytest.raises(sms.exceptions.ResourceNotFoundException):
        sms.delete_opted_out_number(OptOutListName=name, OptedOutNumber=CUSTOMER)


def test_a_pool_sends_from_its_number_with_its_own_opt_out_list(sms: Any, local: LocalMessaging) -> None:
    number = phone_number(sms)
    pool = sms.create_pool(OriginationIdentity=number["PhoneNumberArn"], MessageType="TRANSACTIONAL")
    assert [p["PoolId"] for p in sms.describe_pools(PoolIds=[pool["PoolId"]])["Pools"]] == [pool["PoolId"]]
    name = f"pool-list-{uuid.uuid4().hex[:8]}"
    sms.create_opt_out_list(OptOutListName=name)
    sms.update_pool(PoolId=pool["PoolId"], OptOutListName=name)
    sms.put_opted_out_number(OptOutListName=name, OptedOutNumber="+33699999999")

    message_id = sms.send_text_message(
        DestinationPhoneNumber="+33688888888", OriginationIdentity=pool["PoolArn"], MessageBody="ok"
    )["MessageId"]
    assert [m["originationIdentity"] for m in local.sms("+33688888888") if m["messageId"] == message_id] == [
        number["PhoneNumber"]
    ]
    with pytest.raises(sms.exceptions.ConflictException):
        sms.send_text_message(
            DestinationPhoneNumber="+33699999999", OriginationIdentity=pool["PoolId"], MessageBody="no"
        )


# -- configuration sets and delivery events -----------------------------------------------------
def test_delivery_events_of_a_text_and_a_call_reach_the_sns_destination_in_the_documented_shape(
    endpoint: str, sms: Any, local: LocalMessaging
) -> None:
    # Given a configuration set whose SNS event destination takes every text event and the final call event
    topic, queue = subscribed_queue(endpoint)
    config = f"cs-{uuid.uuid4().hex[:8]}"
    sms.create_configuration_set(ConfigurationSetName=config)
    created = sms.create_event_destination(
        ConfigurationSetName=config,
        EventDestinationName="to-sns",
        MatchingEventTypes=["TEXT_ALL", "VOICE_COMPLETED"],
        SnsDestination={"TopicArn": topic},
    )
    assert created["EventDestination"]["Enabled"] is True
    assert sms.describe_configuration_sets(ConfigurationSetNames=[config])["ConfigurationSets"][0]["EventDestinations"][
        0
    ]["SnsDestination"] == {"TopicArn": topic}
    number = phone_number(sms)

    # When a text and a call are sent through it
    text_id = sms.send_text_message(
        DestinationPhoneNumber=CUSTOMER,
        OriginationIdentity=number["PhoneNumberId"],
        MessageBody="Bonjour",
        MessageType="PROMOTIONAL",
        ConfigurationSetName=config,
        Context={"account": "bar"},
    )["MessageId"]
    call_id = sms.send_voice_message(
        DestinationPhoneNumber=CUSTOMER,
        OriginationIdentity=number["PhoneNumberId"],
        MessageBody="Bonjour",
        ConfigurationSetName=config,
    )["MessageId"]

    # Then the queue holds the text's pending, successful and delivered events and the call's completion
    events = [n["Message"] for n in notifications(endpoint, queue)]
    assert [(e["messageId"], e["eventType"], e["isFinal"]) for e in events] == [
        (text_id, "TEXT_PENDING", False),
        (text_id, "TEXT_SUCCESSFUL", False),
        (text_id, "TEXT_DELIVERED", True),
        (call_id, "VOICE_COMPLETED", True),
    ]
    delivered = events[2]
    documented = {  # the fields of the AWS documentation's SMS example
        "eventType", "eventVersion", "eventTimestamp", "isFinal", "originationPhoneNumber", "destinationPhoneNumber",
        "isoCountryCode", "messageId", "messageRequestTimestamp", "messageEncoding", "messageType", "messageStatus",
        "messageStatusDescription", "context", "totalMessageParts", "totalMessagePrice", "totalCarrierFee",
    }  # fmt: skip
    assert documented <= set(delivered)
    assert (delivered["originationPhoneNumber"], delivered["destinationPhoneNumber"]) == (
        number["PhoneNumber"],
        CUSTOMER,
    )
    assert (delivered["isoCountryCode"], delivered["messageType"], delivered["messageStatus"]) == (
        "FR",
        "PROMOTIONAL",
        "DELIVERED",
    )
    assert delivered["context"] == {"account": "bar"}
    assert delivered["eventVersion"] == "1.0"

    # And a simulated carrier block ends the next text with TEXT_BLOCKED
    local.sms_outcome(CUSTOMER, "TEXT_BLOCKED")
    try:
        sms.send_text_message(
            DestinationPhoneNumber=CUSTOMER,
            OriginationIdentity=number["PhoneNumberId"],
            MessageBody="x",
            ConfigurationSetName=config,
        )
    finally:
        local.sms_outcome(CUSTOMER, None)
    assert [(e["eventType"], e["isFinal"]) for e in (n["Message"] for n in notifications(endpoint, queue))] == [
        ("TEXT_PENDING", False),
        ("TEXT_BLOCKED", True),
    ]


def test_events_go_to_a_firehose_destination(endpoint: str, sms: Any) -> None:
    s3, firehose = client(endpoint, "s3"), client(endpoint, "firehose")
    bucket = f"b-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    stream = firehose.create_delivery_stream(
        DeliveryStreamName=bucket,
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/f",
            "BucketARN": f"arn:aws:s3:::{bucket}",
        },
    )["DeliveryStreamARN"]
    config = f"cs-{uuid.uuid4().hex[:8]}"
    sms.create_configuration_set(ConfigurationSetName=config)
    sms.create_event_destination(
        ConfigurationSetName=config,
        EventDestinationName="to-firehose",
        MatchingEventTypes=["TEXT_DELIVERED"],
        KinesisFirehoseDestination={"IamRoleArn": "arn:aws:iam::123456789012:role/f", "DeliveryStreamArn": stream},
    )
    number = phone_number(sms)
    message_id = sms.send_text_message(
        DestinationPhoneNumber=CUSTOMER,
        OriginationIdentity=number["PhoneNumberId"],
        MessageBody="x",
        ConfigurationSetName=config,
    )["MessageId"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    records = [
        json.loads(line) for key in keys for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()
    ]
    assert [(r["messageId"], r["eventType"]) for r in records] == [(message_id, "TEXT_DELIVERED")]


# -- inbound SMS ---------------------------------------------------------------------------------
def test_a_stop_reply_reaches_the_two_way_topic_and_opts_the_customer_out(
    endpoint: str, sms: Any, local: LocalMessaging
) -> None:
    # Given a two-way number whose channel is an SNS topic with a queue subscribed, and a text sent from it
    topic, queue = subscribed_queue(endpoint)
    number = phone_number(sms)
    updated = sms.update_phone_number(PhoneNumberId=number["PhoneNumberId"], TwoWayEnabled=True, TwoWayChannelArn=topic)
    assert updated["TwoWayChannelArn"] == topic
    customer = f"+3362{uuid.uuid4().int % 10**7:07d}"
    sent = sms.send_text_message(
        DestinationPhoneNumber=customer, OriginationIdentity=number["PhoneNumberId"], MessageBody="Promo"
    )

    # When the customer replies STOP
    reply = local.reply_sms(sender=customer, to=number["PhoneNumber"], body="stop")

    # Then the topic receives the documented inbound JSON
    (notification,) = notifications(endpoint, queue)
    assert notification["Type"] == "Notification"
    assert notification["TopicArn"] == topic
    inbound = notification["Message"]
    assert inbound == {
        "originationNumber": customer,
        "destinationNumber": number["PhoneNumber"],
        "messageKeyword": "STOP",
        "messageBody": "stop",
        "inboundMessageId": reply["inboundMessageId"],
        "previousPublishedMessageId": sent["MessageId"],
    }
    # And the customer is on the number's opt-out list, as opted out by themselves
    (opted,) = sms.describe_opted_out_numbers(OptOutListName="Default", OptedOutNumbers=[customer])["OptedOutNumbers"]
    assert opted["EndUserOptedOut"] is True
    # And AWS's opt-out confirmation was sent back, and later sends are refused
    assert [m["messageBody"] for m in local.sms(customer)][-1].startswith("You have been unsubscribed")
    with pytest.raises(sms.exceptions.ConflictException):
        sms.send_text_message(
            DestinationPhoneNumber=customer, OriginationIdentity=number["PhoneNumberId"], MessageBody="Promo"
        )


@pytest.mark.parametrize("word", ["UNSUBSCRIBE", "Arret", "OPT-OUT"])
def test_every_required_opt_out_keyword_opts_out(endpoint: str, sms: Any, local: LocalMessaging, word: str) -> None:
    topic, _ = subscribed_queue(endpoint)
    number = phone_number(sms)
    sms.update_phone_number(PhoneNumberId=number["PhoneNumberId"], TwoWayEnabled=True, TwoWayChannelArn=topic)
    customer = f"+3363{uuid.uuid4().int % 10**7:07d}"
    assert local.reply_sms(sender=customer, to=number["PhoneNumber"], body=f"{word} please")["optedOut"] is True
    assert sms.describe_opted_out_numbers(OptOutListName="Default", OptedOutNumbers=[customer])["OptedOutNumbers"]


def test_help_is_answered_and_self_managed_opt_outs_leave_stop_to_the_platform(
    endpoint: str, sms: Any, local: LocalMessaging
) -> None:
    # Given a two-way number that manages its own opt-outs
    topic, queue = subscribed_queue(endpoint)
    number = phone_number(sms)
    sms.update_phone_number(
        PhoneNumberId=number["PhoneNumberId"],
        TwoWayEnabled=True,
        TwoWayChannelArn=topic,
        SelfManagedOptOutsEnabled=True,
    )
    keywords = {
        k["Keyword"]: k["KeywordAction"]
        for k in sms.describe_keywords(OriginationIdentity=number["PhoneNumberId"])["Keywords"]
    }
    assert keywords == {"HELP": "AUTOMATIC_RESPONSE", "STOP": "OPT_OUT"}
    customer = f"+3364{uuid.uuid4().int % 10**7:07d}"

    # When the customer sends STOP, then HELP
    stop = local.reply_sms(sender=customer, to=number["PhoneNumber"], body="STOP")
    local.reply_sms(sender=customer, to=number["PhoneNumber"], body="HELP")

    # Then both reach the topic, STOP opts nobody out and nothing answers (the platform does)
    assert [n["Message"]["messageKeyword"] for n in notifications(endpoint, queue)] == ["STOP", "HELP"]
    assert stop["optedOut"] is False
    assert sms.describe_opted_out_numbers(OptOutListName="Default", OptedOutNumbers=[customer])["OptedOutNumbers"] == []
    assert local.sms(customer) == []

    # And with AWS managing opt-outs again, HELP is answered with the keyword's message
    sms.update_phone_number(PhoneNumberId=number["PhoneNumberId"], SelfManagedOptOutsEnabled=False)
    sms.put_keyword(OriginationIdentity=number["PhoneNumberId"], Keyword="help", KeywordMessage="Call 01 23 45 67 89")
    local.reply_sms(sender=customer, to=number["PhoneNumber"], body="help")
    assert [m["messageBody"] for m in local.sms(customer)] == ["Call 01 23 45 67 89"]


def test_a_reply_to_a_number_without_a_two_way_channel_is_refused(sms: Any, local: LocalMessaging) -> None:
    number = phone_number(sms)
    with pytest.raises(MessagingError, match="no two-way channel"):
        local.reply_sms(sender=CUSTOMER, to=number["PhoneNumber"], body="STOP")


# -- SNS SMS and push ------------------------------------------------------------------------------
def test_sns_sms_are_read_per_number(endpoint: str, local: LocalMessaging) -> None:
    number = f"+3365{uuid.uuid4().int % 10**7:07d}"
    message_id = client(endpoint, "sns").publish(PhoneNumber=number, Message="Votre colis arrive")["MessageId"]
    assert [(m["service"], m["messageId"], m["messageBody"]) for m in local.sms(number)] == [
        ("sns", message_id, "Votre colis arrive")
    ]


def test_pushes_are_read_per_endpoint_and_an_invalid_token_disables_the_endpoint_as_sns_does(
    endpoint: str, local: LocalMessaging
) -> None:
    # Given an FCM application whose delivery-failure and endpoint-updated events go to a topic, and a device
    sns = client(endpoint, "sns")
    events_topic, queue = subscribed_queue(endpoint)
    app = sns.create_platform_application(
        Name=f"app-{uuid.uuid4().hex[:8]}",
        Platform="GCM",
        Attributes={
            "PlatformCredential": "key",
            "EventDeliveryFailure": events_topic,
            "EventEndpointUpdated": events_topic,
        },
    )["PlatformApplicationArn"]
    device = sns.create_platform_endpoint(PlatformApplicationArn=app, Token=f"token-{uuid.uuid4().hex}")["EndpointArn"]

    # When a push is published (structured per platform), it is read back per endpoint with the FCM payload
    fcm = json.dumps({"notification": {"title": "Soldes"}})
    first = sns.publish(
        TargetArn=device, MessageStructure="json", Message=json.dumps({"default": "Soldes", "GCM": fcm})
    )
    (listed,) = local.push(device)
    assert [(m["messageId"], m["payload"]) for m in listed["messages"]] == [(first["MessageId"], fcm)]
    assert listed["enabled"] is True
    assert listed["platform"] == "GCM"

    # When the provider starts refusing the token
    local.invalidate_push_token(device)
    accepted = sns.publish(TargetArn=device, Message="Soldes")

    # Then that publish is accepted but not delivered, the endpoint is disabled, and the application's events say why
    assert accepted["MessageId"]
    (listed,) = local.push(device)
    assert len(listed["messages"]) == 1
    assert listed["failed"][0]["messageId"] == accepted["MessageId"]
    assert sns.get_endpoint_attributes(EndpointArn=device)["Attributes"]["Enabled"] == "false"
    failure, updated = notifications(endpoint, queue)
    assert failure["Message"]["EventType"] == "DeliveryFailure"
    assert failure["Message"]["FailureType"] == "InvalidPlatformToken"
    assert (failure["Message"]["EndpointArn"], failure["Message"]["MessageId"]) == (device, accepted["MessageId"])
    assert failure["Subject"].startswith("DeliveryFailure event for app ")
    assert updated["Message"]["EventType"] == "EndpointUpdated"

    # And the next publish is refused as SNS refuses a disabled endpoint
    with pytest.raises(sns.exceptions.EndpointDisabledException):
        sns.publish(TargetArn=device, Message="Soldes")


def test_an_endpoint_disabled_by_its_owner_refuses_publishes(endpoint: str) -> None:
    sns = client(endpoint, "sns")
    app = sns.create_platform_application(Name=f"ios-{uuid.uuid4().hex[:8]}", Platform="APNS", Attributes={})[
        "PlatformApplicationArn"
    ]
    device = sns.create_platform_endpoint(
        PlatformApplicationArn=app, Token=uuid.uuid4().hex, Attributes={"Enabled": "false"}
    )["EndpointArn"]
    with pytest.raises(ClientError) as raised:
        sns.publish(TargetArn=device, Message="hi")
    assert raised.value.response["Error"]["Code"] == "EndpointDisabled"


# -- WhatsApp ------------------------------------------------------------------------------------
TEMPLATE = {
    "name": "order_shipped",
    "language": "fr",
    "category": "UTILITY",
    "components": [{"type": "BODY", "text": "Votre commande {{1}} est partie"}],
}


@pytest.fixture
def whatsapp(endpoint: str) -> Any:
    return client(endpoint, "socialmessaging")


def test_a_whatsapp_template_message_is_sent_kept_and_its_statuses_published(
    endpoint: str, whatsapp: Any, local: LocalMessaging
) -> None:
    # Given a linked WhatsApp Business Account with an approved template and an SNS event destination
    topic, queue = subscribed_queue(endpoint)
    linked = local.link_whatsapp_account(waba_name="Boutique", phone_numbers=["+33170000000"], templates=[TEMPLATE])
    waba_id = linked["id"]
    whatsapp.put_whatsapp_business_account_event_destinations(
        id=waba_id, eventDestinations=[{"eventDestinationArn": topic}]
    )
    accounts = whatsapp.list_linked_whatsapp_business_accounts()["linkedAccounts"]
    assert waba_id in [a["id"] for a in accounts]
    (phone,) = whatsapp.get_linked_whatsapp_business_account(id=waba_id)["account"]["phoneNumbers"]
    assert (
        whatsapp.get_linked_whatsapp_business_account_phone_number(id=phone["phoneNumberId"])["phoneNumber"][
            "phoneNumber"
        ]
        == "+33170000000"
    )
    (template,) = whatsapp.list_whatsapp_message_templates(id=waba_id)["templates"]
    assert (template["templateName"], template["templateStatus"]) == ("order_shipped", "APPROVED")
    customer = f"+3366{uuid.uuid4().int % 10**7:07d}"

    # When the platform sends the template through the Cloud API JSON
    message = {
        "messaging_product": "whatsapp",
        "to": customer,
        "type": "template",
        "template": {
            "name": "order_shipped",
            "language": {"code": "fr"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "A-42"}]}],
        },
    }
    message_id = whatsapp.send_whatsapp_message(
        originationPhoneNumberId=phone["phoneNumberId"], message=json.dumps(message).encode(), metaApiVersion="v20.0"
    )["messageId"]

    # Then the message is kept whole for the customer's number
    (kept,) = local.whatsapp(customer)
    assert (kept["messageId"], kept["message"]) == (message_id, message)

    # And sent then delivered arrive on the event destination in AWS's envelope with Meta's entry
    events = [n["Message"] for n in notifications(endpoint, queue)]
    assert [e["messageId"] for e in events] == [message_id, message_id]
    assert events[0]["context"]["MetaWabaIds"] == [{"wabaId": linked["wabaId"], "arn": linked["arn"]}]
    assert events[0]["context"]["MetaPhoneNumberIds"][0]["arn"] == phone["arn"]
    entries = [json.loads(e["whatsAppWebhookEntry"]) for e in events]
    statuses = [entry["changes"][0]["value"]["statuses"][0] for entry in entries]
    assert [s["status"] for s in statuses] == ["sent", "delivered"]
    assert statuses[0]["recipient_id"] == customer.lstrip("+")
    assert statuses[0]["id"] == kept["wamid"]
    assert entries[0]["changes"][0]["value"]["metadata"]["phone_number_id"] == phone["metaPhoneNumberId"]

    # And a read status and an inbound reply can be simulated
    local.whatsapp_status(message_id, "read")
    local.reply_whatsapp(sender=customer, to="+33170000000", body="Merci !")
    read, inbound = (
        json.loads(n["Message"]["whatsAppWebhookEntry"])["changes"][0]["value"] for n in notifications(endpoint, queue)
    )
    assert read["statuses"][0]["status"] == "read"
    assert inbound["messages"][0]["text"] == {"body": "Merci !"}
    assert inbound["messages"][0]["from"] == customer.lstrip("+")


def test_a_whatsapp_message_that_is_not_cloud_api_json_or_names_an_unknown_template_is_refused(
    whatsapp: Any, local: LocalMessaging
) -> None:
    linked = local.link_whatsapp_account(waba_name="Boutique", phone_numbers=["+33170000001"])
    phone_id = linked["phoneNumbers"][0]["phoneNumberId"]

    def send(message: bytes) -> str:
        with pytest.raises(whatsapp.exceptions.ValidationException) as raised:
            whatsapp.send_whatsapp_message(originationPhoneNumberId=phone_id, message=message, metaApiVersion="v20.0")
        return str(raised.value.response["Error"]["Message"])

    assert "not valid JSON" in send(b"hello")
    assert send(json.dumps({"to": CUSTOMER}).encode()) == "message is missing messaging_product, type"
    unknown = {
        "messaging_product": "whatsapp",
        "to": CUSTOMER,
        "type": "template",
        "template": {"name": "nope", "language": {"code": "fr"}},
    }
    assert "Template name does not exist" in send(json.dumps(unknown).encode())
    with pytest.raises(whatsapp.exceptions.ResourceNotFoundException):
        whatsapp.send_whatsapp_message(
            originationPhoneNumberId="phone-number-id-nope", message=b"{}", metaApiVersion="v20.0"
        )


def test_a_template_created_through_the_api_can_be_used(whatsapp: Any, local: LocalMessaging) -> None:
    linked = local.link_whatsapp_account(waba_name="Boutique", phone_numbers=["+33170000002"])
    created = whatsapp.create_whatsapp_message_template(
        id=linked["id"], templateDefinition=json.dumps({**TEMPLATE, "name": "promo"}).encode()
    )
    assert created["templateStatus"] == "APPROVED"
    assert created["category"] == "UTILITY"
    got = json.loads(
        whatsapp.get_whatsapp_message_template(id=linked["id"], metaTemplateId=created["metaTemplateId"])["template"]
    )
    assert got["name"] == "promo"
    assert got["components"] == TEMPLATE["components"]
    message = {
        "messaging_product": "whatsapp",
        "to": CUSTOMER,
        "type": "template",
        "template": {"name": "promo", "language": {"code": "fr"}},
    }
    whatsapp.send_whatsapp_message(
        originationPhoneNumberId=linked["phoneNumbers"][0]["arn"],
        message=json.dumps(message).encode(),
        metaApiVersion="v20.0",
    )


# -- the patches of moto internals, checked against the moto installed ---------------------------
def test_the_moto_internals_patched_are_still_there_with_the_same_signatures() -> None:
    from moto.sns.models import PlatformEndpoint, SNSBackend

    from infra.local.messaging import server, sns_push

    # Given the originals kept by install() (the fixture has installed them)
    assert server._moto_call is not None
    assert sns_push._moto_publish is not None
    # Then they take what the replacements take
    assert list(inspect.signature(server._moto_call).parameters) == ["self", "environ", "start_response"]
    assert list(inspect.signature(sns_push._moto_publish).parameters) == ["self", "message"]
    # And what the readers read is where moto keeps it
    backend = SNSBackend("123456789012", REGION)
    assert isinstance(backend.sms_messages, dict)
    assert isinstance(backend.platform_endpoints, dict)
    assert "messages" in inspect.getsource(PlatformEndpoint.__init__)


# -- ecrm local sms|push|whatsapp --------------------------------------------------------------------
def test_the_cli_lists_texts_pushes_and_whatsapp_and_delivers_a_reply(
    endpoint: str, sms: Any, local: LocalMessaging, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner
    from ecrm_ops import local_messaging
    from ecrm_ops.cli import main

    # Given the CLI pointed at this server (as the running cloud's state file would point it)
    monkeypatch.setattr(local_messaging, "_messaging", lambda: local)
    topic, queue = subscribed_queue(endpoint)
    number = phone_number(sms)
    sms.update_phone_number(PhoneNumberId=number["PhoneNumberId"], TwoWayEnabled=True, TwoWayChannelArn=topic)
    customer = f"+3367{uuid.uuid4().int % 10**7:07d}"
    sms.send_text_message(
        DestinationPhoneNumber=customer, OriginationIdentity=number["PhoneNumberId"], MessageBody="Soldes"
    )
    runner = CliRunner()

    # When the customer's texts are listed, then a STOP is delivered from their phone
    listed = runner.invoke(main, ["local", "sms", "--number", customer])
    replied = runner.invoke(main, ["local", "sms", "reply", "--from", customer, "--to", number["PhoneNumber"], "STOP"])

    # Then the listing shows the text, and the reply reached the two-way topic and opted the customer out
    assert listed.exit_code == 0, listed.output
    assert f"sms   {number['PhoneNumber']} -> {customer}" in listed.output
    assert "Soldes" in listed.output
    assert replied.exit_code == 0, replied.output
    assert f"{customer} is now on the opt-out list" in replied.output
    assert [n["Message"]["messageBody"] for n in notifications(endpoint, queue)] == ["STOP"]
    as_json = json.loads(runner.invoke(main, ["local", "sms", "--number", customer, "--json"]).output)
    assert as_json["inbound"][0]["optedOut"] is True

    # And a reply to a number that is not the account's is one line, exit 1
    wrong = runner.invoke(main, ["local", "sms", "reply", "--from", customer, "--to", "+10000000000", "HELP"])
    assert wrong.exit_code == 1
    assert "is not a phone number of this account" in wrong.output

    # And pushes and WhatsApp are listed
    assert runner.invoke(main, ["local", "push"]).exit_code == 0
    assert runner.invoke(main, ["local", "whatsapp", "--number", customer]).output.startswith("no WhatsApp message")
