"""Broadcast's bulk entry for campaign and journey workers: each request through the idempotent request of
broadcast's message service, a batch without sources refused before anything is requested."""

from __future__ import annotations

from typing import Any

import pytest
from ecrm.broadcast.models import MessageAccepted, MessageRequest
from pydantic import ValidationError

from functions.broadcast import task_request_messages

bulk: Any = task_request_messages.handler


class FakeMessages:
    def __init__(self) -> None:
        self.requested: dict[tuple[str, str, str], MessageRequest] = {}

    def request(self, body: MessageRequest, *, idempotency_key: str | None, correlation_id: str | None) -> Any:
        key = (body.source or "", body.customer_id, body.step)
        self.requested.setdefault(key, body)
        return MessageAccepted(message_id="msg_" + "-".join(key), status="requested")

    def request_all(self, bodies: list[MessageRequest]) -> list[Any]:
        return [self.request(b, idempotency_key=None, correlation_id=None) for b in bodies]


def requests(n: int, **overrides: Any) -> list[dict[str, Any]]:
    base = {"purpose": "marketing", "content": {"sms": {"body": "Hi"}}, "source": "campaign:cmp_1", "step": "r1.a"}
    return [{**base, "customer_id": f"c{i}", **overrides} for i in range(n)]


def test_a_batch_is_requested_once_per_key_however_often_it_is_invoked(lambda_context: Any) -> None:
    messages = FakeMessages()
    first = bulk({"requests": requests(3)}, lambda_context, messages)
    again = bulk({"requests": requests(3)}, lambda_context, messages)
    assert first == again
    assert len(first["message_ids"]) == 3
    assert len(messages.requested) == 3


@pytest.mark.parametrize(
    "batch", [{"requests": []}, {"requests": requests(101)}, {"requests": requests(1, source=None)}]
)
def test_a_bad_batch_requests_nothing(batch: dict[str, Any], lambda_context: Any) -> None:
    messages = FakeMessages()
    with pytest.raises(ValidationError):
        bulk(batch, lambda_context, messages)
    assert messages.requested == {}
