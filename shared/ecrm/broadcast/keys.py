"""A message's id is its key: `(source, customer, step)` hashed, so a re-run names the same messages (ADR 12).

The fingerprint of a request's body tells a replay (same key, same body: the existing message) from a
different request reusing a key (a 422), whatever the order of the body's keys.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

MESSAGE_ID_PREFIX = "msg_"
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32, as `ecrm.core.ids`


def message_id_for(source: str, customer_id: str, step: str = "0") -> str:
    """`msg_` + 26 Crockford base32 characters of SHA-256(source, customer, step): 130 bits, no collisions to fear."""
    digest = hashlib.sha256("\x1f".join((source, customer_id, step)).encode("utf-8")).digest()
    value = int.from_bytes(digest[:17], "big") >> 6  # 130 bits
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return MESSAGE_ID_PREFIX + "".join(reversed(chars))


def fingerprint_of(body: Mapping[str, Any]) -> str:
    """The SHA-256 of the body in canonical JSON (sorted keys, no spaces), URL-safe base64."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode("utf-8")).digest()).decode().rstrip("=")


def address_hash(address: str) -> str:
    """What events carry instead of an address: its SHA-256, hex, of the normalised address."""
    return hashlib.sha256(normalise_address(address).encode("utf-8")).hexdigest()


def normalise_address(address: str) -> str:
    """Email addresses compare without case; phone numbers and endpoint ids as given."""
    address = address.strip()
    return address.lower() if "@" in address else address
