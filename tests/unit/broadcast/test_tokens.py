"""Signed links and webhook signatures: round trips, tampering, expiry, key rotation, the documented scheme."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from ecrm.broadcast.tokens import (
    InvalidLinkToken,
    LinkToken,
    key_id,
    read_link,
    sign_link,
    verify_webhook_signature,
    webhook_signature,
)

NOW = datetime(2026, 11, 23, 10, 15, tzinfo=UTC)
KEY = b"k" * 32
OLD_KEY = b"o" * 32
TOKEN = LinkToken(
    kind="unsubscribe",
    customer_id="cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D",
    message_id="msg_ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    channel="email",
    topic="newsletter",
    purpose="marketing",
    expires_at=NOW + timedelta(days=60),
)


def test_a_link_token_round_trips_and_is_url_safe_and_compact() -> None:
    text = sign_link(KEY, TOKEN)
    assert read_link(KEY, text, now=NOW) == TOKEN
    assert all(c.isalnum() or c in "-_." for c in text)
    assert len(text) < 200


def test_optional_fields_round_trip_as_none() -> None:
    token = replace(TOKEN, kind="preferences", message_id=None, topic=None)
    assert read_link(KEY, sign_link(KEY, token), now=NOW) == token


@pytest.mark.parametrize("position", [0, 8, 30, -3])
def test_a_changed_character_anywhere_is_refused(position: int) -> None:
    text = sign_link(KEY, TOKEN)
    index = position % len(text)
    swapped = "A" if text[index] != "A" else "B"
    if text[index] == ".":
        index += 1
    tampered = text[:index] + swapped + text[index + 1 :]
    with pytest.raises(InvalidLinkToken):
        read_link(KEY, tampered, now=NOW)


def test_a_payload_re_signed_with_another_key_is_refused() -> None:
    forged = sign_link(b"attacker" * 4, TOKEN)
    with pytest.raises(InvalidLinkToken, match="unknown key"):
        read_link(KEY, forged, now=NOW)


def test_an_expired_token_is_refused_at_its_expiry() -> None:
    text = sign_link(KEY, TOKEN)
    assert read_link(KEY, text, now=TOKEN.expires_at - timedelta(seconds=1)) == TOKEN
    with pytest.raises(InvalidLinkToken, match="expired"):
        read_link(KEY, text, now=TOKEN.expires_at)


@pytest.mark.parametrize("text", ["", "a.b", "a.b.c.d", "..", "é.é.é", "abcdef.!!!.???", key_id(KEY) + ".e30.x"])
def test_garbage_is_refused_with_the_one_error(text: str) -> None:
    with pytest.raises(InvalidLinkToken):
        read_link(KEY, text, now=NOW)


def test_a_link_signed_before_a_rotation_reads_while_the_old_key_is_kept() -> None:
    old_link = sign_link(OLD_KEY, TOKEN)
    assert read_link([KEY, OLD_KEY], old_link, now=NOW) == TOKEN
    assert read_link([KEY, OLD_KEY], sign_link(KEY, TOKEN), now=NOW) == TOKEN
    with pytest.raises(InvalidLinkToken):
        read_link([KEY], old_link, now=NOW)
    assert key_id(KEY) != key_id(OLD_KEY)


def test_the_webhook_signature_is_the_documented_hmac() -> None:
    body = b'{"hello":"world"}'
    header = webhook_signature("whsec_test", 1795429200, body)
    expected = hmac.new(b"whsec_test", b"1795429200." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1795429200,v1={expected}"


def test_a_webhook_signature_verifies_within_the_tolerance_only() -> None:
    body = b'{"a":1}'
    at = int(NOW.timestamp())
    header = webhook_signature("s3cret", at, body)
    assert verify_webhook_signature("s3cret", header, body, now=NOW)
    assert verify_webhook_signature("s3cret", header, body, now=NOW + timedelta(seconds=300))
    assert not verify_webhook_signature("s3cret", header, body, now=NOW + timedelta(seconds=301))
    assert not verify_webhook_signature("s3cret", header, body + b" ", now=NOW)
    assert not verify_webhook_signature("other", header, body, now=NOW)


def test_a_rotating_secret_may_sign_twice_and_either_verifies() -> None:
    body = b"{}"
    at = int(NOW.timestamp())
    old = webhook_signature("old", at, body).split(",")[1]
    header = webhook_signature("new", at, body) + "," + old
    assert verify_webhook_signature("old", header, body, now=NOW)
    assert verify_webhook_signature("new", header, body, now=NOW)


@pytest.mark.parametrize("header", ["", "t=abc,v1=00", "v1=00", "t=1", "t=1,v1=é"])
def test_a_malformed_webhook_header_does_not_verify(header: str) -> None:
    assert not verify_webhook_signature("s", header, b"{}", now=NOW)
