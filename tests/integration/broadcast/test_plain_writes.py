"""A message's writes without transactions, on moto: the process dying between them loses nothing and doubles
nothing (ADR 11, "Events in the item they describe"; ADR 12, "What a message's writes cost").

A request writes the content, the customer's index entry, then the message with its `MessageRequested`; a send
writes the caps' record, then the `sent` transition with its `MessageSent`. Each case kills the process (an
exception from the client, as a dying sandbox leaves a call unanswered) at the last write and retries.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from ecrm.broadcast.feedback import SenderStillSending
from ecrm.broadcast.models import MessageRequest
from ecrm.broadcast.sending import RetryLater
from ecrm.broadcast.service import KeyReused
from ecrm.core.outbox import messages_in

from tests.integration.broadcast.conftest import NOW, TABLE, Engine
from tests.integration.broadcast.test_pipeline import Feedback


class Crash(Exception):
    """The process died during the call: the write did not happen."""


class DiesOnce:
    """The engine's DynamoDB client, dying once at the first write of an item with the given sort key."""

    def __init__(self, client: Any, sort_key: str, *, after: str | None = None) -> None:
        self.client = client
        self.sort_key = sort_key
        self.armed = after is None
        self.after = after  # arm only once a write of this status has been seen (the claim, say)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def put_item(self, **kwargs: Any) -> Any:
        item = kwargs["Item"]
        if item["sk"]["S"] == self.sort_key:
            if self.armed:
                self.armed = False
                raise Crash()
            if self.after is not None and item.get("status", {}).get("S") == self.after:
                self.armed, self.after = True, None
        return self.client.put_item(**kwargs)


def message_item(engine: Engine, message_id: str) -> dict[str, Any] | None:
    key = {"pk": {"S": f"MSG#{message_id}"}, "sk": {"S": "MESSAGE"}}
    return engine.client.get_item(TableName=TABLE, Key=key).get("Item")


def test_a_request_dying_before_its_message_is_written_leaves_no_event_and_its_retry_creates_it_once(
    engine: Engine,
) -> None:
    engine.contacts.add("c1")
    engine.store.client = DiesOnce(engine.client, "MESSAGE")
    with pytest.raises(Crash):
        engine.request(key="k1")
    # The content and the index entry were written; no message, so no event for the relay
    assert engine.store.customer_messages("c1", limit=10, cursor=None)[0]
    (message_id,) = engine.store.customer_messages("c1", limit=10, cursor=None)[0]
    assert message_item(engine, message_id) is None
    assert engine.messages.of_customer("c1", limit=10, cursor=None).items == []

    # The client retries (it was answered nothing): one message, one event, one index entry
    assert engine.request(key="k1") == message_id
    assert engine.request(key="k1") == message_id
    item = message_item(engine, message_id)
    assert item is not None
    assert [m.detail_type for m in messages_in(item)] == ["MessageRequested"]
    assert engine.store.customer_messages("c1", limit=10, cursor=None)[0] == [message_id]
    assert engine.run(message_id) == {message_id: "sent"}


def test_another_body_with_the_key_of_a_request_that_died_is_refused_and_overwrites_nothing(engine: Engine) -> None:
    engine.contacts.add("c1")
    engine.store.client = DiesOnce(engine.client, "MESSAGE")
    with pytest.raises(Crash):
        engine.request(key="k1", data={"offer": "first"})
    # Another body under the same key, while the first one's content waits for its retry
    with pytest.raises(KeyReused):
        engine.request(key="k1", data={"offer": "second"})
    # The first one's retry gets its message, with its own data
    message_id = engine.request(key="k1", data={"offer": "first"})
    assert engine.run(message_id) == {message_id: "sent"}
    assert "first" in engine.adapters["email"].sent[0].content["text"]
    with pytest.raises(KeyReused):
        engine.request(key="k1", data={"offer": "second"})


def test_a_sender_dying_after_the_caps_record_before_the_sent_write_sends_once_and_counts_once(
    engine: Engine,
) -> None:
    engine.contacts.add("c1")
    message_id = engine.request()
    engine.dispatcher.dispatch([message_id], correlation_id="c")
    (body,) = engine.queues.drain()
    engine.store.client = DiesOnce(engine.client, "MESSAGE", after="sending")  # the claim lands, `sent` dies
    with pytest.raises(Crash):
        engine.sender.send(body)
    # The provider took it and the caps count it, though the message is still `sending`
    assert len(engine.adapters["email"].sent) == 1
    assert len(engine.store.recent_sends("c1", NOW - timedelta(days=1))) == 1
    assert engine.store.get_message(message_id).status == "sending"  # type: ignore[union-attr]
    # SES's event, tagged with our id, settles it once the dead sender's lease is over (before, it waits); the
    # queue's redelivery then sends nothing and counts nothing
    with pytest.raises(SenderStillSending):
        engine.feedback.apply(Feedback("sent", message_id))
    engine.clock.advance(seconds=engine.settings.lease.total_seconds())
    assert engine.feedback.apply(Feedback("sent", message_id)) == "sent"
    assert engine.sender.send(body) == "duplicate"
    assert len(engine.adapters["email"].sent) == 1
    assert len(engine.store.recent_sends("c1", NOW - timedelta(days=1))) == 1


def test_a_providers_event_beating_the_senders_write_waits_for_it_instead_of_racing_it(engine: Engine) -> None:
    engine.contacts.add("c1")
    message_id = engine.request()
    engine.dispatcher.dispatch([message_id], correlation_id="c")
    (body,) = engine.queues.drain()
    adapter = engine.adapters["email"]
    provider_send = adapter.send
    held: list[SenderStillSending] = []

    def send_then_report(message: Any) -> Any:
        result = provider_send(message)
        # SES's Send (or even Delivery) event is handled before the sender writes `sent`
        for kind in ("sent", "delivered"):
            with pytest.raises(SenderStillSending) as waiting:
                engine.feedback.apply(Feedback(kind, message_id))
            held.append(waiting.value)
        return result

    adapter.send = send_then_report  # type: ignore[method-assign]
    # The sender's own write lands: no stale version, no retried record
    assert engine.sender.send(body) == "sent"
    assert [h.delay_s > 0 for h in held] == [True, True]
    # Delivered again when the lease is over, Send is nothing to do and Delivery moves the message on
    engine.clock.advance(seconds=max(h.delay_s for h in held))
    assert engine.feedback.apply(Feedback("sent", message_id)) == "noop"
    assert engine.feedback.apply(Feedback("delivered", message_id)) == "delivered"
    view = engine.messages.get(message_id)
    assert [h.status for h in view.history] == ["requested", "queued", "sending", "sent", "delivered"]
    assert len(adapter.sent) == 1


def test_a_batch_accepted_several_at_a_time_answers_in_order_and_again_the_same(engine: Engine) -> None:
    bodies = []
    for n in range(30):
        engine.contacts.add(f"c{n}")
        body = {
            "customer_id": f"c{n}",
            "purpose": "marketing",
            "source": "campaign:cmp_1",
            "step": "r1.a",
            "content": {"email": {"subject": "Hello", "text": "Hi {{ first_name }}"}},
        }
        bodies.append(MessageRequest.model_validate(body))
    accepted = engine.messages.request_all(bodies)
    # In the order asked, each the message its key names, whichever thread wrote it
    alone = [engine.messages.request(b, idempotency_key=None, correlation_id=None) for b in bodies]
    assert [a.message_id for a in accepted] == [a.message_id for a in alone]
    assert len(set(a.message_id for a in accepted)) == 30
    # A retried batch answers the same messages and writes no second event
    assert [a.message_id for a in engine.messages.request_all(bodies)] == [a.message_id for a in accepted]
    for a in accepted:
        item = message_item(engine, a.message_id)
        assert item is not None
        assert [m.detail_type for m in messages_in(item)] == ["MessageRequested"]
    assert len(engine.store.of("MessageRequested")) == 30


def test_a_sender_dying_after_the_call_whose_event_came_while_it_held_the_claim_is_never_sent_again(
    engine: Engine,
) -> None:
    engine.contacts.add("c1")
    message_id = engine.request()
    engine.dispatcher.dispatch([message_id], correlation_id="c")
    (body,) = engine.queues.drain()
    adapter = engine.adapters["email"]
    provider_send = adapter.send

    def send_report_and_die(message: Any) -> Any:
        provider_send(message)
        # The provider's Delivery comes while the sender holds the claim: it waits for the sender's write...
        with pytest.raises(SenderStillSending):
            engine.feedback.apply(Feedback("delivered", message_id, provider_message_id="prov-1"))
        raise ConnectionError("the sandbox died after the provider's call")  # ...which never comes

    adapter.send = send_report_and_die  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        engine.sender.send(body)
    adapter.send = provider_send  # type: ignore[method-assign]
    # When the queue hands the record again after the lease and the grace (the event still waiting its turn)
    engine.clock.advance(seconds=int((engine.settings.lease + engine.settings.evidence_grace).total_seconds()) + 1)
    # Then the provider's word settles it: no second send
    assert engine.sender.send(body) == "sent"
    assert len(adapter.sent) == 1
    assert engine.store.get_message(message_id).provider_message_id == "prov-1"  # type: ignore[union-attr]
    # And the event, delivered again, moves it on
    assert engine.feedback.apply(Feedback("delivered", message_id, provider_message_id="prov-1")) == "delivered"


class SandboxDied(BaseException):
    """The sender's sandbox killed mid-batch: nothing after the provider's call runs."""


def test_an_sms_batch_whose_sender_died_after_its_second_call_sends_each_text_once(engine: Engine) -> None:
    # Given three transactional texts handed to the SMS sender in one batch
    ids = []
    for n in range(3):
        engine.contacts.add(f"c{n}", preferences={"preferred_channels": ["sms"], "time_zone": "Europe/Paris"})
        sms = {"sms": {"body": "Your parcel is on its way"}}
        ids.append(engine.request(f"c{n}", key=f"k{n}", purpose="transactional", channel="sms", content=sms))
    engine.dispatcher.dispatch(ids, correlation_id="c")
    bodies = engine.queues.drain()
    adapter = engine.adapters["sms"]
    provider_send = adapter.send

    def dies_after_the_second_call(message: Any) -> Any:
        result = provider_send(message)
        if len(adapter.sent) == 2:
            raise SandboxDied()
        return result

    # When the sandbox dies right after the provider took the second text
    adapter.send = dies_after_the_second_call  # type: ignore[method-assign]

    def run_the_batch() -> None:
        with engine.sender.batch(bodies):
            for body in bodies:
                engine.sender.send(body)

    with pytest.raises(SandboxDied):
        run_the_batch()
    adapter.send = provider_send  # type: ignore[method-assign]
    statuses = [engine.store.get_message(i).status for i in ids]  # type: ignore[union-attr]
    assert statuses == ["sent", "sending", "queued"]
    # And the provider's events come (the second waits for its dead sender), and the whole batch is handed
    # again, again after the lease and the grace, and once more
    assert engine.feedback.apply(Feedback("delivered", ids[0])) == "delivered"
    with pytest.raises(SenderStillSending):
        engine.feedback.apply(Feedback("delivered", ids[1]))
    outcomes = []
    for _ in range(3):
        with engine.sender.batch(bodies):
            for body in bodies:
                try:
                    outcomes.append(engine.sender.send(body))
                except RetryLater:
                    outcomes.append("later")
        engine.clock.advance(seconds=int((engine.settings.lease + engine.settings.evidence_grace).total_seconds()))
    # Then each text went out once: the second settled by the provider's word, the third sent by the retry
    assert outcomes[:3] == ["duplicate", "later", "sent"]
    assert outcomes[3:] == ["duplicate", "sent", "duplicate"] + ["duplicate"] * 3
    assert len(adapter.sent) == 3
