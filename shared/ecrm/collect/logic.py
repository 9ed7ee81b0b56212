"""The collection engine's rules, free of AWS: write keys, reading tracking requests, normalising messages.

A tracking request is read in three steps, each of which can refuse it:
1. the body (`read_body`): at most 500 KB after any gzip decoding, else 413 and nothing is kept;
2. the JSON document (`parse_document`) and the write key (`write_key_from`): HTTP Basic auth with
   the key as username, or `writeKey` in the body, as analytics.js sends it;
3. the messages (`parse_call`, `parse_batch`): a single call is one message whose `type` the route
   implies; a batch is read message by message, so one bad message is rejected with a reason
   naming its field while the good ones in the same batch are accepted.

Accepted messages become `CollectedEvent`s (`collected_event`) with server times: the client's
timestamp corrected for its clock skew the way Segment does it, `receivedAt - (sentAt - timestamp)`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ecrm.collect.models import (
    MAX_BATCH_BYTES,
    MAX_MESSAGE_BYTES,
    SERVER_KINDS,
    USER_HASH_FIELD,
    Batch,
    CollectedEvent,
    IdentityTrust,
    Message,
    MessageType,
    Rejection,
    Source,
    SourceIn,
)
from ecrm.core import request_body
from ecrm.core.errors import EcrmError, InvalidInput
from ecrm.core.ids import new_id

WRITE_KEY_PREFIX = "wk_"
IDENTITY_SECRET_PREFIX = "is_"  # noqa: S105 - a prefix that names the kind of secret, not a secret
KEY_PREFIX_LENGTH = 10
MESSAGE_ID_PREFIX = "msg_"

CALL_PATHS: dict[str, MessageType] = {
    "identify": "identify",
    "track": "track",
    "page": "page",
    "screen": "screen",
    "group": "group",
    "alias": "alias",
}
"""`/v1/<path>` -> the message type the route implies (the Segment HTTP tracking API)."""

SHORT_CALL_PATHS: dict[str, MessageType] = {path[0]: kind for path, kind in CALL_PATHS.items()}
"""analytics.js (analytics-next) posts to `<apiHost>/<first letter of the type>`: `/v1/t`, `/v1/p`, ..."""

BATCH_PATHS = ("batch", "b")
"""`/v1/batch` for the server libraries and `/v1/b` for analytics.js in batching mode."""

TRACKING_PATHS = (*CALL_PATHS, *SHORT_CALL_PATHS, *BATCH_PATHS)
"""Every `/v1/<path>` the tracking API answers (what API Gateway must route to the function)."""


class PayloadTooLarge(EcrmError):
    status = 413
    code = "payload-too-large"
    title = "Payload too large"


# -- write keys ----------------------------------------------------------------------------------
def new_write_key() -> str:
    return WRITE_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_write_key(write_key: str) -> str:
    """What is stored and looked up: the key itself is shown once and never kept."""
    return hashlib.sha256(write_key.encode()).hexdigest()


def key_prefix(write_key: str) -> str:
    return write_key[:KEY_PREFIX_LENGTH]


def new_identity_secret() -> str:
    return IDENTITY_SECRET_PREFIX + secrets.token_urlsafe(32)


def sign_user_id(identity_secret: str, user_id: str) -> str:
    """What the site's backend puts in `context.userHash`: hex HMAC-SHA256 of the user id.

    The same construction as Intercom's identity verification, so a backend that already signs for
    it needs only another secret.
    """
    return hmac.new(identity_secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def identity_trust(message: Message, source: Source, identity_secret: str | None) -> IdentityTrust:
    """How far the customer store may believe this message's ids and traits (ADR 9)."""
    if source.trusted:
        return "trusted"
    signature = message.context.get(USER_HASH_FIELD)
    if not (identity_secret and message.user_id and isinstance(signature, str)):
        return "unverified"
    expected = sign_user_id(identity_secret, message.user_id)
    return "verified" if hmac.compare_digest(expected, signature.strip().lower()) else "unverified"


def identify_traits(message: Message) -> dict[str, Any]:
    """An identify call's traits: top-level `traits` over `context.traits`.

    The Segment spec allows traits in either place, and several Segment-compatible SDKs send identify
    traits only in `context.traits`; on a conflict the top level wins.
    """
    in_context = message.context.get("traits")
    if message.type != "identify" or not isinstance(in_context, dict):
        return dict(message.traits)
    return {**in_context, **message.traits}


def new_source(body: SourceIn, write_key: str, now: datetime) -> Source:
    return Source(
        source_id=new_id("src_"),
        name=body.name,
        description=body.description,
        kind=body.kind,
        trusted=body.kind in SERVER_KINDS,
        enabled=True,
        key_prefix=key_prefix(write_key),
        created_at=now,
    )


# -- the request --------------------------------------------------------------------------------
def read_body(body: str | None, *, base64_encoded: bool = False, content_encoding: str | None = None) -> bytes:
    """The request body as bytes, decoded and size-checked as sent and again as inflated: 413 beyond 500 KB.

    A body that claims `Content-Encoding: gzip` is gzip or a 400 (`ecrm.core.request_body.inflate`): the
    gateway has no payload compression configured, so nothing upstream inflates it first.
    """
    raw = request_body.body_bytes(body, base64_encoded=base64_encoded)
    if len(raw) > MAX_BATCH_BYTES:
        raise _too_large(len(raw))
    return _gunzip(raw, content_encoding)


def _gunzip(raw: bytes, content_encoding: str | None = "gzip") -> bytes:
    """Inflate at most one byte past the limit, so a small bomb cannot take the function's memory."""
    try:
        return request_body.inflate(raw, content_encoding, limit=MAX_BATCH_BYTES)
    except request_body.BodyTooLarge as exc:
        raise _too_large(MAX_BATCH_BYTES + 1, exactly=False) from exc


def _too_large(size: int, *, exactly: bool = True) -> PayloadTooLarge:
    amount = f"{size} bytes" if exactly else f"over {MAX_BATCH_BYTES} bytes"
    return PayloadTooLarge(
        f"the body is {amount}; a request may carry at most {MAX_BATCH_BYTES} bytes (500 KB)",
        limit_bytes=MAX_BATCH_BYTES,
    )


def parse_document(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, read by the platform's one body reader (depth, UTF-8, surrogates)."""
    return request_body.decode_json_object(raw)


def write_key_from(authorization: str | None, document: Mapping[str, Any] | None = None) -> str | None:
    """The write key: the username of HTTP Basic auth (password empty), else `writeKey` in the body.

    Some libraries encode `key:` and some only `key`; both are read.
    """
    if authorization:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return None
            return decoded.partition(":")[0] or None
    value = (document or {}).get("writeKey")
    return value if isinstance(value, str) and value else None


# -- messages -----------------------------------------------------------------------------------
class MessageRejected(Exception):
    """One message cannot be accepted; `reason` names the field when there is one."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class IncomingMessage:
    """A valid message and its position in the request (0 for a single call)."""

    index: int
    message: Message


@dataclass(frozen=True)
class ParsedRequest:
    messages: list[IncomingMessage]
    rejections: list[Rejection]


def describe_errors(exc: ValidationError, prefix: str = "") -> str:
    """Pydantic errors as one readable sentence: `userId: Input should be a valid string; ...`."""
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err.get("loc", ()))
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        where = ".".join(p for p in (prefix, field) if p)
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def message_size(raw: Mapping[str, Any]) -> int:
    return len(json.dumps(raw, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def check_message(raw: Any) -> Message:
    """A message as the spec allows it, or `MessageRejected` saying why not."""
    if not isinstance(raw, dict):
        raise MessageRejected("a message must be a JSON object")
    size = message_size(raw)
    if size > MAX_MESSAGE_BYTES:
        raise MessageRejected(f"the message is {size} bytes; a message may be at most {MAX_MESSAGE_BYTES} (32 KB)")
    try:
        return Message.model_validate(raw)
    except ValidationError as exc:
        raise MessageRejected(describe_errors(exc)) from exc


def parse_call(document: Mapping[str, Any], call_type: MessageType) -> Message:
    """The one message of `/v1/<type>`; its `type` is the route's. Anything wrong is a 400."""
    declared = document.get("type")
    if declared is not None and declared != call_type:
        raise InvalidInput(f"type: this route takes {call_type} messages, not {declared!r}", field="type")
    try:
        return check_message({**document, "type": call_type})
    except MessageRejected as exc:
        raise InvalidInput(exc.reason) from exc


def parse_batch(document: Mapping[str, Any]) -> ParsedRequest:
    """The messages of `/v1/batch`, each with the batch's `context`, `integrations` and `sentAt`."""
    try:
        batch = Batch.model_validate(document)
    except ValidationError as exc:
        raise InvalidInput(describe_errors(exc)) from exc
    defaults: dict[str, Any] = {"context": batch.context, "integrations": batch.integrations}
    sent_at = document.get("sentAt")
    messages: list[IncomingMessage] = []
    rejections: list[Rejection] = []
    for index, raw in enumerate(batch.batch):
        merged = with_batch_defaults(raw, defaults, sent_at)
        try:
            messages.append(IncomingMessage(index, check_message(merged)))
        except MessageRejected as exc:
            message_id = raw.get("messageId") if isinstance(raw.get("messageId"), str) else None
            rejections.append(Rejection(index=index, message_id=message_id, reason=exc.reason))
    return ParsedRequest(messages, rejections)


def with_batch_defaults(raw: Mapping[str, Any], defaults: Mapping[str, Any], sent_at: Any = None) -> dict[str, Any]:
    """`raw` with the batch-level objects merged in, key by key; the message's own values win."""
    merged = dict(raw)
    for name, shared in defaults.items():
        own = raw.get(name)
        if shared and (own is None or isinstance(own, dict)):
            merged[name] = deep_merge(shared, own or {})
    if sent_at is not None and raw.get("sentAt") is None:
        merged["sentAt"] = sent_at
    return merged


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        merged[key] = deep_merge(current, value) if isinstance(current, dict) and isinstance(value, dict) else value
    return merged


# -- normalisation ------------------------------------------------------------------------------
def corrected_timestamp(timestamp: datetime | None, sent_at: datetime | None, received_at: datetime) -> datetime:
    """When it happened, in server time: the client's clock is trusted for intervals, not instants.

    With `sentAt` the client's offset is known (`sentAt` and `receivedAt` are the same instant, up to
    transit), so `timestamp` is moved by it; without it the client's timestamp is taken as it is.
    """
    if timestamp is not None and sent_at is not None:
        return received_at - (sent_at - timestamp)
    return timestamp if timestamp is not None else received_at


def collected_event(
    message: Message,
    source: Source,
    received_at: datetime,
    new_message_id: Callable[[], str] = lambda: new_id(MESSAGE_ID_PREFIX),
    *,
    identity_secret: str | None = None,
) -> CollectedEvent:
    """The message as kept: server times, its trust level, and no signature (it has done its job)."""
    timestamp = _utc(message.timestamp)
    sent_at = _utc(message.sent_at)
    received = received_at.astimezone(UTC)
    return CollectedEvent(
        message_id=message.message_id or new_message_id(),
        type=message.type,
        source_id=source.source_id,
        source_name=source.name,
        user_id=message.user_id,
        anonymous_id=message.anonymous_id,
        event=message.event,
        name=message.name,
        category=message.category,
        group_id=message.group_id,
        previous_id=message.previous_id,
        properties=message.properties,
        traits=identify_traits(message),
        context={k: v for k, v in message.context.items() if k != USER_HASH_FIELD},
        identity_trust=identity_trust(message, source, identity_secret),
        timestamp=corrected_timestamp(timestamp, sent_at, received),
        original_timestamp=timestamp,
        sent_at=sent_at,
        received_at=received,
    )


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def first_occurrences(events: Iterable[CollectedEvent]) -> tuple[list[CollectedEvent], int]:
    """The events with a message id not seen earlier in the same request, and how many repeated one."""
    seen: set[str] = set()
    unique: list[CollectedEvent] = []
    repeated = 0
    for event in events:
        if event.message_id in seen:
            repeated += 1
            continue
        seen.add(event.message_id)
        unique.append(event)
    return unique, repeated


def chunked(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
