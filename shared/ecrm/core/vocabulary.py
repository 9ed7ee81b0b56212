"""The vocabulary several engines share, declared once: every engine derives what it uses from these names.

- `MessageChannel`: what a message is rendered and sent on;
- `Channel`: what a customer is reached on and consents by (`email`, ..., `webhook`, `phone`, `whatsapp`);
  the customer store's consent and preferred channels, segmentation's consent conditions;
- `DeliveryChannel`: what the broadcast engine delivers on (ADR 12), one adapter each; a voice call is
  consented to as `phone` (`CONSENT_CHANNEL_OF`);
- an engine that needs fewer or more names builds them from these (`Literal[MessageChannel, "web"]`):
  a Literal of Literals is their union, in order, and `typing.get_args` flattens it;
- `PUBLISHED_ATTRIBUTES`: the profile attributes the customer store publishes by default, with the type
  segmentation reads them as. The customer store's contract (`ecrm.customers.models`) declares it as its
  own; it is here so that segmentation's rules read it without importing (and building the classes of)
  the customer store's whole contract on every cold start of the analysis API.
"""

from __future__ import annotations

from typing import Literal, get_args

MessageChannel = Literal["email", "sms", "push", "in_app"]
Channel = Literal[MessageChannel, "webhook", "phone", "whatsapp"]
DeliveryChannel = Literal["email", "sms", "voice", "push", "whatsapp", "in_app", "webhook"]

MESSAGE_CHANNELS: tuple[str, ...] = get_args(MessageChannel)
CHANNELS: tuple[str, ...] = get_args(Channel)
DELIVERY_CHANNELS: tuple[str, ...] = get_args(DeliveryChannel)
# The consent (and preferred) channel a delivery channel is governed by.
CONSENT_CHANNEL_OF: dict[str, str] = {
    channel: "phone" if channel == "voice" else channel for channel in DELIVERY_CHANNELS
}

# What profile events carry for other engines by default (`CUSTOMERS_PUBLISHED_ATTRIBUTES` overrides it), with
# the type segmentation reads them as: what segmentation reads, no names, addresses or identity values.
PUBLISHED_ATTRIBUTES: dict[str, Literal["string", "number", "boolean", "date"]] = {
    "country": "string",
    "city": "string",
    "postal_code": "string",
    "language": "string",
    "tier": "string",
    "gender": "string",
    "birth_date": "date",
}
