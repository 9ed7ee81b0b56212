"""The broadcast engine's channels: one adapter per delivery channel behind one interface (ADR 12).

`build_adapters` makes the adapters the settings allow: email, SMS, push, in-app and webhook always,
voice when a voice-capable origination identity is configured, WhatsApp when a phone number id is.
A channel missing from the answer is one the policy must not choose. AWS clients are created on
first use (a cold start pays only for the channels it sends on).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from ecrm.broadcast.channels.base import (
    ChannelAdapter,
    ChannelError,
    EndpointDirectory,
    Inbox,
    OutboundMessage,
    SendResult,
    WebhookEndpoint,
)
from ecrm.broadcast.channels.email import EmailAdapter
from ecrm.broadcast.channels.in_app import InAppAdapter
from ecrm.broadcast.channels.push import DeviceRegistrar, PushAdapter
from ecrm.broadcast.channels.sms import SmsAdapter
from ecrm.broadcast.channels.voice import VoiceAdapter
from ecrm.broadcast.channels.webhook import HttpPoster, WebhookAdapter
from ecrm.broadcast.channels.whatsapp import WhatsAppAdapter
from ecrm.core.clock import Clock

__all__ = [
    "ChannelAdapter",
    "ChannelError",
    "ChannelSettings",
    "DeviceRegistrar",
    "EndpointDirectory",
    "Inbox",
    "OutboundMessage",
    "SendResult",
    "WebhookEndpoint",
    "build_adapters",
    "device_registrar",
]


@dataclass(frozen=True)
class ChannelSettings:
    email_from: str
    configuration_set: str | None
    sms_provider: Literal["sns", "eum"] = "eum"
    origination_identities: Mapping[str, str] = field(default_factory=dict)  # country -> identity; "*" default
    voice_origination: str | None = None
    whatsapp_phone_number_id: str | None = None
    push_applications: Mapping[str, str] = field(default_factory=dict)  # "apns"/"fcm" -> platform application ARN
    webhook_timeout_s: float = 5.0
    # Additions beyond the agreed interface (all optional):
    untracked_configuration_set: str | None = None  # email with tracking off goes through it, when configured
    unsubscribe_mailto: str | None = None  # a mailto target in List-Unsubscribe besides the https URL
    sms_configuration_set: str | None = None  # End User Messaging configuration set (its events carry Context)
    webhook_allow_loopback_http: bool = False  # plain http to 127.0.0.1 (local runs and tests only)


def _client_factory(session: Any) -> Callable[[str], Any]:
    """A cached client per service from a boto3 session (its `client`) or a factory `service -> client`."""
    make = session.client if hasattr(session, "client") else session
    return cache(make)


def build_adapters(
    settings: ChannelSettings,
    *,
    session: Any,
    inbox: Inbox,
    endpoints: EndpointDirectory,
    clock: Clock,
    http: HttpPoster | None = None,
) -> dict[str, ChannelAdapter]:
    clients = _client_factory(session)
    eum = "pinpoint-sms-voice-v2"
    adapters: dict[str, ChannelAdapter] = {
        "email": EmailAdapter(
            lambda: clients("sesv2"),
            sender=settings.email_from,
            configuration_set=settings.configuration_set,
            clock=clock,
            unsubscribe_mailto=settings.unsubscribe_mailto,
            untracked_configuration_set=settings.untracked_configuration_set,
        ),
        "sms": SmsAdapter(
            lambda: clients(eum if settings.sms_provider == "eum" else "sns"),
            provider=settings.sms_provider,
            origination_identities=settings.origination_identities,
            configuration_set=settings.sms_configuration_set,
        ),
        "push": PushAdapter(lambda: clients("sns")),
        "in_app": InAppAdapter(inbox),
        "webhook": WebhookAdapter(
            endpoints,
            clock=clock,
            http=http,
            timeout_s=settings.webhook_timeout_s,
            allow_loopback_http=settings.webhook_allow_loopback_http,
        ),
    }
    if settings.voice_origination or settings.origination_identities:
        adapters["voice"] = VoiceAdapter(
            lambda: clients(eum),
            origination=settings.voice_origination,
            origination_identities=settings.origination_identities,
            configuration_set=settings.sms_configuration_set,
        )
    if settings.whatsapp_phone_number_id:
        adapters["whatsapp"] = WhatsAppAdapter(
            lambda: clients("socialmessaging"), phone_number_id=settings.whatsapp_phone_number_id
        )
    return adapters


def device_registrar(settings: ChannelSettings, *, session: Any) -> DeviceRegistrar:
    """What `POST /me/devices` uses: a device token becomes an SNS platform endpoint ARN (the push address)."""
    clients = _client_factory(session)
    return DeviceRegistrar(lambda: clients("sns"), settings.push_applications)
