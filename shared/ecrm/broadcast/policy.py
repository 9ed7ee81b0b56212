"""The delivery policy: pure, decided before every send, each decision with its reason (ADR 12).

In order: the channel (the forced one, or the customer's preferred channels then the configured
fallbacks, first one with content, an address, consent and an address off the suppression list); for
marketing only, the deliverability pause, frequency caps and the hours a customer may be reached in
their own time zone (quiet hours; SMS and voice only 08:00-21:00). A deferral is never a drop: the
message waits until the earliest moment every window allows, and is decided again then. Transactional
messages are exempt from the pause, caps and hours, never from consent withdrawn or suppression.

Nothing here reads a clock, a table or a network: the caller hands over the recipient's contact card,
what the store knows (devices, endpoints, suppressions, recent sends, pause) and `now`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ecrm.broadcast.keys import normalise_address
from ecrm.core.vocabulary import CONSENT_CHANNEL_OF, DELIVERY_CHANNELS

Outcome = Literal["send", "defer", "suppress"]
CapPeriod = Literal["day", "week", "month"]
PERIODS: dict[str, timedelta] = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30)}
# The card's address kinds each delivery channel reaches (push and webhook reach devices and endpoints).
ADDRESS_KIND = {"email": "email", "sms": "phone", "voice": "phone", "whatsapp": "phone"}
PHONE_WINDOW_CHANNELS = frozenset({"sms", "voice"})


@dataclass(frozen=True)
class Cap:
    max_messages: int
    per: CapPeriod

    @property
    def window(self) -> timedelta:
        return PERIODS[self.per]


@dataclass(frozen=True)
class PolicySettings:
    default_time_zone: str = "UTC"
    fallback_order: tuple[str, ...] = ("email", "push", "sms", "whatsapp", "in_app")
    channel_caps: Mapping[str, Cap] = field(default_factory=dict)
    overall_cap: Cap | None = None
    phone_window: tuple[time, time] = (time(8, 0), time(21, 0))
    pause_recheck: timedelta = timedelta(hours=1)

    @property
    def longest_cap_window(self) -> timedelta:
        caps = [*self.channel_caps.values(), *([self.overall_cap] if self.overall_cap else [])]
        return max((c.window for c in caps), default=PERIODS["month"])


@dataclass(frozen=True)
class Recipient:
    """What the policy reads of the customer store's contact card, as the owner holds it now."""

    customer_id: str
    active: bool
    addresses: Mapping[str, tuple[str, ...]]
    consents: Mapping[tuple[str, str], str]  # (consent channel, purpose) -> granted | denied
    preferred_channels: tuple[str, ...] = ()
    time_zone: str | None = None
    quiet_hours: tuple[time, time] | None = None
    frequency_limit: Cap | None = None
    country: str | None = None
    profile: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_card(cls, card: Mapping[str, Any]) -> Recipient:
        """From a `ContactCard` as JSON (the contacts function's answer)."""
        preferences = card.get("preferences") or {}
        quiet = preferences.get("quiet_hours")
        limit = preferences.get("frequency_limit")
        profile = dict(card.get("profile") or {})
        return cls(
            customer_id=str(card["customer_id"]),
            active=card.get("status", "active") == "active",
            addresses={kind: tuple(values) for kind, values in (card.get("addresses") or {}).items()},
            consents={(c["channel"], c["purpose"]): c["state"] for c in card.get("consents") or ()},
            preferred_channels=tuple(preferences.get("preferred_channels") or ()),
            time_zone=preferences.get("time_zone"),
            quiet_hours=(_time(quiet["start"]), _time(quiet["end"])) if quiet else None,
            frequency_limit=Cap(int(limit["max_messages"]), limit["per"]) if limit else None,
            country=profile.get("country") if isinstance(profile.get("country"), str) else None,
            profile=profile,
        )


@dataclass(frozen=True)
class Situation:
    """What the broadcast store knows at decision time."""

    devices: tuple[str, ...] = ()  # the customer's enabled push endpoint ARNs
    webhooks: tuple[str, ...] = ()  # the customer's enabled webhook endpoint ids
    suppressed: Mapping[str, str] = field(default_factory=dict)  # normalised address -> list reason
    recent_sends: Sequence[tuple[str, datetime]] = ()  # (channel, sent at) of marketing sends
    paused_until: datetime | None = None  # the deliverability guard's pause of marketing email


@dataclass(frozen=True)
class Intent:
    purpose: Literal["marketing", "transactional"]
    channels_with_content: frozenset[str]
    topic: str | None = None
    forced_channel: str | None = None


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str | None = None
    channel: str | None = None
    address: str | None = None
    until: datetime | None = None
    trace: tuple[str, ...] = ()


def decide(
    intent: Intent, recipient: Recipient | None, situation: Situation, *, now: datetime, settings: PolicySettings
) -> Decision:
    """The outcome for one message now: send on a channel to an address, defer until a time, or suppress why."""
    if recipient is None or not recipient.active:
        return Decision("suppress", "unknown_customer", trace=("customer: unknown or erased",))
    trace: list[str] = []
    chosen = _choose_channel(intent, recipient, situation, settings, trace)
    if isinstance(chosen, str):
        return Decision("suppress", chosen, trace=tuple(trace))
    channel, address = chosen
    if intent.purpose == "transactional":
        trace.append("transactional: exempt from pause, caps and hours")
        return Decision("send", None, channel, address, trace=tuple(trace))
    capped = _capped(channel, recipient, situation, now, settings)
    if capped:
        trace.append(f"frequency cap: {capped}")
        return Decision("suppress", "frequency_cap", channel, address, trace=tuple(trace))
    until, reason = _earliest_allowed(channel, recipient, situation, now, settings)
    if until is not None:
        trace.append(f"{reason}: until {until.isoformat()}")
        return Decision("defer", reason, channel, address, until=until, trace=tuple(trace))
    return Decision("send", None, channel, address, trace=tuple(trace))


# -- the channel ------------------------------------------------------------------------------------
def delivery_channel_of(preferred: str) -> str | None:
    """A preferred (consent) channel as the delivery channel it means: `phone` is a voice call."""
    if preferred == "phone":
        return "voice"
    return preferred if preferred in DELIVERY_CHANNELS else None


def candidate_channels(intent: Intent, recipient: Recipient, settings: PolicySettings) -> list[str]:
    if intent.forced_channel:
        return [intent.forced_channel]
    ordered: list[str] = []
    preferred = (delivery_channel_of(p) for p in recipient.preferred_channels)
    for channel in (*preferred, *settings.fallback_order):
        if channel and channel not in ordered and channel in intent.channels_with_content:
            ordered.append(channel)
    return ordered


def reachable_addresses(channel: str, recipient: Recipient, situation: Situation) -> tuple[str, ...]:
    if channel in ADDRESS_KIND:
        return tuple(recipient.addresses.get(ADDRESS_KIND[channel], ()))
    if channel == "push":
        return situation.devices
    if channel == "webhook":
        return situation.webhooks
    return (recipient.customer_id,)  # in_app: the inbox is always there


def has_consent(channel: str, purpose: str, topic: str | None, consents: Mapping[tuple[str, str], str]) -> bool:
    """Marketing needs `granted` on the channel (and no `topic:<name>` denial); transactional, no withdrawal."""
    consent_channel = CONSENT_CHANNEL_OF[channel]
    if purpose == "transactional":
        return consents.get((consent_channel, "transactional")) != "denied"
    if consents.get((consent_channel, "marketing")) != "granted":
        return False
    return topic is None or consents.get((consent_channel, f"topic:{topic}")) != "denied"


_STRENGTH = {"unreachable": 0, "no_consent": 1}


def _choose_channel(
    intent: Intent, recipient: Recipient, situation: Situation, settings: PolicySettings, trace: list[str]
) -> tuple[str, str] | str:
    """The first candidate with an address, consent and an address off the list; else the strongest reason."""
    worst = "unreachable"
    for channel in candidate_channels(intent, recipient, settings):
        addresses = reachable_addresses(channel, recipient, situation)
        if not addresses:
            trace.append(f"{channel}: unreachable")
            continue
        if not has_consent(channel, intent.purpose, intent.topic, recipient.consents):
            trace.append(f"{channel}: no_consent")
            worst = _stronger(worst, "no_consent")
            continue
        free = [a for a in addresses if normalise_address(a) not in situation.suppressed]
        if not free:
            reason = f"suppressed:{situation.suppressed[normalise_address(addresses[0])]}"
            trace.append(f"{channel}: {reason}")
            worst = _stronger(worst, reason)
            continue
        trace.append(f"{channel}: chosen")
        return channel, free[0]
    if not trace:
        trace.append("no channel with content")
    return worst


def _stronger(current: str, candidate: str) -> str:
    """Suppression always wins as the reason, then a missing consent, then no address."""
    return max(current, candidate, key=lambda r: _STRENGTH.get(r, 2))


# -- caps and hours ---------------------------------------------------------------------------------------
def _capped(channel: str, recipient: Recipient, situation: Situation, now: datetime, settings: PolicySettings) -> str:
    caps: list[tuple[str | None, Cap]] = []
    if channel in settings.channel_caps:
        caps.append((channel, settings.channel_caps[channel]))
    overall = recipient.frequency_limit or settings.overall_cap
    if overall is not None:
        caps.append((None, overall))
    for only, cap in caps:
        since = now - cap.window
        count = sum(1 for sent_on, at in situation.recent_sends if at > since and (only is None or sent_on == only))
        if count >= cap.max_messages:
            return f"{count} {only or 'messages'} in a {cap.per}, at most {cap.max_messages}"
    return ""


def zone_of(recipient: Recipient, settings: PolicySettings) -> ZoneInfo:
    for name in (recipient.time_zone, settings.default_time_zone):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _earliest_allowed(
    channel: str, recipient: Recipient, situation: Situation, now: datetime, settings: PolicySettings
) -> tuple[datetime | None, str]:
    """The earliest moment at or after `now` every window allows, with the first reason that moved it.

    A customer's quiet hours that leave no time in the phone sending window give way to the window alone:
    the message waits for the window, never forever.
    """
    found = _first_allowed(channel, recipient.quiet_hours, situation, now, settings, zone_of(recipient, settings))
    if found is None:
        found = _first_allowed(channel, None, situation, now, settings, zone_of(recipient, settings))
    at, first_reason = found or (now, "")
    return (at, first_reason) if at != now else (None, "")


def _first_allowed(
    channel: str,
    quiet_hours: tuple[time, time] | None,
    situation: Situation,
    now: datetime,
    settings: PolicySettings,
    zone: ZoneInfo,
) -> tuple[datetime, str] | None:
    """None when the windows leave no time at all (each pass lands at a window's end; 8 settle any that do)."""
    at, first_reason = now, ""
    for _ in range(8):
        moved = False
        if channel == "email" and situation.paused_until is not None and at < situation.paused_until:
            at, moved = situation.paused_until, True
            first_reason = first_reason or "paused"
        if quiet_hours is not None:
            end = _end_of_window(at, zone, *quiet_hours)
            if end is not None:
                at, moved = end, True
                first_reason = first_reason or "quiet_hours"
        if channel in PHONE_WINDOW_CHANNELS:
            start, stop = settings.phone_window
            end = _end_of_window(at, zone, stop, start)  # outside 08:00-21:00 is a quiet window
            if end is not None:
                at, moved = end, True
                first_reason = first_reason or "sending_window"
        if not moved:
            return at, first_reason
    return None


def _end_of_window(at: datetime, zone: ZoneInfo, start: time, end: time) -> datetime | None:
    """If local `at` falls in [start, end) (a window may span midnight), when the window ends; else None."""
    local = at.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if start == end:
        return None
    within = start <= clock < end if start < end else (clock >= start or clock < end)
    if not within:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    ends = datetime.combine(day, end, tzinfo=zone)
    return ends.astimezone(at.tzinfo) if at.tzinfo else ends


def _time(value: Any) -> time:
    return value if isinstance(value, time) else time.fromisoformat(str(value))
