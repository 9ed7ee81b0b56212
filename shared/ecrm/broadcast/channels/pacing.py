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
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from ecrm.broadcast.channels.base import OutboundMessage, aws_error
from ecrm.broadcast.channels.sms import country_of, origination_for
from ecrm.core.clock import Clock

PHONE_CHANNELS = frozenset({"sms", "voice"})
WINDOW_TTL_S = 3600  # a spent window's item lingers an hour, then DynamoDB's TTL removes it


class PaceCounter(Protocol):
    def take(self, key: str, window_start: int, limit: int, *, expires_at: int) -> bool:
        """One send from the window's budget: True when taken, False when the window is spent."""
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
            if self.counter.take(key, start, limit, expires_at=start + WINDOW_TTL_S):
                return None
            next_window = start + seconds
            if next_window > deadline:
                return max(1, math.ceil(next_window - now)) + self.jitter.randint(0, seconds)
            self.wait(next_window - now)


class DynamoPaceCounter:
    """`PaceCounter` on the engine's table: one conditional `ADD` per send, no read."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def take(self, key: str, window_start: int, limit: int, *, expires_at: int) -> bool:
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": {"S": f"PACE#{key}#{window_start}"}, "sk": {"S": "PACE"}},
                UpdateExpression="ADD taken :one SET expires_at = if_not_exists(expires_at, :ttl)",
                ConditionExpression="attribute_not_exists(taken) OR taken < :limit",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(limit)},
                    ":ttl": {"N": str(expires_at)},
                },
            )
        except Exception as exc:
            found = aws_error(exc)
            if found is not None and found[0] == "ConditionalCheckFailedException":
                return False
            raise
        return True
