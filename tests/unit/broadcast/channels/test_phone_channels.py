"""SMS (End User Messaging and SNS) and voice adapters: requests, origination per country, segments, errors."""

from __future__ import annotations

from typing import Any

import pytest
from ecrm.broadcast.channels.base import ChannelError
from ecrm.broadcast.channels.sms import SmsAdapter, segments
from ecrm.broadcast.channels.voice import VoiceAdapter, voice_for

from tests.unit.broadcast.channels.fakes import MESSAGE_ID, FakeClient, message, provider_error

IDENTITIES = {"FR": "phone-number-id-fr", "US": "pool-us", "*": "phone-number-id-any"}


def sms(client: FakeClient, **extra: Any) -> SmsAdapter:
    return SmsAdapter(lambda: client, origination_identities=IDENTITIES, configuration_set="ecrm-sms", **extra)


def test_a_text_goes_from_the_countrys_identity_with_our_message_id_in_context() -> None:
    client = FakeClient(send_text_message={"MessageId": "eum-1"})
    result = sms(client).send(message("sms", "+33612345678", {"body": "Votre code: 123456"}))

    assert result.provider_message_id == "eum-1"
    request = client.only("send_text_message")
    assert request == {
        "DestinationPhoneNumber": "+33612345678",
        "MessageBody": "Votre code: 123456",
        "MessageType": "TRANSACTIONAL",
        "Context": {"message_id": MESSAGE_ID, "campaign_id": "cmp_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"},
        "OriginationIdentity": "phone-number-id-fr",
        "ConfigurationSetName": "ecrm-sms",
    }
    assert result.detail["country"] == "FR"
    assert result.detail["encoding"] == "GSM-7"
    assert result.detail["segments"] == "1"


def test_marketing_is_promotional_and_an_unlisted_country_takes_the_default_identity() -> None:
    client = FakeClient(send_text_message={"MessageId": "eum-2"})
    sms(client).send(message("sms", "+4915112345678", {"body": "Sale"}, purpose="marketing"))
    request = client.only("send_text_message")
    assert request["MessageType"] == "PROMOTIONAL"
    assert request["OriginationIdentity"] == "phone-number-id-any"


def test_the_messages_own_country_wins_over_the_numbers() -> None:
    client = FakeClient(send_text_message={"MessageId": "x"})
    sms(client).send(message("sms", "+33612345678", {"body": "hi"}, country="us"))
    assert client.only("send_text_message")["OriginationIdentity"] == "pool-us"


def test_context_holds_at_most_five_entries_message_id_first() -> None:
    client = FakeClient(send_text_message={"MessageId": "x"})
    tags = {f"t{i}": str(i) for i in range(8)} | {"message_id": MESSAGE_ID}
    sms(client).send(message("sms", "+33612345678", {"body": "hi"}, tags=tags))
    context = client.only("send_text_message")["Context"]
    assert len(context) == 5
    assert next(iter(context)) == "message_id"


def test_sns_publishes_to_the_number_with_sms_attributes() -> None:
    client = FakeClient(publish={"MessageId": "sns-1"})
    result = sms(client, provider="sns").send(message("sms", "+33612345678", {"body": "Hello"}, purpose="marketing"))
    request = client.only("publish")
    assert request["PhoneNumber"] == "+33612345678"
    assert request["Message"] == "Hello"
    assert request["MessageAttributes"]["AWS.SNS.SMS.SMSType"]["StringValue"] == "Promotional"
    assert request["MessageAttributes"]["AWS.SNS.SMS.SenderID"]["StringValue"] == "phone-number-id-fr"
    assert result.provider_message_id == "sns-1"


@pytest.mark.parametrize("address", ["0612345678", "+0612345678", "33612345678", "+33 6 12 34 56 78", "+1"])
def test_a_number_not_in_e164_is_permanent_without_a_call(address: str) -> None:
    client = FakeClient()
    with pytest.raises(ChannelError) as raised:
        sms(client).send(message("sms", address, {"body": "hi"}))
    assert raised.value.permanent
    assert raised.value.code == "invalid_address"
    assert client.calls == []


@pytest.mark.parametrize(
    ("body", "encoding", "parts"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # an extension character counts twice
        ("€" * 81, "GSM-7", 2),
        ("é" * 160, "GSM-7", 1),  # é is in the GSM-7 alphabet
        ("ç" * 70, "UCS-2", 1),  # ç (lower case) is not
        ("ç" * 71, "UCS-2", 2),
        ("😀" * 35, "UCS-2", 1),  # outside the BMP: two UTF-16 units each
        ("😀" * 36, "UCS-2", 2),
    ],
)
def test_segments_count_as_carriers_bill(body: str, encoding: str, parts: int) -> None:
    assert segments(body) == (encoding, parts)


@pytest.mark.parametrize(
    ("code", "members", "permanent", "throttled", "expected_code"),
    [
        (
            "ConflictException",
            {"Reason": "DESTINATION_PHONE_NUMBER_OPTED_OUT"},
            True,
            False,
            "DESTINATION_PHONE_NUMBER_OPTED_OUT",
        ),
        ("ThrottlingException", {}, False, True, "ThrottlingException"),
        ("ServiceQuotaExceededException", {"Reason": "DAILY_DESTINATION_CALL_LIMIT"}, False, True, None),
        ("ServiceQuotaExceededException", {"Reason": "MONTHLY_SPEND_LIMIT_REACHED_FOR_TEXT"}, False, False, None),
        ("ValidationException", {"Reason": "INVALID_PARAMETER"}, True, False, "INVALID_PARAMETER"),
        ("ResourceNotFoundException", {}, False, False, "ResourceNotFoundException"),
        ("InternalServerException", {}, False, False, "InternalServerException"),
    ],
)
def test_end_user_messaging_errors_are_classified(
    code: str, members: dict[str, str], permanent: bool, throttled: bool, expected_code: str | None
) -> None:
    client = FakeClient()
    client.errors["send_text_message"] = provider_error(code, **members)
    with pytest.raises(ChannelError) as raised:
        sms(client).send(message("sms", "+33612345678", {"body": "hi"}))
    assert (raised.value.permanent, raised.value.throttled) == (permanent, throttled)
    assert raised.value.code == (expected_code or members.get("Reason"))


def test_a_call_reads_the_text_in_the_languages_voice_from_the_voice_number() -> None:
    client = FakeClient(send_voice_message={"MessageId": "call-1"})
    adapter = VoiceAdapter(lambda: client, origination="phone-number-id-voice", configuration_set="ecrm-sms")
    result = adapter.send(message("voice", "+33612345678", {"text": "Votre code est 1 2 3", "language": "fr-FR"}))
    assert result.provider_message_id == "call-1"
    assert client.only("send_voice_message") == {
        "DestinationPhoneNumber": "+33612345678",
        "OriginationIdentity": "phone-number-id-voice",
        "MessageBody": "Votre code est 1 2 3",
        "MessageBodyTextType": "TEXT",
        "VoiceId": "LEA",
        "Context": {"message_id": MESSAGE_ID, "campaign_id": "cmp_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"},
        "ConfigurationSetName": "ecrm-sms",
    }


def test_a_call_without_a_voice_number_uses_the_countrys_identity_or_is_not_configured() -> None:
    client = FakeClient(send_voice_message={"MessageId": "c"})
    VoiceAdapter(lambda: client, origination_identities=IDENTITIES).send(
        message("voice", "+33612345678", {"text": "<speak>Bonjour</speak>", "ssml": True})
    )
    request = client.only("send_voice_message")
    assert request["OriginationIdentity"] == "phone-number-id-fr"
    assert request["MessageBodyTextType"] == "SSML"
    with pytest.raises(ChannelError) as raised:
        VoiceAdapter(lambda: client).send(message("voice", "+33612345678", {"text": "x"}))
    assert raised.value.code == "not_configured"
    assert not raised.value.permanent


def test_voice_errors_share_the_sms_classes() -> None:
    client = FakeClient()
    client.errors["send_voice_message"] = provider_error(
        "ConflictException", Reason="DESTINATION_PHONE_NUMBER_OPTED_OUT"
    )
    with pytest.raises(ChannelError) as raised:
        VoiceAdapter(lambda: client, origination="n").send(message("voice", "+33612345678", {"text": "x"}))
    assert raised.value.permanent


def test_voices_by_language() -> None:
    assert [voice_for(x) for x in ("en-GB", "pt_BR", "de-AT", "xx", None)] == [
        "AMY",
        "CAMILA",
        "VICKI",
        "JOANNA",
        "JOANNA",
    ]
