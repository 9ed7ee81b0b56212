"""The dispatcher decides a queue batch of `MessageRequested` at once (functions/broadcast/on_message_requested.py).

Through the handler, on the real store (moto): one dispatch and one ask for cards for the whole batch, each
message queued once however often its event is in the batch, each message's writes under its own request's
correlation id; a record that does not parse is reported alone, a batch whose dispatch failed is reported
whole, and its redelivery queues each message once.
"""

from __future__ import annotations

from typing import Any

import pytest
from ecrm.broadcast.models import MessageRequested
from ecrm.broadcast.sending import Dispatcher

from functions.broadcast import on_message_requested
from tests.integration.broadcast.conftest import NOW, Engine, suppression_reads
from tests.outcome_counts import bus_body
from tests.samples import sqs_batch


def requested_of(engine: Engine, message_id: str) -> MessageRequested:
    (event,) = [e for e in engine.store.of("MessageRequested") if e.message_id == message_id]
    return event  # type: ignore[no-any-return]


def batch_of(engine: Engine, entries: list[tuple[str, str]], *, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """A queue batch: (message id, correlation id) per record, the same message's event as often as listed."""
    bodies = [bus_body(requested_of(engine, m), event_id=f"ev-{m}", at=NOW, correlation_id=c) for m, c in entries]
    bodies += extra
    return sqs_batch(bodies, message_ids=[f"rec-{n}" for n in range(len(bodies))])


class CountingDispatcher(Dispatcher):
    """The real dispatcher, counting its calls; `failing` makes each call raise (the customer store unanswered)."""

    def __init__(self, engine: Engine, *, failing: bool = False) -> None:
        super().__init__(
            engine.store,
            engine.contacts,
            engine.queues,
            engine.clock,
            engine.settings,
            channels=engine.dispatcher.channels,
        )
        self.calls: list[list[str]] = []
        self.failing = failing

    def dispatch(self, message_ids: Any, **kwargs: Any) -> dict[str, str]:
        self.calls.append(sorted(message_ids))
        if self.failing:
            raise RuntimeError("the customer store did not answer")
        return super().dispatch(message_ids, **kwargs)


def customers(engine: Engine, count: int) -> list[str]:
    for n in range(count):
        engine.contacts.add(f"c{n}")
    return [engine.request(f"c{n}", key=f"k{n}") for n in range(count)]


def test_a_batch_is_decided_at_once_each_message_queued_once_under_its_own_correlation_id(
    engine: Engine, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three messages of two requests, the first one's event delivered twice in the batch
    first, second, third = customers(engine, 3)
    event = batch_of(engine, [(first, "run-a"), (second, "run-a"), (first, "run-a"), (third, "run-b")])
    dispatcher = CountingDispatcher(engine)
    cards_before = engine.contacts.card_calls
    written: list[tuple[str, str | None]] = []
    save = engine.store.save_transition

    def recording(message: Any, events: Any, **kwargs: Any) -> None:
        written.append((message.message_id, kwargs.get("correlation_id")))
        save(message, events, **kwargs)

    monkeypatch.setattr(engine.store, "save_transition", recording)
    # When the handler takes the batch
    answer = on_message_requested.handler(event, lambda_context, injected=dispatcher)
    # Then nothing failed, the batch was decided in one call and the cards asked once
    assert answer == {"batchItemFailures": []}
    assert dispatcher.calls == [sorted([first, second, third])]
    assert engine.contacts.card_calls - cards_before == 1
    # And each message was queued once, written under its own request's correlation id
    assert sorted(b["message_id"] for b in engine.queues.drain()) == sorted([first, second, third])
    assert sorted(written) == sorted([(first, "run-a"), (second, "run-a"), (third, "run-b")])
    assert {engine.store.get_message(m).status for m in (first, second, third)} == {"queued"}  # type: ignore[union-attr]


def test_an_unreadable_record_fails_alone_a_failed_dispatch_the_batch_and_redelivery_queues_once(
    engine: Engine, lambda_context: Any
) -> None:
    # Given a batch of two requests' messages and a record of another shape
    first, second, third = customers(engine, 3)
    entries = [(first, "run-a"), (second, "run-b"), (third, "run-b")]
    unreadable = on_message_requested.handler(
        batch_of(engine, entries, extra=('{"not": "an event"}',)), lambda_context, injected=CountingDispatcher(engine)
    )
    # Then the record of another shape alone is reported, and the messages are queued
    assert unreadable == {"batchItemFailures": [{"itemIdentifier": "rec-3"}]}
    assert sorted(b["message_id"] for b in engine.queues.drain()) == sorted([first, second, third])
    # When the same batch comes again and its dispatch fails
    failed = on_message_requested.handler(
        batch_of(engine, entries), lambda_context, injected=CountingDispatcher(engine, failing=True)
    )
    # Then every record is reported for the queue to deliver again, and nothing was queued
    assert sorted(f["itemIdentifier"] for f in failed["batchItemFailures"]) == ["rec-0", "rec-1", "rec-2"]
    assert engine.queues.drain() == []
    # And delivered again, each message (already queued) is enqueued again once, for its sender to drop
    again = on_message_requested.handler(batch_of(engine, entries), lambda_context, injected=CountingDispatcher(engine))
    assert again == {"batchItemFailures": []}
    bodies = engine.queues.drain()
    assert sorted(b["message_id"] for b in bodies) == sorted([first, second, third])
    assert {engine.sender.send(b) for b in bodies} == {"sent"}
    assert {engine.sender.send(b) for b in bodies} == {"duplicate"}


def test_the_suppression_list_is_read_once_for_the_batch_and_still_wins(engine: Engine, lambda_context: Any) -> None:
    from ecrm.broadcast.models import Suppression

    # Given three requested emails, the second recipient's address on the suppression list
    first, second, third = customers(engine, 3)
    engine.store.suppress(
        Suppression(address="c1@example.com", channel="email", reason="hard_bounce", suppressed_at=NOW)
    )
    reads = suppression_reads(engine)
    # When the handler decides the batch
    entries = [(first, "run"), (second, "run"), (third, "run")]
    answer = on_message_requested.handler(
        batch_of(engine, entries), lambda_context, injected=CountingDispatcher(engine)
    )
    # Then the list was read once, for every address of the three cards, and the listed one was suppressed
    assert answer == {"batchItemFailures": []}
    assert reads == [["+33612345678", "c0@example.com", "c1@example.com", "c2@example.com"]]
    assert [b["message_id"] for b in engine.queues.drain()] == [first, third]
    assert (engine.store.get_message(second).status, engine.store.get_message(second).reason) == (  # type: ignore[union-attr]
        "suppressed",
        "suppressed:hard_bounce",
    )
