"""The sender paces on moto's DynamoDB: a send over the identity's budget is retried later before any claim
(the message stays `queued`, its attempts untouched), and goes out once the clock reaches the next window."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

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


def test_a_batch_takes_its_sends_from_the_window_in_one_write_and_what_is_left_of_a_fuller_one(engine: Engine) -> None:
    # Given a sender pacing email at 14 a second on moto's table, and a window another sender half spent
    def wait(seconds: float) -> None:
        engine.clock.advance(seconds=seconds)

    pacer = Pacer(SendRates(rates={"email": 14}), DynamoPaceCounter(engine.client, TABLE), engine.clock, wait=wait)
    sender = Sender(engine.store, engine.contacts, engine.adapters, engine.clock, engine.settings, pacer=pacer)
    customers = [f"c{n}" for n in range(10)]
    for customer in customers:
        engine.contacts.add(customer)
    ids = [engine.request(c, key=f"k{c}") for c in customers]
    engine.dispatcher.dispatch(ids, correlation_id="c")
    bodies = engine.queues.drain()
    window = int(engine.clock.now().timestamp())
    assert DynamoPaceCounter(engine.client, TABLE).take("email", window, 14, expires_at=window + 60, count=7) == 7
    writes: list[dict[str, Any]] = []
    real_update = engine.client.update_item

    def update_item(**request: Any) -> Any:
        if "PACE#" in str(request["Key"]):
            writes.append(request)
        return real_update(**request)

    engine.client.update_item = update_item

    # When the sender takes the batch of ten
    with sender.batch(bodies):
        outcomes = []
        for body in bodies:
            try:
                outcomes.append(sender.send(body))
            except RetryLater as paced:
                outcomes.append(paced.reason)

    # Then its first send asked for ten, was refused with the window's count, and took the seven left; those
    # seven went; the eighth asked for the last three, found the window spent, waited for the next second and
    # took the three there
    assert outcomes == ["sent"] * 10
    asked = [w["ExpressionAttributeValues"][":n"] for w in writes]
    assert asked == [{"N": "10"}, {"N": "7"}, {"N": "3"}, {"N": "3"}]
    for start, taken in ((window, "14"), (window + 1, "3")):
        key = {"pk": {"S": f"PACE#email#{start}"}, "sk": {"S": "PACE"}}
        assert engine.client.get_item(TableName=TABLE, Key=key)["Item"]["taken"] == {"N": taken}
    assert len(engine.adapters["email"].sent) == 10
