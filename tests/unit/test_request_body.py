"""Reading request bodies: every way a body can be unusable is a 4xx naming it, never an exception that escapes."""

from __future__ import annotations

import contextlib
import gzip
import json
from typing import Any

import pytest
from ecrm.core import request_body
from ecrm.core.errors import EcrmError
from ecrm.core.request_body import (
    MAX_JSON_DEPTH,
    BodyTooLarge,
    MalformedBody,
    UnsupportedMediaType,
    decode_json,
    decode_json_object,
    inflate,
    require_json_media_type,
)
from hypothesis import given
from hypothesis import strategies as st


def nested(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


def test_a_document_nested_1000_deep_is_refused_without_a_recursion_error() -> None:
    # Given JSON nested far past the interpreter's recursion limit, When it is read, Then it is a 400 naming depth
    with pytest.raises(MalformedBody, match=f"nests deeper than {MAX_JSON_DEPTH} levels"):
        decode_json(nested(1000))
    with pytest.raises(MalformedBody, match="nests deeper"):
        decode_json(b'{"a":' * 100_000 + b"1" + b"}" * 100_000)


def test_depth_is_limited_at_the_declared_maximum() -> None:
    assert decode_json(nested(MAX_JSON_DEPTH)) is not None
    with pytest.raises(MalformedBody):
        decode_json(nested(MAX_JSON_DEPTH + 1))


def test_bytes_that_are_not_utf8_are_refused_naming_the_byte() -> None:
    with pytest.raises(MalformedBody, match=r"not valid UTF-8 \(byte 7\)"):
        decode_json(b'{"a": "\xff\xfe"}')


@pytest.mark.parametrize("text", [b'{"a": NaN}', b"[Infinity]", b"{not json"])
def test_what_python_parses_and_json_does_not_is_refused(text: bytes) -> None:
    with pytest.raises(MalformedBody, match="not valid JSON"):
        decode_json(text)


def test_a_lone_surrogate_is_refused_naming_where_it_is() -> None:
    # Given a lone surrogate escaped in a nested value and one in a key
    with pytest.raises(MalformedBody, match=r"properties\.note: holds a lone surrogate \(\\ud800\)") as raised:
        decode_json(b'{"properties": {"note": "x\\ud800"}}')
    assert raised.value.extensions["field"] == "properties.note"
    with pytest.raises(MalformedBody, match="lone surrogate"):
        decode_json(b'{"items": [{"k\\udfff": 1}]}')
    # And a pair of surrogates is the one character it encodes
    assert decode_json(b'{"emoji": "\\ud83d\\ude00"}') == {"emoji": "\N{GRINNING FACE}"}


def test_a_body_must_be_an_object_where_an_object_is_expected() -> None:
    for raw in (b"", b"[1]", b'"x"'):
        with pytest.raises(MalformedBody, match="JSON object"):
            decode_json_object(raw)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters()),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(st.characters()), children, max_size=4),
    max_leaves=40,
)


@given(json_values)
def test_any_json_document_is_read_back_or_refused_as_malformed(value: Any) -> None:
    # Given any JSON text, lone surrogates included (ensure_ascii escapes them as JSON clients do)
    raw = json.dumps(value).encode()
    # When it is read, Then it is the document, or a MalformedBody: never another exception
    with contextlib.suppress(MalformedBody):
        assert decode_json(raw) == value


def test_gzip_is_inflated_and_whatever_claims_gzip_and_is_not_is_a_400() -> None:
    document = b'{"a": 1}'
    assert inflate(gzip.compress(document), "gzip") == document
    assert inflate(document, None) == document
    assert inflate(document, "identity") == document
    with pytest.raises(MalformedBody, match="claims Content-Encoding gzip but is not gzip"):
        inflate(document, "gzip")
    with pytest.raises(MalformedBody, match="truncated"):
        inflate(gzip.compress(document * 100)[:-12], "gzip")
    with pytest.raises(MalformedBody, match="not valid gzip"):
        inflate(b"\x1f\x8b" + b"\x00" * 20, "gzip")
    with pytest.raises(UnsupportedMediaType, match="'br' is not supported"):
        inflate(document, "br")


def test_a_small_gzip_bomb_is_refused_after_inflating_only_to_the_limit() -> None:
    bomb = gzip.compress(b" " * 10_000_000)
    assert len(bomb) < 20_000
    with pytest.raises(BodyTooLarge) as raised:
        inflate(bomb, "gzip", limit=1_000)
    assert raised.value.status == 413


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/merge-patch+json",
    ],
)
def test_json_media_types_are_accepted(content_type: str | None) -> None:
    require_json_media_type(content_type)


@pytest.mark.parametrize("content_type", ["application/xml", "text/plain", "application/x-www-form-urlencoded"])
def test_other_media_types_are_415_naming_the_type(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType) as raised:
        require_json_media_type(content_type)
    assert raised.value.status == 415
    assert content_type in raised.value.detail


def test_a_route_may_take_text_plain_as_well() -> None:
    require_json_media_type("text/plain;charset=UTF-8", also=frozenset({"text/plain"}))


def test_every_refusal_is_a_4xx_problem() -> None:
    for error in (MalformedBody, BodyTooLarge, UnsupportedMediaType):
        assert issubclass(error, EcrmError)
        assert 400 <= error.status < 500
    assert request_body.body_bytes("e30=", base64_encoded=True) == b"{}"
    with pytest.raises(MalformedBody, match="base64"):
        request_body.body_bytes("%%%", base64_encoded=True)
