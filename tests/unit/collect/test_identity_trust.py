"""Sources' trust levels, identity verification by signature, and identify traits in `context.traits`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from ecrm.collect import logic
from ecrm.collect.logic import IncomingMessage
from ecrm.collect.models import Message, SourceIn
from ecrm.collect.service import CollectService
from ecrm.core.clock import FixedClock
from ecrm.core.publisher import EventPublisher

from tests.unit.collect.fakes import FakeCollectStore, FakeLake
from tests.unit.fakes import FakeEventsClient

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def service() -> CollectService:
    clock = FixedClock(NOW)
    return CollectService(
        FakeCollectStore(), EventPublisher("ecrm", FakeEventsClient(), clock=clock), FakeLake(), clock
    )


def identify(**fields: Any) -> Message:
    return Message.model_validate({"type": "identify", "anonymousId": "a-1", "messageId": "m-1", **fields})


@pytest.mark.parametrize(("kind", "trusted"), [("server", True), ("web", False), ("ios", False), ("other", False)])
def test_only_a_server_source_is_trusted_and_only_client_sources_get_an_identity_secret(
    kind: str, trusted: bool
) -> None:
    created = service().create_source(SourceIn(name=f"s-{kind}", kind=kind))
    assert created.trusted is trusted
    assert (created.identity_secret is None) is trusted


def test_the_identity_secret_is_shown_once_and_kept_for_verification_only() -> None:
    collect = service()
    created = collect.create_source(SourceIn(name="shopweb", kind="web"))
    assert created.identity_secret
    assert created.identity_secret.startswith("is_")
    listed = collect.list_sources()[0]
    assert "identity_secret" not in listed.model_dump()
    assert collect.authenticate(created.write_key).identity_secret == created.identity_secret


def test_a_signature_by_the_sources_secret_verifies_the_user_id_and_anything_else_does_not() -> None:
    collect = service()
    created = collect.create_source(SourceIn(name="shopweb", kind="web"))
    source, secret = created, created.identity_secret
    good = logic.sign_user_id(secret or "", "u-7")
    assert logic.identity_trust(identify(userId="u-7", context={"userHash": good}), source, secret) == "verified"
    assert logic.identity_trust(identify(userId="u-7", context={"userHash": good.upper()}), source, secret) == (
        "verified"
    )
    for message in (
        identify(userId="u-7"),  # no signature
        identify(userId="u-8", context={"userHash": good}),  # another user's signature
        identify(userId="u-7", context={"userHash": logic.sign_user_id("is_other", "u-7")}),  # another key
        identify(userId="u-7", context={"userHash": 42}),
        identify(context={"userHash": good}),  # nothing to verify
    ):
        assert logic.identity_trust(message, source, secret) == "unverified"
    assert logic.identity_trust(identify(userId="u-7", context={"userHash": good}), source, None) == "unverified"


def test_a_server_source_is_trusted_without_any_signature() -> None:
    server = service().create_source(SourceIn(name="backend", kind="server"))
    assert logic.identity_trust(identify(userId="u-7"), server, None) == "trusted"


def test_the_collected_event_carries_its_trust_and_not_the_signature() -> None:
    collect = service()
    created = collect.create_source(SourceIn(name="shopweb", kind="web"))
    caller = collect.authenticate(created.write_key)
    assert caller.identity_secret is not None
    signature = logic.sign_user_id(caller.identity_secret, "u-7")
    message = identify(userId="u-7", context={"userHash": signature, "ip": "203.0.113.9"})
    event = logic.collected_event(message, caller.source, NOW, identity_secret=caller.identity_secret)
    assert event.identity_trust == "verified"
    assert event.context == {"ip": "203.0.113.9"}
    lake = collect.lake
    assert isinstance(lake, FakeLake)
    collect.ingest(caller, [IncomingMessage(0, message)])
    [kept] = lake.written
    assert kept.identity_trust == "verified"
    assert "userHash" not in kept.context


def test_identify_traits_in_context_are_read_and_the_top_level_wins() -> None:
    message = identify(
        traits={"email": "top@example.com"},
        context={"traits": {"email": "ctx@example.com", "phone": "+4915112345678"}},
    )
    event = logic.collected_event(message, service().create_source(SourceIn(name="w", kind="web")), NOW)
    assert event.traits == {"email": "top@example.com", "phone": "+4915112345678"}
    only_in_context = identify(context={"traits": {"email": "ctx@example.com"}})
    assert logic.identify_traits(only_in_context) == {"email": "ctx@example.com"}


def test_a_track_calls_context_traits_are_not_identify_traits() -> None:
    track = Message.model_validate(
        {"type": "track", "event": "Viewed", "anonymousId": "a", "context": {"traits": {"email": "x@example.com"}}}
    )
    assert logic.identify_traits(track) == {}
