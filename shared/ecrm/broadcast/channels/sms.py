"""SMS through AWS End User Messaging SMS (`pinpoint-sms-voice-v2` SendTextMessage) or SNS publish.

End User Messaging (the default) sends from the origination identity configured for the
destination's country (a phone number id or ARN, a pool, a sender id; `*` for any other country, or
none: the service picks one of the account's) and carries our message id in `Context`, which the
service copies into every delivery event. SNS (`sms_provider="sns"`) publishes to the E.164 number
with the SMS type and origination attributes. Marketing texts are `PROMOTIONAL`, others
`TRANSACTIONAL` (carriers and the service treat them differently).

The detail reports the encoding and segment count the carrier bills: GSM-7 (160 characters, 153 per
part when split; the extension characters count twice) or UCS-2 for anything else (70, 67 per part).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ecrm.broadcast.channels.base import (
    ChannelError,
    OutboundMessage,
    SendResult,
    aws_error,
    content_text,
    provider_tags,
    require_e164,
    transient,
)

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("^{}\\[~]|€\f")
_CONTEXT_ENTRIES = 5  # ContextMap holds at most 5 entries


def segments(body: str) -> tuple[str, int]:
    """(encoding, parts) as carriers count them: GSM-7 when every character is in its alphabet, else UCS-2."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in body):
        units = sum(2 if c in GSM7_EXTENSION else 1 for c in body)
        return "GSM-7", 1 if units <= 160 else -(-units // 153)
    # UCS-2 counts UTF-16 code units: a character outside the BMP (an emoji) takes two.
    units = len(body.encode("utf-16-le")) // 2
    return "UCS-2", 1 if units <= 70 else -(-units // 67)


def country_of(message: OutboundMessage) -> str | None:
    """The destination's ISO country: the message's own, else read from the number."""
    if message.country:
        return message.country.upper()
    # Imported here: phonenumbers costs tens of milliseconds of import, and only phone channels need it.
    import phonenumbers

    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(message.address))
    except phonenumbers.NumberParseException:
        return None
    return region if region and region != "ZZ" else None


def origination_for(identities: Mapping[str, str], country: str | None) -> str | None:
    if country and country in identities:
        return identities[country]
    return identities.get("*")


def context_of(message: OutboundMessage) -> dict[str, str]:
    """The message's tags as End User Messaging `Context` (at most 5 entries, `message_id` first)."""
    return dict(list(provider_tags(message).items())[:_CONTEXT_ENTRIES])


def classify(exc: Exception, service: str) -> ChannelError:
    """A provider error of End User Messaging SMS and voice or SNS, classified (see the comments)."""
    found = aws_error(exc)
    if found is None:
        return transient(exc, service)
    code, text, response = found
    reason = str(response.get("Reason") or "")
    label = f"{service}: {text or code}" + (f" ({reason})" if reason else "")
    if code in {"ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException"}:
        return ChannelError(label, permanent=False, throttled=True, code=code)
    if code == "ConflictException" and reason in {
        "DESTINATION_PHONE_NUMBER_OPTED_OUT",  # the recipient texted STOP: never again from this identity
        "DESTINATION_PHONE_NUMBER_BLOCKED_BY_PROTECT_NUMBER_OVERRIDE",
        "DESTINATION_COUNTRY_BLOCKED_BY_PROTECT_CONFIGURATION",
    }:
        return ChannelError(label, permanent=True, code=reason)
    if code == "ServiceQuotaExceededException" and reason == "DAILY_DESTINATION_CALL_LIMIT":
        return ChannelError(label, permanent=False, throttled=True, code=reason)
    if code in {"ValidationException", "InvalidParameter", "InvalidParameterValue", "InvalidParameterException"}:
        # The request as built is refused (a number the service cannot parse, a body too long): the same again.
        return ChannelError(label, permanent=True, code=reason or code)
    # Spend limits, a missing identity or configuration set, access, 5xx: our account's state; retried, then
    # dead-lettered and redriven once fixed (failing the message would lose it for our own fault).
    return ChannelError(label, permanent=False, code=reason or code)


class SmsAdapter:
    channel = "sms"

    def __init__(
        self,
        client: Callable[[], Any],
        *,
        provider: str = "eum",
        origination_identities: Mapping[str, str] | None = None,
        configuration_set: str | None = None,
    ) -> None:
        if provider not in {"eum", "sns"}:
            raise ValueError(f"unknown SMS provider {provider!r}")
        self._client = client
        self.provider = provider
        self.origination_identities = dict(origination_identities or {})
        self.configuration_set = configuration_set

    def send(self, message: OutboundMessage) -> SendResult:
        require_e164(message)
        body = content_text(message, "body") or ""
        encoding, parts = segments(body)
        country = country_of(message)
        identity = origination_for(self.origination_identities, country)
        message_type = "PROMOTIONAL" if message.is_marketing else "TRANSACTIONAL"
        try:
            if self.provider == "eum":
                response = self._client().send_text_message(**self._eum_request(message, body, identity, message_type))
            else:
                response = self._client().publish(**self._sns_request(message, body, identity, message_type))
        except Exception as exc:  # every provider failure is classified
            raise classify(exc, "SMS") from exc
        detail = {"encoding": encoding, "segments": str(parts), "provider": self.provider, "country": country or ""}
        if identity:
            detail["origination"] = identity
        return SendResult(provider_message_id=response.get("MessageId"), detail=detail)

    def _eum_request(
        self, message: OutboundMessage, body: str, identity: str | None, message_type: str
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "DestinationPhoneNumber": message.address,
            "MessageBody": body,
            "MessageType": message_type,
            "Context": context_of(message),
        }
        if identity:
            request["OriginationIdentity"] = identity
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        return request

    @staticmethod
    def _sns_request(message: OutboundMessage, body: str, identity: str | None, message_type: str) -> dict[str, Any]:
        attributes = {
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": message_type.capitalize()},
        }
        if identity and identity.startswith("+"):
            attributes["AWS.MM.SMS.OriginationNumber"] = {"DataType": "String", "StringValue": identity}
        elif identity:
            attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": identity}
        return {"PhoneNumber": message.address, "Message": body, "MessageAttributes": attributes}
