"""Reading a request body into JSON, refusing up front what would otherwise fail later as a 5xx.

Every engine's API reads bodies through here (the resolver in `ecrm.core.api` for routes with a body
model, the tracking routes directly), so each way a body can be unusable is named once, as a 4xx:

- a media type that is not JSON: 415 (the tracking routes also take `text/plain`: analytics.js posts
  JSON that way to avoid a CORS preflight);
- a `Content-Encoding` other than gzip, or a body that claims gzip and is not: 400; a gzip body is
  inflated only up to a limit, so a small bomb cannot expand without bound: 413;
- bytes that are not UTF-8 (RFC 8259 section 8.1): 400;
- text that is not JSON, including `NaN` and `Infinity`, which Python accepts and JSON does not: 400;
- nesting deeper than `MAX_JSON_DEPTH` (the parser, pydantic and every recursive walk after them
  would otherwise hit Python's recursion limit): 400;
- a string holding a lone surrogate (`"\\ud800"`): JSON's grammar lets the escape through, but it is
  not a character, cannot be encoded as UTF-8 and so cannot be stored or sent on (RFC 8259 section
  8.2 calls the outcome "unpredictable"): 400 naming where it is.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from typing import Any

from ecrm.core.errors import EcrmError, InvalidInput

MAX_JSON_DEPTH = 32
# What a synchronous Lambda invocation may carry: an inflated body is never larger than a plain one could be.
MAX_INFLATED_BYTES = 6 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
JSON_MEDIA_TYPE = "application/json"
_IDENTITY_ENCODINGS = frozenset({"", "identity"})
_SURROGATE_ESCAPE = b"\\ud"


class UnsupportedMediaType(EcrmError):
    status = 415
    code = "unsupported-media-type"
    title = "Unsupported media type"


class MalformedBody(InvalidInput):
    code = "malformed-body"
    title = "Malformed body"


class BodyTooLarge(EcrmError):
    status = 413
    code = "payload-too-large"
    title = "Payload too large"


def media_type(content_type: str | None) -> str:
    """`application/json; charset=utf-8` -> `application/json`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def require_json_media_type(content_type: str | None, *, also: frozenset[str] = frozenset()) -> None:
    """415 unless the body is declared as JSON (`application/json`, `application/*+json`), undeclared, or in `also`."""
    declared = media_type(content_type)
    if not declared or declared == JSON_MEDIA_TYPE or declared in also:
        return
    if declared.startswith("application/") and declared.endswith("+json"):
        return
    accepted = ", ".join(sorted({JSON_MEDIA_TYPE, *also}))
    raise UnsupportedMediaType(
        f"the body is declared as {declared!r}; this route takes {accepted}", content_type=declared, accepted=accepted
    )


def body_bytes(body: str | None, *, base64_encoded: bool) -> bytes:
    """The body as the client sent it (API Gateway passes binary bodies base64-encoded)."""
    if not body:
        return b""
    if not base64_encoded:
        return body.encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedBody("the body is not valid base64") from exc


def inflate(raw: bytes, content_encoding: str | None, *, limit: int = MAX_INFLATED_BYTES) -> bytes:
    """The body after its `Content-Encoding`: gzip inflated to at most `limit` bytes, identity as is."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in _IDENTITY_ENCODINGS:
        return raw
    if encoding != "gzip":
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not supported; send the body as is or gzip it", content_encoding=encoding
        )
    if not raw:
        return raw
    if raw[:2] != GZIP_MAGIC:
        raise MalformedBody("the body claims Content-Encoding gzip but is not gzip")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise MalformedBody(f"the body is not valid gzip ({exc})") from exc
    if len(inflated) > limit:
        raise BodyTooLarge(
            f"the body inflates to over {limit} bytes; a request may carry at most {limit} bytes", limit_bytes=limit
        )
    if not inflater.eof:
        raise MalformedBody("the gzip body is truncated")
    return inflated


def decode_json(raw: bytes) -> Any:
    """The JSON document in `raw`, or `MalformedBody` saying what is wrong with it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"the body is not valid UTF-8 (byte {exc.start})") from exc
    try:
        document = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise _too_deep() from exc
    except ValueError as exc:
        raise MalformedBody(f"the body is not valid JSON: {exc}") from exc
    check_document(document, surrogates=_SURROGATE_ESCAPE in raw.lower())
    return document


def decode_json_object(raw: bytes) -> dict[str, Any]:
    document = decode_json(raw) if raw else None
    if not isinstance(document, dict):
        raise MalformedBody("the body must be a JSON object")
    return document


def check_document(document: Any, *, surrogates: bool = True) -> None:
    """Depth and text of a parsed document, without recursion (the point is not to need the stack).

    `surrogates=False` skips the string check, for a body whose text has no `\\ud` escape: only an
    escape can put a lone surrogate into a document decoded from UTF-8.
    """
    pending: list[tuple[Any, int, tuple[str | int, ...]]] = [(document, 1, ())]
    while pending:
        value, depth, path = pending.pop()
        if isinstance(value, dict):
            if depth > MAX_JSON_DEPTH:
                raise _too_deep()
            for key, item in value.items():
                if surrogates:
                    _check_text(key, (*path, key))
                if isinstance(item, dict | list) or (surrogates and isinstance(item, str)):
                    pending.append((item, depth + 1, (*path, key)))
        elif isinstance(value, list):
            if depth > MAX_JSON_DEPTH:
                raise _too_deep()
            for index, item in enumerate(value):
                if isinstance(item, dict | list) or (surrogates and isinstance(item, str)):
                    pending.append((item, depth + 1, (*path, index)))
        elif isinstance(value, str):
            _check_text(value, path)


def _check_text(text: str, path: tuple[str | int, ...]) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        where = ".".join(str(p).encode("utf-8", "backslashreplace").decode() for p in path) or "the body"
        code_point = f"\\u{ord(text[exc.start]):04x}"
        raise MalformedBody(
            f"{where}: holds a lone surrogate ({code_point}), which is not a character", field=where
        ) from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _too_deep() -> MalformedBody:
    return MalformedBody(f"the body nests deeper than {MAX_JSON_DEPTH} levels", max_depth=MAX_JSON_DEPTH)
