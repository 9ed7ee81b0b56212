"""Packing small JSON documents: a dictionary-packed document reads back, so does plain zlib (items written before
the dictionary), a document packed with a dictionary this version does not know is refused rather than misread,
and a campaign email's `sent` item packs well under the 1 KB one write unit covers."""

from __future__ import annotations

import json
import zlib

import pytest
from ecrm.core.packing import DICTIONARY_V1, pack, unpack

DOC = {
    "purpose": "marketing",
    "source": "campaign:cmp_01JZ8K3M4N5P6Q7R8S9T0V1W2Y",
    "step": "r1.a",
    "requested_channel": "email",
    "channel": "email",
    "address": "jeanne.dupont.4821@example.org",
    "fingerprint": "b2zTTZLaiAFNY0TiE_aixoufZncxZvHpa7iu0_P7pWE",
    "requested_at": "2026-12-07T12:00:00.123456Z",
    "updated_at": "2026-12-07T12:00:03.5Z",
    "attempts": 1,
    "provider_message_id": "010001929c4e9d4f-6f1d2a7e-3b4c-4d5e-8f9a-0b1c2d3e4f5a-000000",
    "history": [
        {"at": "2026-12-07T12:00:00.123456Z", "status": "requested"},
        {"at": "2026-12-07T12:00:01.2Z", "status": "queued", "detail": {"policy": "email: chosen"}},
        {"at": "2026-12-07T12:00:02.1Z", "status": "sending", "detail": {"attempt": "1"}},
        {
            "at": "2026-12-07T12:00:03.5Z",
            "status": "sent",
            "detail": {"provider_message_id": "010001929c4e9d4f-6f1d2a7e-3b4c-4d5e-8f9a-0b1c2d3e4f5a-000000"},
        },
    ],
}


def test_a_packed_document_reads_back_and_is_smaller_than_plain_zlib() -> None:
    data = json.dumps(DOC, separators=(",", ":")).encode()
    packed = pack(data)
    assert unpack(packed) == data
    assert len(packed) < 0.7 * len(zlib.compress(data, 9))


def test_plain_zlib_written_before_the_dictionary_still_reads() -> None:
    data = json.dumps(DOC).encode()
    assert unpack(zlib.compress(data, 9)) == data
    assert unpack(zlib.compress(b"")) == b""


def test_a_document_packed_with_an_unknown_dictionary_is_refused() -> None:
    other = DICTIONARY_V1 + b"a later vocabulary"
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS, 9, zlib.Z_DEFAULT_STRATEGY, other)
    packed = packer.compress(b'{"status":"sent"}') + packer.flush()
    with pytest.raises(ValueError, match="dictionary"):
        unpack(packed)
