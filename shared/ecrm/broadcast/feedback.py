"""Provider feedback closes the loop: message statuses, the suppression list, consents and the deliverability guard.

Each `ProviderFeedback` (parsed by `ecrm.broadcast.feedback_events`) is applied idempotently: a status
moves only forward from the states it may leave, an open is recorded once and a click once per link, so
a redelivered record publishes nothing twice. A hard bounce, a complaint and an SMS STOP put the address
on the suppression list; a complaint and a STOP also withdraw the marketing consent at its owner, the
customer store, and `CustomerUnsubscribed` tells the other engines (through this table's outbox).
A push's feedback names only SNS's message id: the message is found through the record the sender wrote
with its `sent` transition (`store.provider_marker`), and a permanent refusal retires the device too.

The deliverability guard counts sends, bounces and complaints of the configuration set per hour; over the
last `window_hours`, a bounce rate at or above 2% or a complaint rate at or above 0.08% (SES's review
thresholds) pauses marketing email for `pause_for`, and the policy defers marketing email meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from ecrm.broadcast.contacts import Contacts
from ecrm.broadcast.erasure import ERASED_CUSTOMER as ERASED
from ecrm.broadcast.keys import address_hash
from ecrm.broadcast.models import (
    CustomerUnsubscribed,
    HistoryEntry,
    Message,
    MessageClicked,
    MessageOpened,
    Suppression,
    UnsubscribeMethod,
)
from ecrm.broadcast.sending import FOUND_BY_PROVIDER_ID, transition
from ecrm.broadcast.service import event_fields
from ecrm.broadcast.store import BroadcastStore, StaleMessage
from ecrm.core.clock import Clock
from ecrm.core.vocabulary import CONSENT_CHANNEL_OF

# The statuses a feedback kind may move a message from, and to which status.
MOVES: dict[str, tuple[frozenset[str], str]] = {
    "sent": (frozenset({"sending", "queued"}), "sent"),
    "delivered": (frozenset({"sending", "sent"}), "delivered"),
    "bounced": (frozenset({"sending", "sent", "delivered"}), "bounced"),
    "complained": (frozenset({"sending", "sent", "delivered"}), "complained"),
    "failed": (frozenset({"sending", "sent"}), "failed"),
}
# A permanent failure on these is the number's (unreachable, landline for SMS); on email it is the content's.
PHONE_CHANNELS = frozenset({"sms", "voice", "whatsapp"})
# How long after a provider's report its id may still be unrecorded (the sender's write follows the provider's answer).
RECORDING_GRACE = timedelta(minutes=5)
Metric = Callable[[str, float, Mapping[str, str]], None]  # (name, value, dimensions)


class Feedback(Protocol):
    """What the core reads of `feedback_events.ProviderFeedback`."""

    @property
    def kind(self) -> str: ...

    @property
    def channel(self) -> str: ...

    @property
    def message_id(self) -> str | None: ...

    @property
    def address(self) -> str | None: ...

    @property
    def occurred_at(self) -> datetime: ...

    @property
    def permanent(self) -> bool: ...

    @property
    def provider_message_id(self) -> str | None: ...

    @property
    def detail(self) -> Mapping[str, Any]: ...


class NotRecordedYet(Exception):
    """The provider's id is not recorded yet (its sender is about to): the queue delivers the report again."""


class SenderStillSending(Exception):
    """The message's sender holds it (`sending`, its lease live): its own `sent` is on the way.

    A provider's event that moves a message (SES's `Send` or `Delivery` can beat the sender's write) is
    delivered again later (`delay_s`: what is left of the lease; the handler tries sooner first). Settled by
    the sender by then, the message takes the event as any sent message does (`Send` is then nothing to do);
    a sender that died leaves the message `sending`, and the event settles it within the grace a retried send
    waits for that evidence (`SendingSettings.evidence_grace`). Applied at once, the event and the sender's
    own write raced for the same item: a write lost to a stale version, the sender's record retried for
    nothing and, when `Delivery` won, a message that went from `sending` to `delivered` without its
    `MessageSent`.
    """

    def __init__(self, message_id: str, delay_s: int) -> None:
        super().__init__(f"{message_id} is still held by its sender")
        self.delay_s = delay_s


@dataclass(frozen=True)
class GuardSettings:
    configuration_set: str = "ecrm"
    window_hours: int = 24
    min_sends: int = 100  # below this many sends a rate says nothing
    bounce_rate: float = 0.02
    complaint_rate: float = 0.0008
    pause_for: timedelta = timedelta(hours=1)


class FeedbackService:
    def __init__(
        self,
        store: BroadcastStore,
        contacts: Contacts,
        clock: Clock,
        guard: GuardSettings,
        *,
        metric: Metric | None = None,
    ) -> None:
        self.store = store
        self.contacts = contacts
        self.clock = clock
        self.guard = guard
        self.metric = metric or (lambda name, value, dimensions: None)

    def apply(self, feedback: Feedback, *, correlation_id: str | None = None) -> str:
        """Apply one provider event; answers what it did (for logs and tests)."""
        if feedback.kind == "opted_out":
            return self._opted_out(feedback, correlation_id)
        if feedback.kind == "opted_in":
            return "unsuppressed" if feedback.address and self.store.unsuppress(feedback.address) else "noop"
        if feedback.kind == "endpoint_disabled":
            return "retired" if feedback.address and self.store.retire_endpoint(feedback.address) else "noop"
        if feedback.kind in {"help", "inbound"}:
            return "ignored"
        retired = self._retire_refused_endpoint(feedback)
        message_id = feedback.message_id or self._message_of_provider_id(feedback)
        if not message_id:
            return "retired" if retired else "ignored"
        for _ in range(3):  # a transition racing the sender's settle: read again and apply again
            message = self.store.get_message(message_id)
            if message is None:
                return "unknown_message"
            try:
                return self._on_message(message, feedback, correlation_id)
            except StaleMessage:
                continue
        raise StaleMessage(message_id)

    def _message_of_provider_id(self, feedback: Feedback) -> str | None:
        """Our message, for a channel whose feedback names only the provider's id (the sender recorded which).

        SNS may report a refusal before its `Publish` has answered the sender, so before the sender's `sent`
        transition wrote the record: a recent report that finds none is tried again by the queue, an older
        one is not ours (a publish made elsewhere, or a record past its TTL).
        """
        if feedback.channel not in FOUND_BY_PROVIDER_ID or not feedback.provider_message_id:
            return None
        message_id = self.store.message_of_provider_id(feedback.provider_message_id)
        if message_id is None and self.clock.now() - feedback.occurred_at < RECORDING_GRACE:
            raise NotRecordedYet(feedback.provider_message_id)
        return message_id

    def _retire_refused_endpoint(self, feedback: Feedback) -> bool:
        """A push the provider refused for good (an invalid token, a disabled endpoint) retires its device.

        Done before the message moves, and whatever the message's status: retiring is idempotent, so a
        redelivery after a crash between the two retires (again, a no-op) and then moves the message.
        """
        if feedback.kind != "failed" or feedback.channel != "push" or not feedback.permanent or not feedback.address:
            return False
        return self.store.retire_endpoint(feedback.address)

    # -- a message's own events -----------------------------------------------------------------------
    def _on_message(self, message: Message, feedback: Feedback, correlation_id: str | None) -> str:
        at = feedback.occurred_at
        if feedback.kind == "opened":
            if message.opened_at is not None:
                return "noop"
            message.opened_at = at
            message.history.append(_engagement(at, "opened", {}))
            event = MessageOpened(**event_fields(message, at))
            self.store.save_transition(message, [event], correlation_id=correlation_id, now=self.clock.now())
            return "opened"
        if feedback.kind == "clicked":
            link = str(feedback.detail.get("link") or "")
            if any(h.status == "clicked" and h.detail.get("link") == link for h in message.history):
                return "noop"
            message.clicked_at = message.clicked_at or at
            message.history.append(_engagement(at, "clicked", {"link": link[:500]}))
            clicked = MessageClicked(**event_fields(message, at), link=link or None)
            self.store.save_transition(message, [clicked], correlation_id=correlation_id, now=self.clock.now())
            return "clicked"
        if feedback.kind == "delayed":
            return "noop"
        move = MOVES.get(feedback.kind)
        if move is None:
            return "ignored"
        leaves, status = move
        if message.status not in leaves:
            return "noop"
        now = self.clock.now()
        if message.status == "sending" and message.lease_until is not None and now < message.lease_until:
            # The provider took it: a retry of a sender that died after its call settles it, never sends again
            self.store.record_evidence(message.message_id, feedback.provider_message_id, at)
            raise SenderStillSending(message.message_id, int((message.lease_until - now).total_seconds()) + 1)
        reason = _reason(feedback)
        message.lease_until = None
        message.provider_message_id = message.provider_message_id or feedback.provider_message_id
        events = transition(message, status, at, reason=reason)
        self.store.save_transition(message, events, correlation_id=correlation_id, now=self.clock.now())
        address = feedback.address or message.address
        if feedback.kind == "bounced" and feedback.permanent and address:
            self._suppress(address, message.channel or feedback.channel, "hard_bounce", message.customer_id)
        if feedback.kind == "failed" and feedback.permanent and address and message.channel in PHONE_CHANNELS:
            self._suppress(address, message.channel or feedback.channel, "permanent_failure", message.customer_id)
        if feedback.kind == "complained" and address:
            self._suppress(address, message.channel or feedback.channel, "complaint", message.customer_id)
            self._withdraw(
                message.customer_id, message.channel or feedback.channel, None, "complaint", address, at, correlation_id
            )
        if message.channel == "email" and feedback.kind in {"bounced", "complained"}:
            self._count(feedback.kind)
        return status

    # -- STOP and the guard ----------------------------------------------------------------------------------
    def _opted_out(self, feedback: Feedback, correlation_id: str | None) -> str:
        if not feedback.address:
            return "ignored"
        owner = self._owner(feedback)
        method: UnsubscribeMethod = "whatsapp_stop" if feedback.channel == "whatsapp" else "sms_stop"
        self._suppress(feedback.address, feedback.channel, "stop", owner)
        if owner:
            self._withdraw(
                owner, feedback.channel, None, method, feedback.address, feedback.occurred_at, correlation_id
            )
        return "opted_out"

    def _owner(self, feedback: Feedback) -> str | None:
        """Whose address opted out: the customer of the message it names (SES's subscription events carry our
        tag), else the owner record a phone send wrote (an inbound STOP names only the number)."""
        if feedback.message_id:
            message = self.store.get_message(feedback.message_id)
            if message is not None and message.customer_id != ERASED:
                return message.customer_id
        return self.store.owner_of(feedback.address) if feedback.address else None

    def _suppress(self, address: str, channel: str, reason: str, customer_id: str | None) -> None:
        entry = Suppression(
            address=address, channel=channel, reason=reason, customer_id=customer_id, suppressed_at=self.clock.now()
        )
        self.store.suppress(entry)

    def _withdraw(
        self,
        customer_id: str,
        channel: str,
        topic: str | None,
        method: UnsubscribeMethod,
        address: str | None,
        at: datetime,
        correlation_id: str | None,
    ) -> None:
        withdraw_marketing(
            self.contacts,
            self.store,
            customer_id=customer_id,
            channel=channel,
            topic=topic,
            method=method,
            address=address,
            at=at,
            now=self.clock.now(),
            correlation_id=correlation_id,
        )

    def _count(self, kind: str) -> None:
        now = self.clock.now()
        self.store.count_outcome(self.guard.configuration_set, kind, now)
        totals = self.store.outcome_counts(self.guard.configuration_set, now, self.guard.window_hours)
        sent = totals.get("sent", 0)
        if sent <= 0:
            return
        bounce = totals.get("bounced", 0) / sent
        complaint = totals.get("complained", 0) / sent
        dimensions = {"ConfigurationSet": self.guard.configuration_set}
        # The window's sends go with the rates: the alarms read a rate only over enough of them.
        self.metric("WindowSends", sent, dimensions)
        self.metric("BounceRate", bounce, dimensions)
        self.metric("ComplaintRate", complaint, dimensions)
        if sent >= self.guard.min_sends and (
            bounce >= self.guard.bounce_rate or complaint >= self.guard.complaint_rate
        ):
            self.store.pause(self.guard.configuration_set, now + self.guard.pause_for)
            self.metric("MarketingEmailPaused", 1, dimensions)


def withdraw_marketing(
    contacts: Contacts,
    store: BroadcastStore,
    *,
    customer_id: str,
    channel: str,
    topic: str | None,
    method: UnsubscribeMethod,
    address: str | None,
    at: datetime,
    now: datetime,
    correlation_id: str | None,
    proof: Mapping[str, Any] | None = None,
) -> None:
    """Withdraw the marketing (or one topic's) consent at the customer store, then say so on the bus."""
    consent_channel = CONSENT_CHANNEL_OF.get(channel, channel)
    purpose = f"topic:{topic}" if topic else "marketing"
    contacts.record_consents(
        customer_id,
        [{"channel": consent_channel, "purpose": purpose, "state": "denied"}],
        proof={"source": "broadcast", "captured_at": at.isoformat(), "text": method, **(proof or {})},
        recorded_by=method,
    )
    event = CustomerUnsubscribed(
        customer_id=customer_id,
        channel=consent_channel,
        topic=topic,
        purpose=purpose,
        method=method,
        address_hash=address_hash(address) if address else None,
        occurred_at=at,
    )
    store.publish_for_customer(customer_id, [event], correlation_id=correlation_id, now=now)


def _engagement(at: datetime, status: str, detail: dict[str, str]) -> HistoryEntry:
    return HistoryEntry(at=at, status=status, detail=detail)


def _reason(feedback: Feedback) -> str | None:
    detail = feedback.detail
    if feedback.kind == "bounced":
        kind = detail.get("bounce_type") or detail.get("bounceType") or ("Permanent" if feedback.permanent else "")
        return f"bounce:{str(kind).lower() or 'unknown'}"
    if feedback.kind == "failed":
        code = detail.get("error_code") or detail.get("code") or "error"
        return f"{'permanent' if feedback.permanent else 'provider'}:{code}"
    if feedback.kind == "complained":
        return "complaint"
    return None
