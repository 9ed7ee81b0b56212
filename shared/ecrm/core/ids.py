"""Identifiers: time-ordered, URL-safe, 26 characters (ULID layout, Crockford base32).

Time order keeps recent items together in sort keys; the 80 random bits keep partition keys
spread when an id is used as one.
"""

from __future__ import annotations

import os
import time

from ecrm.core.clock import skew

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(prefix: str = "", *, now_ms: int | None = None) -> str:
    """A new ULID, optionally with a short type prefix such as `png_`."""
    millis = int((time.time() + skew().total_seconds()) * 1000) if now_ms is None else now_ms
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return prefix + "".join(reversed(chars))


def is_id(value: str, prefix: str = "") -> bool:
    body = value[len(prefix) :] if value.startswith(prefix) else None
    return body is not None and len(body) == 26 and all(c in _ALPHABET for c in body)
