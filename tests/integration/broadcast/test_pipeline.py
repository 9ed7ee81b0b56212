"""Request -> policy -> queue -> send -> feedback on moto, with the fault cases that must send once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ecrm.broadcast.channels.base import ChannelError
from ecrm.broadcast.feedback import SenderStillSending
from ecrm.broadcast.models import MessageRequest
from ecrm.broadcast.sending import RetryLater
from ecrm.broadcast.service import KeyReused
from ecrm.broadcast.tokens import read_link
from ecrm.core.errors import InvalidInput

from tests.integration.broadcast.conftest import SECRET, Engine


@dataclass(frozen=True)
class Feedback:
    kind: str
    message_id: str | None
    channel: str = "email"
    address: str | None = None
    occurred_at: datetime = datetime(2026, 12, 7, 12, 5, tzinfo=UTC)
    permanent: bool = False
    provider_message_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


# -- requests ------------------------------------------------------------------------------------------------
def test_the_same_key_and_body_is_the_same_message_and_another_body_is_refused(engine: Engine) -> None:
    engine.contacts.add("c1")
    first = engine.request(key="order-1")
    assert engine.request(key="order-1") == first
    assert len(engine.store.of("MessageRequested")) == 1
    with pytest.raises(KeyReused):
        engine.request(key="order-1", data={"offer": "something else"})
    assert engine.store.get_message(first, with_content=True).data == {"offer": "20% off"}  # type: ignore[union-attr]


def test_a_campaign_rerun_addresses_the_same_messages(engine: Engine) -> None:
    a = engine.request("c1", key="x", source="campaign:winter")
    b = engine.request("c1", key="y", source="campaign:winter")
    c = engine.request("c1", key="y", source="campaign:winter", step="2")
    assert a == b != c


def test_a_template_that_does_not_compile_is_refused_before_anything_is_saved(engine: Engine) -> None:
    with pytest.raises(InvalidInput):
        engine.request(content={"email": {"subject": "{% if %}", "text": "x"}})
    assert engine.store.published == []


# -- the pipeline ---------------------------------------------------------------------------------------------
def test_a_marketing_email_is_rendered_signed_and_sent_once(engine: Engine) -> None:
    engine.contacts.add("c1")
    message_id = engine.request()
    assert engine.run(message_id) == {message_id: "sent"}
    sent = engine.adapters["email"].sent
    assert len(sent) == 1
    assert sent[0].content["subject"] == "Hello Ada"
    assert sent[0].content["text"] == "Hi Ada, 20% off"
    assert sent[0].address == "c1@example.com"
    assert sent[0].unsubscribe_url is not None
    token = read_link([SECRET], sent[0].unsubscribe_url.split("token=")[1], now=engine.clock.now())
    assert (token.kind, token.customer_id, token.channel) == ("unsubscribe", "c1", "email")
    view = engine.messages.get(message_id)
    assert [h.status for h in view.history] == ["requested", "queued", "sending", "sent"]
    assert [e.detail_type for e in engine.store.published] == ["MessageRequested", "MessageSent"]
    assert engine.messages.of_customer("c1", limit=10, cursor=None).items[0].message_id == message_id


def test_a_redelivered_request_event_and_a_duplicated_queue_record_send_once(engine: Engine) -> None:
    engine.contacts.add("c1")
    message_id = engine.request()
    engine.dispatcher.dispatch([message_id], correlation_id="c")
    engine.dispatcher.dispatch([message_id], correlation_id="c")  # the event again: queued, enqueued again
    bodies = engine.queues.drain()
    assert len(bodies) == 2
    outcomes = [engine.sender.send(b) for b in [*bodies, bodies[0]]]
    assert outcomes == ["sent", "duplicate", "duplicate"]
    assert len(engine.adapters["email"].sent) == 1


def test_throttling_releases_the_claim_and_the_retry_sends_once(engine: Engine) -> None:
    engine.contacts.add("c1")
    engine.adapters["email"].script = {0: ChannelError("Rate exceeded", permanent=False, throttled=True)}
    message_id = engine.request()
    engine.dispatcher.dispatch([message_id], correlation_id="c")
    (body,) = engine.queues.drain()
    with pytest.raises(RetryLater) as retry:
        engine.sender.send(body)
    assert 1 <= retry.value.delay_s <= engine.settings.retry_max_s
    assert engine.store.get_message(message_id).status == "queued"  # type: ignore[union-attr]
    assert engine.sender.send(body) == "sent"
    assert len(engine.adapters["email"].sent) == 1


def test_a_crash_after_the_provider_call_is_settled_by_the_providers_event_not_by_a_second_send(
    engine: Engine,
) -> None:
    engine.contacts.add("c1")
    message_id = engine.request()
    engine.dispatcher.dispatch([message_id], correlation_id="c")
    (body,) = engine.queues.drain()

    class Crash(Exception):
        pass

    original = engine.store.save_transition
    calls = {"n": 0}

    def crash_on_settle(message: Any, events: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the claim is write 1, the settle write 2
            raise Crash()
        original(message, events, **kwargs)

    engine.store.save_transition = crash_on_settle  # type: ignore[method-assign]
    with pytest.raises(Crash):
        engine.sender.send(body)
    engine.store.save_transition = original  # type: ignore[method-assign]
    # the redelivery within the lease and grace waits
    with pytest.raises(RetryLater):
        engine.sender.send(body)
    # SES's own Send event, tagged with our id, waits the sender's lease out (the queue delivers it again then)
    with pytest.raises(SenderStillSending) as held:
        engine.feedback.apply(Feedback("sent", message_id))
    assert 0 < held.value.delay_s <= engine.settings.lease.total_seconds() + 1
    # and then settles it, within the grace a retried send waits for that evidence
    engine.clock.advance(seconds=held.value.delay_s)
    assert engine.feedback.apply(Feedback("sent", message_id)) == "sent"
    assert engine.sender.send(body) == "duplicate"
    assert len(engine.adapters["email"].sent) == 1


def test_a_consent_withdrawn_after_the_decision_is_honoured_at_send_time(engine: Engine) -> None:
    engine.contacts.add("c1")
    message_id = engine.request()
    engine.dispatcher.dispatch([message_id], correlation_id="c")
    engine.contacts.set_consent("c1", "email", "marketing", "denied")
    (body,) = engine.queues.drain()
    assert engine.sender.send(body) == "suppressed"
    assert engine.adapters["email"].sent == []
    (suppressed,) = engine.store.of("MessageSuppressed")
    assert suppressed.reason == "no_consent"


def test_quiet_hours_defer_and_the_release_sends_at_the_local_morning(engine: Engine) -> None:
    engine.contacts.add(
        "c1",
        preferences={
            "preferred_channels": ["email"],
            "time_zone": "Asia/Tokyo",
            "quiet_hours": {"start": "21:00", "end": "08:00"},
        },
    )
    message_id = engine.request()
    assert engine.run(message_id) == {}
    message = engine.store.get_message(message_id)
    assert message is not None
    assert (message.status, message.reason) == ("deferred", "quiet_hours")
    assert message.deferred_until == datetime(2026, 12, 7, 23, 0, tzinfo=UTC)
    (deferred,) = engine.store.of("MessageDeferred")
    assert deferred.until == message.deferred_until
    assert engine.store.due_deferrals(engine.clock.now()) == []
    engine.clock.advance(hours=11)
    due = engine.store.due_deferrals(engine.clock.now())
    assert len(due) == 1
    assert engine.run(message_id) == {message_id: "sent"}


def test_a_permanent_refusal_fails_with_its_code(engine: Engine) -> None:
    engine.contacts.add("c1")
    engine.adapters["email"].script = {0: ChannelError("bad address", permanent=True, code="MessageRejected")}
    message_id = engine.request()
    assert engine.run(message_id) == {message_id: "failed"}
    assert engine.messages.get(message_id).reason == "permanent:MessageRejected"


def test_transactional_in_app_goes_to_the_inbox_store(engine: Engine) -> None:
    engine.contacts.add("c1", preferences={"preferred_channels": ["in_app"]})
    engine.sender.adapters = {**engine.adapters, "in_app": _InboxAdapter(engine)}
    message_id = engine.request(
        purpose="transactional", content={"in_app": {"title": "Hi", "body": "{{ first_name }}"}}
    )
    assert engine.run(message_id) == {message_id: "sent"}
    inbox = engine.messages.inbox("c1")
    assert (inbox.unread, inbox.items[0].body) == (1, "Ada")
    engine.messages.mark_read("c1", message_id)
    assert engine.messages.inbox("c1").unread == 0


class _InboxAdapter:
    channel = "in_app"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def send(self, message: Any) -> Any:
        from ecrm.broadcast.channels.base import SendResult

        return SendResult(provider_message_id=self.engine.store.deliver(message))


# -- feedback --------------------------------------------------------------------------------------------------
def test_a_hard_bounce_suppresses_the_address_and_the_next_message_is_not_sent(engine: Engine) -> None:
    engine.contacts.add("c1")
    first = engine.request(key="a")
    engine.run(first)
    assert engine.feedback.apply(Feedback("bounced", first, address="c1@example.com", permanent=True)) == "bounced"
    assert engine.feedback.apply(Feedback("bounced", first, address="c1@example.com", permanent=True)) == "noop"
    assert [s.address for s in engine.messages.suppressions(limit=10, cursor=None).items] == ["c1@example.com"]
    second = engine.request(key="b", channel="email")
    engine.run(second)
    assert engine.messages.get(second).reason == "suppressed:hard_bounce"
    engine.messages.unsuppress("C1@example.com")
    assert engine.messages.suppressions(limit=10, cursor=None).items == []


def test_opens_and_clicks_are_recorded_once_each(engine: Engine) -> None:
    engine.contacts.add("c1")
    message_id = engine.request()
    engine.run(message_id)
    engine.feedback.apply(Feedback("delivered", message_id))
    for _ in range(2):
        engine.feedback.apply(Feedback("opened", message_id))
        engine.feedback.apply(Feedback("clicked", message_id, detail={"link": "https://shop.example.com/a"}))
    engine.feedback.apply(Feedback("clicked", message_id, detail={"link": "https://shop.example.com/b"}))
    assert len(engine.store.of("MessageOpened")) == 1
    assert [e.link for e in engine.store.of("MessageClicked")] == [
        "https://shop.example.com/a",
        "https://shop.example.com/b",
    ]
    assert engine.messages.get(message_id).status == "delivered"


def test_a_complaint_suppresses_withdraws_the_consent_and_announces_it(engine: Engine) -> None:
    engine.contacts.add("c1")
    message_id = engine.request()
    engine.run(message_id)
    engine.feedback.apply(Feedback("complained", message_id, address="c1@example.com"))
    assert engine.contacts.recorded[0]["consents"] == [{"channel": "email", "purpose": "marketing", "state": "denied"}]
    (unsubscribed,) = engine.store.of("CustomerUnsubscribed")
    assert (unsubscribed.method, unsubscribed.channel) == ("complaint", "email")


def test_an_sms_stop_suppresses_the_number_and_withdraws_the_sms_consent(engine: Engine) -> None:
    engine.contacts.add("c1", preferences={"preferred_channels": ["sms"], "time_zone": "Europe/Paris"})
    message_id = engine.request(content={"sms": {"body": "Sale {{ first_name }}"}})
    assert engine.run(message_id) == {message_id: "sent"}
    engine.feedback.apply(Feedback("opted_out", None, channel="sms", address="+33612345678"))
    assert engine.contacts.recorded[0]["recorded_by"] == "sms_stop"
    second = engine.request(key="k2", content={"sms": {"body": "Again"}})
    engine.run(second)
    assert engine.messages.get(second).reason == "no_consent"


def test_the_guard_pauses_marketing_email_above_the_bounce_threshold(engine: Engine) -> None:
    for n in range(10):
        engine.contacts.add(f"c{n}")
        engine.run(engine.request(f"c{n}", key=f"k{n}"))
    bounced = engine.store.customer_messages("c0", limit=1, cursor=None)[0][0]
    engine.feedback.apply(Feedback("bounced", bounced, address="c0@example.com", permanent=True))
    assert engine.store.paused_until("ecrm") == engine.clock.now() + timedelta(hours=1)
    engine.contacts.add("late")
    later = engine.request("late", key="late")
    engine.run(later)
    assert engine.messages.get(later).reason == "paused"


# -- links ------------------------------------------------------------------------------------------------------
def test_one_click_unsubscribe_withdraws_once_and_the_preference_centre_changes_consents(engine: Engine) -> None:
    engine.contacts.add("c1")
    message_id = engine.request(topic="news")
    engine.run(message_id)
    url = engine.adapters["email"].sent[0].unsubscribe_url
    assert url is not None
    token = url.split("token=")[1]
    engine.centre.unsubscribe(token, correlation_id="c")
    engine.centre.unsubscribe(token, correlation_id="c")
    assert len(engine.contacts.recorded) == 1
    assert engine.contacts.recorded[0]["consents"] == [{"channel": "email", "purpose": "topic:news", "state": "denied"}]
    page = engine.centre.page(token)
    assert 'value="email|marketing" checked' in page
    assert 'value="email|topic:news">' in page
    engine.centre.update(token, {"consent": ["email|topic:news"]}, correlation_id="c")
    assert ("email", "marketing") not in {
        (c["channel"], c["purpose"]) for c in engine.contacts.cards_by_id["c1"]["consents"] if c["state"] == "granted"
    }
    with pytest.raises(InvalidInput):
        engine.centre.unsubscribe(token[:-2] + "xx", correlation_id="c")


def test_request_bodies_name_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="email content needs subject"):
        MessageRequest.model_validate(
            {"customer_id": "c1", "purpose": "marketing", "content": {"email": {"text": "x"}}}
        )
    with pytest.raises(ValueError, match="forced channel sms has no content"):
        MessageRequest.model_validate(
            {
                "customer_id": "c1",
                "purpose": "marketing",
                "channel": "sms",
                "content": {"email": {"subject": "s", "text": "x"}},
            }
        )
