"""WhatsApp through AWS End User Messaging Social (`socialmessaging` SendWhatsAppMessage).

Business-initiated WhatsApp messages must use a template Meta approved: the message is the WhatsApp
Cloud API request JSON, a `template` with its name, language and the body's text parameters in
order. `biz_opaque_callback_data` carries our message id: Meta returns it in the message's status
webhooks, which AWS relays to the account's event destination.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ecrm.broadcast.channels.base import (
    ChannelError,
    OutboundMessage,
    SendResult,
    aws_error,
    content_text,
    require,
    require_e164,
)

META_API_VERSION = "v20.0"


def whatsapp_message(message: OutboundMessage) -> dict[str, Any]:
    """The WhatsApp Cloud API request for `message` (a template message)."""
    destination = require_e164(message)
    name = content_text(message, "template_name") or ""
    language = content_text(message, "language") or ""
    parameters = message.content.get("parameters") or []
    require(
        isinstance(parameters, list) and all(isinstance(p, str) and p for p in parameters),
        "whatsapp parameters must be a list of non-empty texts",
        code="invalid_content",
    )
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    if parameters:
        template["components"] = [{"type": "body", "parameters": [{"type": "text", "text": p} for p in parameters]}]
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": destination,
        "type": "template",
        "template": template,
        "biz_opaque_callback_data": message.message_id,
    }


def classify(exc: Exception) -> ChannelError:
    found = aws_error(exc)
    if found is None:
        return ChannelError(f"WhatsApp: {type(exc).__name__}: {exc}", permanent=False)
    code, text, _ = found
    label = f"WhatsApp: {text or code}"
    if code in {"ThrottledRequestException", "ThrottlingException", "TooManyRequestsException"}:
        return ChannelError(label, permanent=False, throttled=True, code=code)
    if code in {"ValidationException", "InvalidParametersException"}:
        # A template that does not exist (or is not approved) in that language, a number WhatsApp refuses.
        return ChannelError(label, permanent=True, code=code)
    # The phone number id unknown, access, Meta unavailable (DependencyException), 5xx: retried.
    return ChannelError(label, permanent=False, code=code)


class WhatsAppAdapter:
    channel = "whatsapp"

    def __init__(self, client: Callable[[], Any], *, phone_number_id: str, meta_api_version: str = META_API_VERSION):
        self._client = client
        self.phone_number_id = phone_number_id
        self.meta_api_version = meta_api_version

    def send(self, message: OutboundMessage) -> SendResult:
        body = json.dumps(whatsapp_message(message), ensure_ascii=False).encode("utf-8")
        try:
            response = self._client().send_whatsapp_message(
                originationPhoneNumberId=self.phone_number_id, message=body, metaApiVersion=self.meta_api_version
            )
        except Exception as exc:  # every provider failure is classified
            raise classify(exc) from exc
        return SendResult(
            provider_message_id=response.get("messageId"),
            detail={"template": str(message.content.get("template_name"))},
        )
