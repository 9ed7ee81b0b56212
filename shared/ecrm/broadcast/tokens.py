"""Signed links (unsubscribe, preference centre) and webhook signatures.

A link token is `<key id>.<payload>.<signature>`, all URL-safe base64 without padding: the payload
is a compact JSON array (kind, customer, message, channel, topic, purpose, expiry in Unix seconds),
the signature HMAC-SHA256 (truncated to 128 bits) over
`<key id>.<payload>` with the key the id names. The key id is derived from the key itself, so a
rotation needs no bookkeeping: `read_link` takes the current key and the previous ones, and a link
mailed before the rotation keeps working until it expires or its key is dropped. Signatures are
compared in constant time; a bad, tampered, expired or unknown-key token is one `InvalidLinkToken`.

Webhook signatures follow the documented scheme `X-Ecrm-Signature: t=<unix seconds>,v1=<hex>`,
`v1` = hex HMAC-SHA256(secret, "<t>.<body>"): the timestamp is signed so a captured request cannot be
replayed later than the tolerance; several `v1` values are accepted (a secret being rotated).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

LinkKind = Literal["unsubscribe", "preferences"]
_KINDS: dict[str, LinkKind] = {"u": "unsubscribe", "p": "preferences"}
_KIND_CODES = {v: k for k, v in _KINDS.items()}
_KEY_ID_LENGTH = 6
_SIGNATURE_BYTES = 16


class InvalidLinkToken(ValueError):
    """The token is malformed, tampered with, signed by an unknown key or expired."""


@dataclass(frozen=True)
class LinkToken:
    kind: LinkKind
    customer_id: str
    message_id: str | None
    channel: str
    topic: str | None
    purpose: str
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidLinkToken("not base64") from None


def key_id(secret: bytes) -> str:
    """A short public name of the key, derived from it (a one-way hash: it reveals nothing of the key)."""
    return _b64(hashlib.sha256(b"ecrm-link-key:" + secret).digest())[:_KEY_ID_LENGTH]


def _same(expected: str, given: str) -> bool:
    """Constant-time equality that tolerates any text given (compare_digest refuses non-ASCII str)."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8", "replace"))


def _signature(secret: bytes, signed: str) -> str:
    # HMAC-SHA256 truncated to 128 bits (NIST SP 800-107 allows it): a shorter link, as unforgeable in practice.
    return _b64(hmac.new(secret, signed.encode("ascii"), hashlib.sha256).digest()[:_SIGNATURE_BYTES])


def sign_link(secret: bytes, token: LinkToken) -> str:
    if not secret:
        raise ValueError("a link signing key must not be empty")
    payload = [
        _KIND_CODES[token.kind],
        token.customer_id,
        token.message_id,
        token.channel,
        token.topic,
        token.purpose,
        int(token.expires_at.timestamp()),
    ]
    body = _b64(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    signed = f"{key_id(secret)}.{body}"
    return f"{signed}.{_signature(secret, signed)}"


def read_link(secret: bytes | Sequence[bytes], text: str, *, now: datetime) -> LinkToken:
    """The token `text` carries, checked with the current key (or any of `secret` when a sequence: rotation)."""
    keys = [secret] if isinstance(secret, bytes) else list(secret)
    parts = text.split(".")
    if len(parts) != 3 or not all(parts):
        raise InvalidLinkToken("not a link token")
    kid, body, signature = parts
    key = next((k for k in keys if k and _same(key_id(k), kid)), None)
    if key is None:
        raise InvalidLinkToken("signed by an unknown key")
    if not _same(_signature(key, f"{kid}.{body}"), signature):
        raise InvalidLinkToken("bad signature")
    try:
        kind_code, customer_id, message_id, channel, topic, purpose, expires = json.loads(_unb64(body))
        token = LinkToken(
            kind=_KINDS[kind_code],
            customer_id=str(customer_id),
            message_id=None if message_id is None else str(message_id),
            channel=str(channel),
            topic=None if topic is None else str(topic),
            purpose=str(purpose),
            expires_at=datetime.fromtimestamp(int(expires), UTC),
        )
    except (ValueError, KeyError, TypeError, OverflowError):
        raise InvalidLinkToken("unreadable payload") from None
    if now >= token.expires_at:
        raise InvalidLinkToken("expired")
    return token


def _webhook_hex(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Ecrm-Signature` header value for `body` sent at `timestamp` (Unix seconds)."""
    return f"t={timestamp},v1={_webhook_hex(secret, timestamp, body)}"


def verify_webhook_signature(secret: str, header: str, body: bytes, *, now: datetime, tolerance_s: int = 300) -> bool:
    """Whether `header` signs `body` with `secret`, stamped within `tolerance_s` of `now` (either side)."""
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif name == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs(now.timestamp() - timestamp) > tolerance_s:
        return False
    expected = _webhook_hex(secret, timestamp, body)
    return any(_same(expected, candidate) for candidate in candidates)
