"""What every channel adapter shares: the message handed to it, its answer, its one error and the ports.

An adapter turns one rendered `OutboundMessage` into one provider call and answers a `SendResult`,
or raises `ChannelError` saying whether a retry can help (`throttled`), can never help (`permanent`)
or might (neither: a transient fault, retried by the core with backoff). Adapters hold no state of
their own: the in-app inbox and the webhook endpoints are ports the core's store implements.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# Tag values SES (and our other providers' metadata) accept: SES v2 MessageTagValue is [A-Za-z0-9_-]{1,256}.
TAG_VALUE = re.compile(r"[A-Za-z0-9_-]{1,256}")
E164 = re.compile(r"\+[1-9][0-9]{6,14}")


@dataclass(frozen=True)
class OutboundMessage:
    """One message, rendered, addressed and decided by the policy: what a channel needs to send it.

    `address` is an email address (email), an E.164 number (sms, voice, whatsapp), an SNS platform
    endpoint ARN (push), the customer id (in_app) or a webhook endpoint id (webhook). `tags` travel to
    the provider so that its events name the message; they always hold `message_id`.
    """

    message_id: str
    customer_id: str
    channel: str
    address: str
    purpose: str
    topic: str | None
    content: Mapping[str, Any]
    tags: Mapping[str, str]
    tracking: bool = False
    unsubscribe_url: str | None = None
    preferences_url: str | None = None
    country: str | None = None

    @property
    def is_marketing(self) -> bool:
        return self.purpose == "marketing"


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str | None
    detail: Mapping[str, str] = field(default_factory=dict)


class ChannelError(Exception):
    """A send that did not happen.

    `permanent`: never retry (a bad address, opted out at the provider, a disabled endpoint);
    `throttled`: retry later with backoff (a rate was exceeded); neither: a transient fault, retried
    with backoff a bounded number of times. `code` is the provider's error code when there is one.
    """

    def __init__(self, reason: str, *, permanent: bool, throttled: bool = False, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.throttled = throttled
        self.code = code

    def __repr__(self) -> str:
        return (
            f"ChannelError({self.reason!r}, permanent={self.permanent}, throttled={self.throttled}, code={self.code!r})"
        )


class ChannelAdapter(Protocol):
    channel: str

    def send(self, message: OutboundMessage) -> SendResult: ...


class Inbox(Protocol):
    """The in-app inbox (the core's store): keeps a message for the customer, idempotent by message id."""

    def deliver(self, message: OutboundMessage) -> str: ...


@dataclass(frozen=True)
class WebhookEndpoint:
    endpoint_id: str
    customer_id: str | None
    url: str
    secret: str
    enabled: bool


class EndpointDirectory(Protocol):
    """The webhook endpoints (the core's store), which disables one after failures in a row."""

    def endpoint(self, endpoint_id: str) -> WebhookEndpoint | None: ...

    def record_outcome(self, endpoint_id: str, *, ok: bool) -> None: ...


def require(condition: bool, reason: str, *, code: str = "invalid_message") -> None:
    """A message the adapter cannot send as given: permanent, since a retry would send the same thing."""
    if not condition:
        raise ChannelError(reason, permanent=True, code=code)


def content_text(message: OutboundMessage, key: str, *, required: bool = True) -> str | None:
    """The content part `key` as text: a missing required part is a permanent error."""
    value = message.content.get(key)
    if value is None or value == "":
        require(not required, f"{message.channel} content has no {key}", code="missing_content")
        return None
    require(isinstance(value, str), f"{message.channel} content {key} is not text", code="invalid_content")
    return str(value)


def require_e164(message: OutboundMessage) -> str:
    require(bool(E164.fullmatch(message.address)), "the address is not an E.164 phone number", code="invalid_address")
    return message.address


def provider_tags(message: OutboundMessage) -> dict[str, str]:
    """The message's tags the providers accept as metadata: `message_id` always, others when their text fits."""
    tags = {"message_id": message.message_id}
    for name, value in message.tags.items():
        if TAG_VALUE.fullmatch(name) and isinstance(value, str) and TAG_VALUE.fullmatch(value):
            tags.setdefault(name, value)
    require(bool(TAG_VALUE.fullmatch(message.message_id)), "the message id is not a tag value", code="invalid_message")
    return tags


def aws_error(exc: BaseException) -> tuple[str, str, Mapping[str, Any]] | None:
    """(code, message, whole response) of a botocore `ClientError`, read by shape so pure callers need no botocore."""
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return None
    error = response.get("Error") or {}
    return str(error.get("Code", "")), str(error.get("Message", "")), response


def transient(exc: BaseException, channel: str) -> ChannelError:
    """A fault that is neither ours nor the recipient's (a 5xx, a timeout, a dropped connection): retry."""
    return ChannelError(f"{channel} provider call failed: {type(exc).__name__}: {exc}", permanent=False)
