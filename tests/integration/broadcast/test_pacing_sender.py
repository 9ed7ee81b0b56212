"""The sender paces on moto's DynamoDB: a send over the identity's budget is retried later before any claim
(the message stays `queued`, its attempts untouched), and goes out once the clock reaches the next window."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from ecrm.broadcast.channels.pacing import DynamoPaceCounter, Pacer, SendRates
from ecrm.broadcast.sending import RetryLater, Sender

from tests.integration.broadcast.conftest import TABLE, Engine


def test_a_send_over_the_budget_is_retried_later_without_a_claim(engine: Engine) -> None:
    # Given a sender pacing email at one send per two seconds on the engine's table, no in-process wait
    rates = SendRates(rates={"email": 0.5}, max_wait=timedelta(0))
    pacer = Pacer(rates, DynamoPaceCounter(engine.client, TABLE), engine.clock, jitter=random.Random(1))
    sender = Sender(engine.store, engine.contacts, engine.adapters, engine.clock, engine.settings, pacer=pacer)
    for customer in ("c1", "c2"):
        engine.contacts.add(customer)
    first, second = engine.request("c1", key="k1"), engine.request("c2", key="k2")
    engine.dispatcher.dispatch([first, second], correlation_id="c")
    bodies = {b["message_id"]: b for b in engine.queues.drain()}

    # When both are sent in the same window
    assert sender.send(bodies[first]) == "sent"
    with pytest.raises(RetryLater) as paced:
        sender.send(bodies[second])

    # Then the second is retried after the window, untouched: still queued, no attempt counted
    assert paced.value.reason == "paced"
    assert paced.value.delay_s >= 1
    held = engine.store.get_message(second)
    assert held is not None
    assert (held.status, held.attempts) == ("queued", 0)
    assert len(engine.adapters["email"].sent) == 1

    # And once the clock reaches the next window it goes out
    engine.clock.advance(seconds=2)
    assert sender.send(bodies[second]) == "sent"
    assert len(engine.adapters["email"].sent) == 2
