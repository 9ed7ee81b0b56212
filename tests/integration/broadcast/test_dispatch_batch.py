"""The dispatcher decides a queue batch of `MessageRequested` at once (functions/broadcast/on_message_requested.py).

Through the handler, on the real store (moto): one read of the batch's messages and one ask for their cards
for each request's group, each message queued once however often its event is in the batch, each group's
events under its own correlation id; a record that does not parse, or a group that fails, is reported in
`batchItemFailures` alone, and its redelivery queues nothing twice.
"""

from __future__ import annotations

from typing import Any

from ecrm.broadcast.models import MessageRequested
from ecrm.broadcast.sending import Dispatcher

from functions.broadcast import on_message_requested
from tests.integration.broadcast.conftest import NOW, Engine
from tests.outcome_counts import bus_body
from tests.samples import sqs_batch


def requested_of(engine: Engine, message_id: str) -> MessageRequested:
    (event,) = [e for e in engine.store.of("MessageRequested") if e.message_id == message_id]
    return event  # type: ignore[no-any-return]


def batch_of(engine: Engine, entries: list[tuple[str, str]], *, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """A queue batch: (message id, correlation id) per record, the same message's event as often as listed."""
    bodies = [
        bus_body(requested_of(engine, m), event_id=f"ev-{m}", at=NOW, correlation_id=c) for m, c in entries
    ] + list(extra)
    return sqs_batch(bodies, message_ids=[f"rec-{n}" for n in range(len(bodies))])


class CountingDispatcher(Dispatcher):
    """The real dispatcher, counting its calls; `fail_for` makes a group with that correlation id fail."""

    def __init__(self, engine: Engine, fail_for: str | None = None) -> None:
        super().__init__(
            engine.store,
            engine.contacts,
            engine.queues,
            engine.clock,
            engine.settings,
            channels=engine.dispatcher.channels,
        )
        self.calls: list[tuple[list[str], str | None]] = []
        self.fail_for = fail_for

    def dispatch(self, message_ids: Any, *, correlation_id: str | None) -> dict[str, str]:
        self.calls.append((sorted(message_ids), correlation_id))
        if correlation_id == self.fail_for:
            raise RuntimeError("the customer store did not answer")
        return super().dispatch(message_ids, correlation_id=correlation_id)


def customers(engine: Engine, count: int) -> list[str]:
    for n in range(count):
        engine.contacts.add(f"c{n}")
    return [engine.request(f"c{n}", key=f"k{n}") for n in range(count)]


def test_a_batch_is_decided_per_request_once_each_message_queued_once(engine: Engine, lambda_context: Any) -> None:
    # Given three messages of two requests, the first one's event delivered twice in the batch
    first, second, third = customers(engine, 3)
    event = batch_of(engine, [(first, "run-a"), (second, "run-a"), (first, "run-a"), (third, "run-b")])
    dispatcher = CountingDispatcher(engine)
    cards_before = engine.contacts.card_calls
    # When the handler takes the batch
    answer = on_message_requested.handler(event, lambda_context, injected=dispatcher)
    # Then nothing failed, each request's group was decided in one call with its own correlation id
    assert answer == {"batchItemFailures": []}
    assert sorted(dispatcher.calls, key=lambda c: str(c[1])) == [
        (sorted([first, second, first]), "run-a"),
        ([third], "run-b"),
    ]
    # And the cards were asked once per group, each message queued once
    assert engine.contacts.card_calls - cards_before == 2
    assert sorted(b["message_id"] for b in engine.queues.drain()) == sorted([first, second, third])
    assert {engine.store.get_message(m).status for m in (first, second, third)} == {"queued"}  # type: ignore[union-attr]


def test_a_failing_group_and_an_unreadable_record_are_reported_alone_and_redelivery_queues_once(
    engine: Engine, lambda_context: Any
) -> None:
    # Given a batch with two requests' messages and a record of another shape
    first, second, third = customers(engine, 3)
    entries = [(first, "run-a"), (second, "run-b"), (third, "run-b")]
    event = batch_of(engine, entries, extra=('{"not": "an event"}',))
    # When the group of run-b fails (its dispatch raised)
    answer = on_message_requested.handler(event, lambda_context, injected=CountingDispatcher(engine, fail_for="run-b"))
    # Then only its records and the unreadable one are reported failed; run-a's message is queued
    assert sorted(f["itemIdentifier"] for f in answer["batchItemFailures"]) == ["rec-1", "rec-2", "rec-3"]
    assert [b["message_id"] for b in engine.queues.drain()] == [first]
    # And when the queue delivers the whole batch again (the failed records and, say, a duplicate of the first)
    again = on_message_requested.handler(batch_of(engine, entries), lambda_context, injected=CountingDispatcher(engine))
    # Then run-b's messages are queued, and the first, already queued, is only enqueued again for its sender to drop
    assert again == {"batchItemFailures": []}
    queued = sorted(b["message_id"] for b in engine.queues.drain())
    assert queued == sorted([first, second, third])
    assert [engine.store.get_message(m).status for m in (first, second, third)] == ["queued"] * 3  # type: ignore[union-attr]
