"""The bulk function's preview: per request, the decision a dispatch would reach now (send with its channel,
defer with until, suppress with the reason), made by the dispatcher's own policy path on moto's table, with
nothing stored, nothing enqueued and nothing sent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from functions.broadcast import task_request_messages
from tests.integration.broadcast.conftest import Engine, engine  # noqa: F401 (the fixture)

bulk: Any = task_request_messages.handler


def previews(engine: Engine, lambda_context: Any, *customer_ids: str) -> dict[str, dict[str, Any]]:  # noqa: F811
    requests = [
        {
            "customer_id": c,
            "purpose": "marketing",
            "content": {"email": {"subject": "Hi", "text": "Hi"}, "sms": {"body": "Hi"}},
            "source": "campaign:cmp_1",
            "step": "r1.a",
        }
        for c in customer_ids
    ]
    answer = bulk({"operation": "preview", "requests": requests}, lambda_context, None, engine.dispatcher)
    return {p["customer_id"]: p for p in answer["previews"]}


def test_preview_answers_the_dispatchers_decision_and_stores_nothing(
    engine: Engine,  # noqa: F811
    lambda_context: Any,
) -> None:
    engine.contacts.add("ok")
    engine.contacts.add(
        "night",
        preferences={
            "preferred_channels": ["email"],
            "time_zone": "Asia/Tokyo",
            "quiet_hours": {"start": "21:00", "end": "08:00"},
        },
    )
    engine.contacts.add("refused", consents=[])
    seen = previews(engine, lambda_context, "ok", "night", "refused", "unknown")
    assert (seen["ok"]["outcome"], seen["ok"]["channel"]) == ("send", "email")
    assert seen["night"]["outcome"] == "defer"
    assert seen["night"]["reason"] == "quiet_hours"
    assert datetime.fromisoformat(seen["night"]["until"]) == datetime(2026, 12, 7, 23, 0, tzinfo=UTC)
    assert seen["refused"]["outcome"] == "suppress"
    assert seen["refused"]["reason"] == "no_consent"
    assert seen["unknown"]["outcome"] == "suppress"
    assert engine.store.published == []
    assert engine.queues.bodies == {}
    assert engine.client.scan(TableName="ecrm-broadcast")["Items"] == []


def test_a_preview_and_a_dispatch_of_the_same_request_decide_alike(
    engine: Engine,  # noqa: F811
    lambda_context: Any,
) -> None:
    engine.contacts.add("c1", preferences={"preferred_channels": ["sms"], "time_zone": "Europe/Paris"})
    (seen,) = previews(engine, lambda_context, "c1").values()
    message_id = engine.request(
        "c1", content={"email": {"subject": "Hi", "text": "Hi"}, "sms": {"body": "Hi"}}, data={}
    )
    engine.dispatcher.dispatch([message_id], correlation_id="c")
    message = engine.store.get_message(message_id)
    assert message is not None
    assert (message.status, message.channel) == ("queued", seen["channel"])


def test_a_preview_batch_is_checked_before_anything_is_decided(engine: Engine, lambda_context: Any) -> None:  # noqa: F811
    with pytest.raises(ValidationError):
        bulk({"operation": "preview", "requests": []}, lambda_context, None, engine.dispatcher)
    with pytest.raises(ValidationError):
        bulk({"operation": "preview", "requests": [{"customer_id": "c1"}]}, lambda_context, None, engine.dispatcher)
    assert engine.contacts.card_calls == 0
