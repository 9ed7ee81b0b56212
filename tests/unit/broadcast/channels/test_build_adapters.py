"""build_adapters: which channels the settings allow, and clients made once, on first use."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ecrm.broadcast.channels import ChannelSettings, build_adapters, device_registrar
from ecrm.core.clock import FixedClock

from tests.unit.broadcast.channels.fakes import FakeClient, FakeEndpoints, FakeInbox, message

CLOCK = FixedClock(datetime(2026, 11, 23, 10, 15, tzinfo=UTC))


class Factory:
    def __init__(self) -> None:
        self.made: list[str] = []
        self.clients: dict[str, FakeClient] = {}

    def __call__(self, service: str) -> Any:
        self.made.append(service)
        return self.clients.setdefault(service, FakeClient(send_text_message={"MessageId": "m"}))


def build(settings: ChannelSettings, factory: Factory) -> dict[str, Any]:
    return dict(build_adapters(settings, session=factory, inbox=FakeInbox(), endpoints=FakeEndpoints(), clock=CLOCK))


def test_the_always_available_channels_and_no_client_before_a_send() -> None:
    factory = Factory()
    adapters = build(ChannelSettings(email_from="Shop <news@example.com>", configuration_set=None), factory)
    assert set(adapters) == {"email", "sms", "push", "in_app", "webhook"}
    assert factory.made == []
    assert all(adapter.channel == name for name, adapter in adapters.items())


def test_voice_and_whatsapp_join_when_configured() -> None:
    settings = ChannelSettings(
        email_from="news@example.com",
        configuration_set="ecrm-marketing",
        voice_origination="phone-number-id-voice",
        whatsapp_phone_number_id="phone-number-id-wa",
    )
    assert set(build(settings, Factory())) == {"email", "sms", "voice", "push", "whatsapp", "in_app", "webhook"}


def test_a_client_is_made_once_per_service_on_first_use() -> None:
    factory = Factory()
    adapters = build(ChannelSettings(email_from="news@example.com", configuration_set=None), factory)
    for _ in range(3):
        adapters["sms"].send(message("sms", "+33612345678", {"body": "hi"}))
    assert factory.made == ["pinpoint-sms-voice-v2"]


def test_a_boto3_like_session_is_accepted() -> None:
    class Session:
        def __init__(self) -> None:
            self.factory = Factory()

        def client(self, service: str) -> Any:
            return self.factory(service)

    session = Session()
    settings = ChannelSettings(email_from="n@example.com", configuration_set=None, push_applications={"fcm": "arn"})
    registrar = device_registrar(settings, session=session)
    assert registrar.applications == {"fcm": "arn"}
    adapters = build_adapters(settings, session=session, inbox=FakeInbox(), endpoints=FakeEndpoints(), clock=CLOCK)
    adapters["sms"].send(message("sms", "+33612345678", {"body": "hi"}))
    assert session.factory.made == ["pinpoint-sms-voice-v2"]
