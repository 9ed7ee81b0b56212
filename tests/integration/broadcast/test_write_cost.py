"""What a message's writes cost, on moto: a transition rewrites the status and history, not the content (stored
once, apart), an email send writes no owner record, and what those records served is still served."""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime
from typing import Any

from ecrm.broadcast.erasure import BroadcastErasure
from ecrm.broadcast.store import CONTENT, message_doc
from ecrm.core.erasure import CustomerErasureRequested
from ecrm.core.outbox import messages_in
from ecrm.core.packing import unpack

from tests.integration.broadcast.conftest import NOW, TABLE, Engine
from tests.integration.broadcast.test_pipeline import Feedback

LONG_HTML = "<table>" + "<tr><td>A product</td><td>From 19.99</td></tr>" * 500 + "</table>"  # about 22 KB


def item(engine: Engine, message_id: str, sort_key: str) -> dict[str, Any] | None:
    key = {"pk": {"S": f"MSG#{message_id}"}, "sk": {"S": sort_key}}
    raw = engine.client.get_item(TableName=TABLE, Key=key).get("Item")
    return None if raw is None else {name: next(iter(value.values())) for name, value in raw.items()}


def dynamodb_size(raw: dict[str, Any]) -> int:
    """Bytes as DynamoDB bills an item of string, number and binary attributes: names and values."""
    return sum(
        len(name.encode()) + (len(value) if isinstance(value, bytes) else len(str(value).encode()))
        for name, value in raw.items()
    )


def readable(items: list[dict[str, Any]]) -> str:
    """The table's items as text, compressed attributes (a message's doc and events, a content) unpacked."""

    def value(attribute: dict[str, Any]) -> Any:
        if "B" in attribute:
            return unpack(attribute["B"]).decode()
        return attribute

    return json.dumps([{k: value(v) for k, v in i.items()} for i in items], default=str)


def test_each_transition_rewrites_the_status_and_history_not_the_content(engine: Engine) -> None:
    engine.contacts.add("c1")
    content = {"email": {"subject": "Hello {{ first_name }}", "html": LONG_HTML, "text": "Hi {{ first_name }}"}}
    message_id = engine.request(content=content)
    assert engine.run(message_id) == {message_id: "sent"}
    engine.feedback.apply(Feedback("delivered", message_id))

    # The content was rendered from its own item, written once with the message
    (sent,) = engine.adapters["email"].sent
    assert LONG_HTML in sent.content["html"]
    stored = item(engine, message_id, CONTENT)
    assert stored is not None
    assert json.loads(zlib.decompress(stored["packed"])) == {"content": content, "data": {"offer": "20% off"}}
    assert len(stored["packed"]) < len(LONG_HTML) / 4  # compressed: the write is billed per KB
    # The message item every transition rewrote holds neither, nor what is at its default: under 1 KB
    message = item(engine, message_id, "MESSAGE")
    assert message is not None
    doc = message_doc(message)
    assert not {"content", "data", "opened_at"} & set(doc)
    # With the events of its last transition (ADR 11, "Events in the item they describe"), compressed
    assert [m.detail_type for m in messages_in({"outbox": {"B": message["outbox"]}})] == ["MessageDelivered"]
    assert dynamodb_size(message) < 1024
    view = engine.messages.get(message_id)
    assert [h.status for h in view.history] == ["requested", "queued", "sending", "sent", "delivered"]
    assert engine.store.get_message(message_id, with_content=True).content == content  # type: ignore[union-attr]


def test_a_message_stored_with_its_content_inline_keeps_it_through_its_transitions(engine: Engine) -> None:
    engine.contacts.add("c1")
    message_id = engine.request()
    # As a message requested before the content was stored apart: inline in the doc, no content item
    old = item(engine, message_id, "MESSAGE")
    assert old is not None
    doc = message_doc(old) | {"content": {"email": {"subject": "Old {{ first_name }}", "text": "Old body"}}}
    engine.client.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": f"MSG#{message_id}"},
            "sk": {"S": "MESSAGE"},
            "status": {"S": old["status"]},
            "customer_id": {"S": old["customer_id"]},
            "version": {"N": str(old["version"])},
            "doc": {"S": json.dumps(doc)},
        },
    )
    engine.client.delete_item(TableName=TABLE, Key={"pk": {"S": f"MSG#{message_id}"}, "sk": {"S": CONTENT}})

    assert engine.run(message_id) == {message_id: "sent"}
    assert engine.adapters["email"].sent[0].content["subject"] == "Old Ada"
    after = item(engine, message_id, "MESSAGE")
    assert after is not None
    assert message_doc(after)["content"] == doc["content"]  # the sent transition did not drop it
    assert item(engine, message_id, CONTENT) is None


def test_an_email_send_writes_no_owner_record_and_a_text_does(engine: Engine) -> None:
    engine.contacts.add("c1")
    engine.run(engine.request(key="e"))
    engine.run(engine.request(key="s", channel="sms", content={"sms": {"body": "Sale"}}))
    assert engine.store.owner_of("c1@example.com") is None
    assert engine.store.owner_of("+33612345678") == "c1"


def test_an_ses_subscription_opt_out_finds_its_customer_through_the_message_it_names(engine: Engine) -> None:
    engine.contacts.add("c1")
    message_id = engine.request()
    engine.run(message_id)
    at = datetime(2026, 12, 7, 12, 10, tzinfo=UTC)
    outcome = engine.feedback.apply(Feedback("opted_out", message_id, address="c1@example.com", occurred_at=at))
    assert outcome == "opted_out"
    assert engine.contacts.recorded[0]["consents"] == [{"channel": "email", "purpose": "marketing", "state": "denied"}]
    assert [s.address for s in engine.messages.suppressions(limit=10, cursor=None).items] == ["c1@example.com"]


def test_an_erasure_deletes_the_content_item_with_the_detaching_transition(engine: Engine) -> None:
    engine.contacts.add("c1")
    message_id = engine.request(data={"offer": "a secret offer"})
    engine.run(message_id)
    BroadcastErasure(engine.store, engine.clock).erase(
        CustomerErasureRequested(request_id="era_1", customer_id="c1", customer_ids=["c1"], requested_at=NOW)
    )
    assert item(engine, message_id, CONTENT) is None
    assert "a secret offer" not in readable(engine.client.scan(TableName=TABLE)["Items"])
    kept = engine.store.get_message(message_id, with_content=True)
    assert kept is not None
    assert (kept.customer_id, kept.status, kept.content, kept.data) == ("erased", "sent", {}, {})
