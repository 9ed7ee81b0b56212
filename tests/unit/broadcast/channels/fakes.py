"""Test doubles for the channel adapters: a recording AWS client, provider errors, the ports, a message."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import ClientError
from ecrm.broadcast.channels.base import OutboundMessage, WebhookEndpoint

MESSAGE_ID = "msg_ABCDEFGHIJKLMNOPQRSTUVWXYZ"
CUSTOMER_ID = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"


def provider_error(code: str, message: str = "refused", **members: str) -> ClientError:
    """A botocore error as the service answers it; `members` are the error shape's others (`Reason`, ...)."""
    response: dict[str, Any] = {"Error": {"Code": code, "Message": message}, **members}
    return ClientError(response, "Operation")  # type: ignore[arg-type]


class FakeClient:
    """Records every call as (operation, parameters); answers `answers[operation]` or raises `errors[operation]`."""

    def __init__(self, **answers: dict[str, Any]) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.answers = answers
        self.errors: dict[str, Exception] = {}

    def __getattr__(self, operation: str) -> Any:
        if operation.startswith("_"):
            raise AttributeError(operation)

        def call(**params: Any) -> dict[str, Any]:
            self.calls.append((operation, params))
            if operation in self.errors:
                raise self.errors[operation]
            return dict(self.answers.get(operation, {}))

        return call

    def only(self, operation: str) -> dict[str, Any]:
        [params] = [p for op, p in self.calls if op == operation]
        return params


def message(channel: str, address: str, content: Mapping[str, Any], **extra: Any) -> OutboundMessage:
    base = OutboundMessage(
        message_id=MESSAGE_ID,
        customer_id=CUSTOMER_ID,
        channel=channel,
        address=address,
        purpose="transactional",
        topic=None,
        content=content,
        tags={"message_id": MESSAGE_ID, "campaign_id": "cmp_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"},
    )
    return replace(base, **extra)


@dataclass
class FakeInbox:
    items: dict[str, OutboundMessage] = field(default_factory=dict)
    broken: bool = False

    def deliver(self, message: OutboundMessage) -> str:
        if self.broken:
            raise RuntimeError("table unavailable")
        self.items.setdefault(message.message_id, message)
        return "inb_" + message.message_id.removeprefix("msg_")


@dataclass
class FakeEndpoints:
    endpoints: dict[str, WebhookEndpoint] = field(default_factory=dict)
    outcomes: list[tuple[str, bool]] = field(default_factory=list)

    def endpoint(self, endpoint_id: str) -> WebhookEndpoint | None:
        return self.endpoints.get(endpoint_id)

    def record_outcome(self, endpoint_id: str, *, ok: bool) -> None:
        self.outcomes.append((endpoint_id, ok))
