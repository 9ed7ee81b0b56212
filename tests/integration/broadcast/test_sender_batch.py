"""The sender asks the contacts function once per SQS batch for its recipients' cards, not once per record;
a consent withdrawn before the batch is still honoured, and a failed ask falls back to one ask per record."""

from __future__ import annotations

import json
from typing import Any

from ecrm.core.errors import ServiceUnavailable

from functions.broadcast import send_message
from tests.integration.broadcast.conftest import NOW, Engine, suppression_reads
from tests.samples import sqs_batch


def queued_bodies(engine: Engine, count: int) -> list[dict[str, Any]]:
    ids = []
    for n in range(count):
        engine.contacts.add(f"c{n}")
        ids.append(engine.request(f"c{n}", key=f"k{n}"))
    engine.dispatcher.dispatch(ids, correlation_id="c")
    return engine.queues.drain()


def test_one_contacts_call_for_a_batch_of_ten(engine: Engine, lambda_context: Any) -> None:
    bodies = queued_bodies(engine, 10)
    engine.contacts.set_consent("c3", "email", "marketing", "denied")
    before = engine.contacts.card_calls
    handler: Any = send_message.handler
    answer = handler(sqs_batch([json.dumps(b) for b in bodies]), lambda_context, engine.sender)
    assert answer == {"batchItemFailures": []}
    assert engine.contacts.card_calls - before == 1
    assert len(engine.adapters["email"].sent) == 9
    assert engine.messages.get(bodies[3]["message_id"]).reason == "no_consent"


def test_a_failed_batch_ask_falls_back_to_one_ask_per_record(engine: Engine, lambda_context: Any) -> None:
    bodies = queued_bodies(engine, 3)
    real, calls = engine.contacts.cards, []

    def flaky(customer_ids: Any) -> Any:
        calls.append(list(customer_ids))
        if len(calls) == 1:
            raise ServiceUnavailable("the contacts function did not answer")
        return real(customer_ids)

    engine.contacts.cards = flaky  # type: ignore[method-assign]
    handler: Any = send_message.handler
    assert handler(sqs_batch([json.dumps(b) for b in bodies]), lambda_context, engine.sender) == {
        "batchItemFailures": []
    }
    assert [len(c) for c in calls] == [3, 1, 1, 1]
    assert len(engine.adapters["email"].sent) == 3


def test_the_guard_counts_a_batch_of_sends_in_one_write(engine: Engine, lambda_context: Any) -> None:
    bodies = queued_bodies(engine, 10)
    engine.contacts.set_consent("c3", "email", "marketing", "denied")
    counted: list[int] = []
    real = engine.store.count_outcome

    def counting(configuration_set: str, kind: str, at: Any, *, count: int = 1) -> None:
        counted.append(count)
        real(configuration_set, kind, at, count=count)

    engine.store.count_outcome = counting  # type: ignore[method-assign]
    handler: Any = send_message.handler
    assert handler(sqs_batch([json.dumps(b) for b in bodies]), lambda_context, engine.sender) == {
        "batchItemFailures": []
    }
    assert counted == [9]  # one write for the nine sent, none for the one suppressed at send time
    assert engine.store.outcome_counts(engine.settings.configuration_set, engine.clock.now(), 1)["sent"] == 9
    # A send outside a batch (a test send, a direct call) is counted at once
    engine.sender.send(queued_bodies(engine, 11)[-1])
    assert engine.store.outcome_counts(engine.settings.configuration_set, engine.clock.now(), 1)["sent"] == 10


def test_the_suppression_list_is_read_once_for_a_batch_and_still_wins(engine: Engine, lambda_context: Any) -> None:
    # Given ten queued emails, and one recipient's address suppressed after the dispatch (a complaint)
    from ecrm.broadcast.models import Suppression

    bodies = queued_bodies(engine, 10)
    engine.store.suppress(
        Suppression(address=bodies[4]["address"], channel="email", reason="complaint", suppressed_at=NOW)
    )
    reads = suppression_reads(engine)
    # When the sender takes them as one batch
    handler: Any = send_message.handler
    assert handler(sqs_batch([json.dumps(b) for b in bodies]), lambda_context, engine.sender) == {
        "batchItemFailures": []
    }
    # Then the list was read once for the ten addresses, and the suppressed one was not sent
    assert [len(r) for r in reads] == [10]
    assert len(engine.adapters["email"].sent) == 9
    assert engine.messages.get(bodies[4]["message_id"]).reason == "suppressed:complaint"
