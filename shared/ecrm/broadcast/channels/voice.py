"""Voice calls through AWS End User Messaging (`pinpoint-sms-voice-v2` SendVoiceMessage): text-to-speech.

The call reads `content.text` (plain text, or SSML when `content.ssml` is true) in the voice of the
message's language (`content.voice` overrides it). A call needs an origination identity with the
VOICE capability: the configured voice number, else the SMS identity of the country. Our message id
travels in `Context`, as for texts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ecrm.broadcast.channels.base import ChannelError, OutboundMessage, SendResult, content_text, require, require_e164
from ecrm.broadcast.channels.sms import classify, context_of, country_of, origination_for

# Amazon Polly voices End User Messaging offers (the service model's VoiceId), by language tag.
VOICES = {
    "en": "JOANNA",
    "en-us": "JOANNA",
    "en-gb": "AMY",
    "en-au": "NICOLE",
    "en-in": "RAVEENA",
    "fr": "LEA",
    "fr-ca": "CHANTAL",
    "de": "VICKI",
    "es": "LUCIA",
    "es-us": "PENELOPE",
    "es-mx": "MIA",
    "it": "BIANCA",
    "pt": "INES",
    "pt-br": "CAMILA",
    "nl": "LOTTE",
    "da": "NAJA",
    "nb": "LIV",
    "sv": "ASTRID",
    "pl": "EWA",
    "ro": "CARMEN",
    "ru": "TATYANA",
    "tr": "FILIZ",
    "ja": "MIZUKI",
    "ko": "SEOYEON",
    "zh": "ZHIYU",
    "ar": "ZEINA",
    "cy": "GWYNETH",
    "is": "DORA",
}
DEFAULT_VOICE = "JOANNA"


def voice_for(language: str | None) -> str:
    if not language:
        return DEFAULT_VOICE
    tag = language.replace("_", "-").lower()
    return VOICES.get(tag) or VOICES.get(tag.split("-", 1)[0]) or DEFAULT_VOICE


class VoiceAdapter:
    channel = "voice"

    def __init__(
        self,
        client: Callable[[], Any],
        *,
        origination: str | None = None,
        origination_identities: Mapping[str, str] | None = None,
        configuration_set: str | None = None,
    ) -> None:
        self._client = client
        self.origination = origination
        self.origination_identities = dict(origination_identities or {})
        self.configuration_set = configuration_set

    def send(self, message: OutboundMessage) -> SendResult:
        destination = require_e164(message)
        text = content_text(message, "text") or ""
        require(len(text) <= 6000, "a voice message is at most 6000 characters", code="too_long")
        identity = self.origination or origination_for(self.origination_identities, country_of(message))
        if not identity:
            # Our configuration, not the recipient's: retried, then dead-lettered until a voice number is set.
            raise ChannelError("no voice origination identity is configured", permanent=False, code="not_configured")
        voice = str(message.content.get("voice") or voice_for(content_text(message, "language", required=False)))
        request: dict[str, Any] = {
            "DestinationPhoneNumber": destination,
            "OriginationIdentity": identity,
            "MessageBody": text,
            "MessageBodyTextType": "SSML" if message.content.get("ssml") else "TEXT",
            "VoiceId": voice,
            "Context": context_of(message),
        }
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        try:
            response = self._client().send_voice_message(**request)
        except Exception as exc:  # every provider failure is classified
            raise classify(exc, "voice") from exc
        return SendResult(
            provider_message_id=response.get("MessageId"), detail={"voice": voice, "origination": identity}
        )
