"""Pacing sends to what the providers take (ADR 12): the SES account's send rate and each End User
Messaging origination identity's messages per second.

Rates are configuration, per pacing key: `email` (the SES account), `sms:<identity>` and `voice:<identity>`
(the origination identity a send uses: the country's, else `*`'s), `sms:*` and `voice:*` for any identity
not named, and a bare channel name (`whatsapp`, `push`) for the others. A key with no rate is not paced.

Senders run as many concurrent Lambda invocations, so the budget is shared state: one DynamoDB item per
key and window (`PACE#<key>#<window start>` / `PACE`, TTL `expires_at`), taken with one conditional
`ADD` that fails once the window's budget is spent. The window is a second (a rate of 0.5 is one send per
two-second window); the second is in the partition key, so a hot key spreads over partitions instead of
heating one. A send finding its window full waits for the next window in-process when that is close
(`max_wait`), else asks to be retried then (plus jitter, so the waiting records do not all return in the
same second).

A sender taking a queue batch tells the pacer what it holds (`Pacer.expect`): the first send of a key takes
the batch's sends of that key from the window in the same one write (as many as the window has left, up to
its budget), and the next sends spend that allowance without a write while the window lasts. An allowance
is only good in its own window (a batch outliving it takes from the next one), so no window ever admits more
than its budget; sends the batch did not make after all (a duplicate, a suppression) leave part of a window
unused, never overspent. One write per batch and key instead of one per send.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from ecrm.broadcast.channels.base import OutboundMessage, aws_error
from ecrm.broadcast.channels.sms import country_of, origination_for
from ecrm.core.clock import Clock

PHONE_CHANNELS = frozenset({"sms", "voice"})
WINDOW_TTL_S = 3600  # a spent window's item lingers an hour, then DynamoDB's TTL removes it


class PaceCounter(Protocol):
    def take(self, key: str, window_start: int, limit: int, *, expires_at: int, count: int = 1) -> int:
        """Up to `count` sends from the window's budget of `limit`: how many were taken (0: the window is spent)."""
        ...


@dataclass(frozen=True)
class SendRates:
    """Messages per second per pacing key, and the identities that name the phone channels' keys."""

    rates: Mapping[str, float] = field(default_factory=dict)
    origination_identities: Mapping[str, str] = field(default_factory=dict)  # country -> identity, "*" default
    voice_origination: str | None = None
    max_wait: timedelta = timedelta(seconds=1.5)

    @classmethod
    def parse(cls, text: str, **identities: Any) -> SendRates:
        """Rates from their JSON (`{"email": 14, "sms:*": 1}`); a rate that is not a positive number is refused."""
        raw = json.loads(text or "{}")
        if not isinstance(raw, dict):
            raise ValueError("send rates are a JSON object of pacing key -> messages per second")
        rates: dict[str, float] = {}
        for key, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"the send rate of {key!r} is not a positive number of messages per second")
            rates[str(key)] = float(value)
        return cls(rates=rates, **identities)

    def key_of(self, message: OutboundMessage) -> str:
        if message.channel not in PHONE_CHANNELS:
            return message.channel
        identity = self.voice_origination if message.channel == "voice" else None
        identity = identity or origination_for(self.origination_identities, country_of(message))
        return f"{message.channel}:{identity or '*'}"

    def rate_of(self, key: str) -> float | None:
        if key in self.rates:
            return self.rates[key]
        channel, _, identity = key.partition(":")
        return self.rates.get(f"{channel}:*") if identity else None


def window_of(rate: float) -> tuple[int, int]:
    """(window seconds, sends per window) of a rate: whole seconds, at least one send per window."""
    seconds = max(1, math.ceil(1 / rate)) if rate < 1 else 1
    return seconds, max(1, math.floor(rate * seconds))


class Pacer:
    """Admits a send when its key's window has budget left; answers the seconds to retry after otherwise."""

    def __init__(
        self,
        rates: SendRates,
        counter: PaceCounter,
        clock: Clock,
        *,
        wait: Callable[[float], None] = time.sleep,
        jitter: random.Random | None = None,
    ) -> None:
        self.rates = rates
        self.counter = counter
        self.clock = clock
        self.wait = wait
        self.jitter = jitter or random.Random()  # noqa: S311 - spreading retries, not a secret
        self._expected: dict[str, int] = {}  # key -> sends of the current batch not admitted yet
        self._allowance: dict[str, tuple[int, int]] = {}  # key -> (window start, sends taken and not spent)

    def expect(self, messages: Sequence[OutboundMessage]) -> None:
        """A new batch: its sends per key (what the first send of a key takes at once); earlier allowances end."""
        expected: dict[str, int] = {}
        for message in messages:
            key = self.rates.key_of(message)
            expected[key] = expected.get(key, 0) + 1
        self._expected = expected
        self._allowance = {}

    def admit(self, message: OutboundMessage) -> int | None:
        """None when the send may go now (a window's budget taken), else whole seconds to retry after."""
        key = self.rates.key_of(message)
        rate = self.rates.rate_of(key)
        if rate is None:
            return None
        seconds, limit = window_of(rate)
        deadline = self.clock.now().timestamp() + self.rates.max_wait.total_seconds()
        while True:
            now = self.clock.now().timestamp()
            start = int(now // seconds) * seconds
            if self._spend(key, start, limit):
                return None
            next_window = start + seconds
            if next_window > deadline:
                return max(1, math.ceil(next_window - now)) + self.jitter.randint(0, seconds)
            self.wait(next_window - now)

    def _spend(self, key: str, start: int, limit: int) -> bool:
        """One send of `key` in the window starting at `start`: from the allowance, else taken from the counter."""
        window, left = self._allowance.get(key, (start, 0))
        if window != start or left <= 0:
            wanted = min(max(1, self._expected.get(key, 0)), limit)
            window, left = start, self.counter.take(key, start, limit, expires_at=start + WINDOW_TTL_S, count=wanted)
            if left <= 0:
                return False
        self._allowance[key] = (window, left - 1)
        self._expected[key] = max(0, self._expected.get(key, 0) - 1)
        return True


class DynamoPaceCounter:
    """`PaceCounter` on the engine's table: one conditional `ADD` per take, no read.

    A take of several sends that does not fit reads what the window holds from the refusal itself
    (`ReturnValuesOnConditionCheckFailure`) and takes the rest of the budget instead.
    """

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def take(self, key: str, window_start: int, limit: int, *, expires_at: int, count: int = 1) -> int:
        wanted = max(1, min(count, limit))
        for _ in range(3):  # the window's count moves under concurrent senders: ask again for what is left
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key={"pk": {"S": f"PACE#{key}#{window_start}"}, "sk": {"S": "PACE"}},
                    UpdateExpression="ADD taken :n SET expires_at = if_not_exists(expires_at, :ttl)",
                    ConditionExpression="attribute_not_exists(taken) OR taken <= :room",
                    ExpressionAttributeValues={
                        ":n": {"N": str(wanted)},
                        ":room": {"N": str(limit - wanted)},
                        ":ttl": {"N": str(expires_at)},
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except Exception as exc:
                found = aws_error(exc)
                if found is None or found[0] != "ConditionalCheckFailedException":
                    raise
                old = found[2].get("Item") or {}
                left = limit - int((old.get("taken") or {}).get("N", limit))
                if left <= 0:
                    return 0
                wanted = min(wanted, left)
                continue
            return wanted
        return 0
