"""Pacing: each provider's budget per window holds across concurrent senders, a full window is waited for on
the clock when it is close and retried later (with jitter) when it is not, and a paced-out send changes
nothing. Time is a `FixedClock` the fake wait moves: nothing sleeps."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ecrm.broadcast.channels.base import OutboundMessage
from ecrm.broadcast.channels.pacing import DynamoPaceCounter, Pacer, SendRates, window_of
from ecrm.core.clock import FixedClock

NOW = datetime(2026, 12, 7, 12, 0, 0, 250_000, tzinfo=UTC)


class MemoryCounter:
    """The DynamoDB counter's rule in memory: one shared dict, as concurrent invocations share the table."""

    def __init__(self) -> None:
        self.taken: Counter[tuple[str, int]] = Counter()
        self.writes = 0

    def take(self, key: str, window_start: int, limit: int, *, expires_at: int, count: int = 1) -> int:
        self.writes += 1
        taken = min(count, limit - self.taken[(key, window_start)])
        if taken <= 0:
            return 0
        self.taken[(key, window_start)] += taken
        return taken


def message(channel: str = "sms", address: str = "+33612345678", country: str | None = "FR") -> OutboundMessage:
    return OutboundMessage(
        message_id="msg_1",
        customer_id="c1",
        channel=channel,
        address=address,
        purpose="marketing",
        topic=None,
        content={"body": "hi"},
        tags={"message_id": "msg_1"},
        country=country,
    )


def pacer(rates: Mapping[str, float], counter: MemoryCounter, clock: FixedClock, **identities: Any) -> Pacer:
    def wait(seconds: float) -> None:
        clock.advance(seconds=seconds)

    return Pacer(SendRates(rates=rates, **identities), counter, clock, wait=wait, jitter=random.Random(7))


def test_the_key_is_the_origination_identity_of_the_destinations_country() -> None:
    # Given identities per country, and a voice origination of its own
    rates = SendRates(
        rates={"sms:+33700000001": 5, "sms:*": 1, "email": 14},
        origination_identities={"FR": "+33700000001", "*": "pool-default"},
        voice_origination="+15550100",
    )
    # Then a French text paces on the French number, an American one on the default identity's key
    assert rates.key_of(message()) == "sms:+33700000001"
    assert rates.rate_of("sms:+33700000001") == 5
    assert rates.key_of(message(address="+12025550100", country="US")) == "sms:pool-default"
    assert rates.rate_of("sms:pool-default") == 1  # `sms:*` covers identities not named
    # And a call paces on the voice origination, email on the account, push not at all
    assert rates.key_of(message("voice")) == "voice:+15550100"
    assert rates.rate_of("voice:+15550100") is None
    assert rates.key_of(message("email", "a@example.com")) == "email"
    assert rates.rate_of("email") == 14
    assert rates.rate_of("push") is None


def test_rates_below_one_a_second_widen_the_window() -> None:
    assert window_of(14) == (1, 14)
    assert window_of(2.5) == (1, 2)
    assert window_of(0.5) == (2, 1)
    assert window_of(0.2) == (5, 1)


@pytest.mark.parametrize("text", ['{"email": 0}', '{"sms:*": -1}', '{"email": "fast"}', '{"email": true}', "[1]"])
def test_a_rate_that_is_not_a_positive_number_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="send rate"):
        SendRates.parse(text)


def test_concurrent_senders_share_one_budget_per_identity_and_second() -> None:
    # Given three senders (three Lambda invocations) on one counter, the French number at 2 per second
    clock, counter = FixedClock(NOW), MemoryCounter()
    rates = {"sms:+33700000001": 2}
    senders = [pacer(rates, counter, clock, origination_identities={"FR": "+33700000001"}) for _ in range(3)]
    # When 12 texts are admitted in turn by the three
    admitted_at = []
    for n in range(12):
        assert senders[n % 3].admit(message()) is None
        admitted_at.append(int(clock.now().timestamp()))
    # Then no second held more than 2 and the 12 took 6 seconds of the clock, not one
    per_second = Counter(admitted_at)
    assert max(per_second.values()) == 2
    assert len(per_second) == 6


def test_a_full_window_far_away_is_retried_later_with_jitter_and_nothing_waits() -> None:
    # Given a rate of one send every five seconds, already spent for this window
    clock, counter = FixedClock(NOW), MemoryCounter()
    paced = pacer({"sms:*": 0.2}, counter, clock)
    assert paced.admit(message()) is None
    # When the next send asks
    retry_in = paced.admit(message())
    # Then it is told to come back after the window (and up to one window of jitter), the clock untouched
    assert retry_in is not None
    assert 5 <= retry_in <= 10
    assert clock.now() == NOW


def test_unpaced_channels_take_nothing_from_any_budget() -> None:
    clock, counter = FixedClock(NOW), MemoryCounter()
    paced = pacer({"email": 1}, counter, clock)
    assert [paced.admit(message("push", "arn:aws:sns:endpoint")) for _ in range(5)] == [None] * 5
    assert not counter.taken


class ConditionalFailure(Exception):
    response = {"Error": {"Code": "ConditionalCheckFailedException", "Message": "The conditional request failed"}}


class RecordingClient:
    def __init__(self, fail: Exception | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail = fail

    def update_item(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        if self.fail:
            raise self.fail
        return {}


def test_the_dynamodb_counter_is_one_conditional_add_per_take_keyed_by_the_window() -> None:
    client = RecordingClient()
    taken = DynamoPaceCounter(client, "table").take("sms:+33700000001", 1_765_000_000, 3, expires_at=1_765_003_600)
    assert taken == 1
    (request,) = client.requests
    assert request["Key"] == {"pk": {"S": "PACE#sms:+33700000001#1765000000"}, "sk": {"S": "PACE"}}
    assert request["ConditionExpression"] == "attribute_not_exists(taken) OR taken <= :room"
    assert request["ExpressionAttributeValues"][":n"] == {"N": "1"}
    assert request["ExpressionAttributeValues"][":room"] == {"N": "2"}


def test_a_spent_window_answers_nothing_taken_and_other_errors_propagate() -> None:
    assert DynamoPaceCounter(RecordingClient(ConditionalFailure()), "t").take("email", 1, 1, expires_at=2) == 0
    with pytest.raises(RuntimeError):
        DynamoPaceCounter(RecordingClient(RuntimeError("boom")), "t").take("email", 1, 1, expires_at=2)


def test_a_short_wait_for_the_next_window_is_taken_on_the_clock() -> None:
    # Given one text a second, spent for the current second, and a quarter of it gone
    clock, counter = FixedClock(NOW), MemoryCounter()
    paced = pacer({"sms:*": 1}, counter, clock)
    assert paced.admit(message()) is None
    # When the next text asks
    assert paced.admit(message()) is None
    # Then it waited to the next second (0.75 s on the clock) and took that second's budget
    assert clock.now() == NOW.replace(microsecond=0) + timedelta(seconds=1)


def test_a_batch_takes_its_sends_of_a_key_in_one_write_and_spends_them_in_their_window() -> None:
    # Given 14 emails a second and a sender told its batch holds ten emails and two pushes
    clock, counter = FixedClock(NOW), MemoryCounter()
    paced = pacer({"email": 14}, counter, clock)
    emails = [message("email", f"c{n}@example.com") for n in range(10)]
    paced.expect([*emails, message("push", "arn:aws:sns:endpoint"), message("push", "arn:aws:sns:endpoint")])
    # When the ten are admitted
    assert [paced.admit(m) for m in emails] == [None] * 10
    # Then the window's budget was taken once for the ten, and the unpaced pushes took nothing
    assert counter.writes == 1
    assert counter.taken == Counter({("email", int(NOW.timestamp())): 10})


def test_a_batch_allowance_never_outlives_its_window_nor_overspends_a_shared_one() -> None:
    # Given two senders on one counter at 14 emails a second, each with a batch of ten
    clock, counter = FixedClock(NOW), MemoryCounter()
    first, second = pacer({"email": 14}, counter, clock), pacer({"email": 14}, counter, clock)
    batch = [message("email", f"c{n}@example.com") for n in range(10)]
    first.expect(batch)
    second.expect(batch)
    # When the first admits four, the second its ten, then the first its last six
    admitted_at = [int(clock.now().timestamp()) for m in batch[:4] if first.admit(m) is None]
    admitted_at += [int(clock.now().timestamp()) for m in batch if second.admit(m) is None]
    admitted_at += [int(clock.now().timestamp()) for m in batch[4:] if first.admit(m) is None]
    # Then every send went and no second held more than 14: the second sender got the four the first had left
    # of the first second and waited for the next; the first's six unspent ones died with their window (eight
    # sends in a second whose budget is spent: a window left unused, never overspent) and its last six took
    # from the next second's budget
    assert len(admitted_at) == 20
    start = int(NOW.timestamp())
    assert Counter(admitted_at) == Counter({start: 8, start + 1: 12})
    assert counter.taken == Counter({("email", start): 14, ("email", start + 1): 12})


def test_a_take_that_does_not_fit_takes_what_the_window_has_left() -> None:
    # Given a window of 14 holding 11 already (the refusal returns the item, as DynamoDB does when asked)
    class Refusing(RecordingClient):
        def update_item(self, **request: Any) -> dict[str, Any]:
            self.requests.append(request)
            if request["ExpressionAttributeValues"][":n"] != {"N": "3"}:
                error = ConditionalFailure()
                error.response = {**ConditionalFailure.response, "Item": {"taken": {"N": "11"}}}  # type: ignore[dict-item]
                raise error
            return {}

    client = Refusing()
    # When a batch asks for ten
    taken = DynamoPaceCounter(client, "t").take("email", 1, 14, expires_at=2, count=10)
    # Then it got the three left, in a second conditional write
    assert taken == 3
    assert [r["ExpressionAttributeValues"][":room"] for r in client.requests] == [{"N": "4"}, {"N": "11"}]
    assert client.requests[0]["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"
