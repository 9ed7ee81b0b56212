"""From a requested message to a provider call, exactly once as the customer sees it (ADR 12).

`Dispatcher` (on `MessageRequested`, and for deferrals that came due): asks the customer store for the
contact cards, runs the policy, renders the chosen channel's content and puts the rendered message on
that channel's queue. The message moves to `queued` before it is enqueued, so a crash in between is
repaired by the event's redelivery, which finds it `queued` and enqueues it again: the sender drops
the duplicate.

`Sender` (one channel queue's record): drops a message already sent; asks the owner again for consent
and the suppression list just before the call; claims the message (`queued -> sending`, with a lease);
calls the adapter; settles `sent` with the provider's id, `failed` on a permanent refusal, or releases the
claim and asks for a retry later (throttled or transient: backoff with jitter). Before the claim, the
`Pacer` takes the send from its provider's budget (the SES account's rate, the origination identity's
messages per second), or asks for a retry when the next window is too far to wait for. A record finding
`sending` under a live lease is a concurrent or crashed attempt: it waits the lease out plus a grace in
which the provider's own event (tagged with our id) may settle it; after that, a provider's event that came
while the claim was held (`BroadcastStore.record_evidence`) settles it `sent`; without one the provider never
took it, and the message is sent.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from ecrm.broadcast.channels.base import ChannelAdapter, ChannelError, OutboundMessage
from ecrm.broadcast.channels.pacing import Pacer
from ecrm.broadcast.contacts import Contacts
from ecrm.broadcast.keys import normalise_address
from ecrm.broadcast.models import (
    EVENT_OF_STATUS,
    FINAL_STATUSES,
    SENT_OR_LATER,
    HistoryEntry,
    Message,
    MessageRequest,
    PolicyPreview,
)
from ecrm.broadcast.policy import Decision, Intent, PolicySettings, Recipient, Situation, decide, has_consent
from ecrm.broadcast.rendering import RenderFailed, render_parts
from ecrm.broadcast.service import event_fields
from ecrm.broadcast.store import BroadcastStore, StaleMessage
from ecrm.broadcast.tokens import LinkToken, sign_link
from ecrm.core.clock import Clock
from ecrm.core.errors import ServiceUnavailable
from ecrm.core.events import DomainEvent

# The channels whose inbound opt-outs (STOP) name only the address: their sends record who owns it.
OWNED_BY_PHONE = frozenset({"sms", "voice", "whatsapp"})
# The channels whose delivery feedback names only the provider's message id (SNS push's `DeliveryFailure`):
# their sends record which message that id is. SMS through SNS reports delivery to CloudWatch Logs only,
# never to the feedback queue, so there is nothing for it to find.
FOUND_BY_PROVIDER_ID = frozenset({"push"})


class ChannelQueues(Protocol):
    def enqueue(self, channel: str, bodies: Sequence[Mapping[str, Any]]) -> None:
        """Put every body on the channel's queue, or raise (nothing is reported as sent that was not)."""
        ...


class SuppressionsRead:
    """The suppression list's entries for a batch's addresses, read in one go; an address outside them is read
    when asked (a device found later). As fresh as the batch: seconds before each decision or provider call."""

    def __init__(self, store: BroadcastStore, addresses: Iterable[str]) -> None:
        self.store = store
        self.known = frozenset(normalise_address(a) for a in addresses)
        self.found = store.suppressed(sorted(self.known)) if self.known else {}

    def suppressed(self, addresses: Iterable[str]) -> dict[str, str]:
        wanted = {normalise_address(a) for a in addresses}
        found = {address: reason for address, reason in self.found.items() if address in wanted}
        rest = wanted - self.known
        return found | (self.store.suppressed(sorted(rest)) if rest else {})


class RetryLater(Exception):
    """The record is to be retried after `delay_s` seconds (throttled, transient, or a lease still held)."""

    def __init__(self, reason: str, delay_s: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay_s = delay_s


@dataclass(frozen=True)
class SendingSettings:
    policy: PolicySettings = field(default_factory=PolicySettings)
    configuration_set: str = "ecrm"
    links_base_url: str = ""  # https://.../unsubscribe and /preferences are under it
    link_secret: bytes = b""
    link_lifetime: timedelta = timedelta(days=60)
    lease: timedelta = timedelta(seconds=60)
    evidence_grace: timedelta = timedelta(seconds=120)
    retry_base_s: int = 5
    retry_max_s: int = 900


def transition(
    message: Message, status: str, at: datetime, *, reason: str | None = None, **detail: str
) -> list[DomainEvent]:
    """Move `message` (in memory) and answer the event of its new status, if that status has one."""
    message.status = status  # type: ignore[assignment]
    message.reason = reason
    message.updated_at = at
    message.history.append(HistoryEntry(at=at, status=status, reason=reason, detail=detail))
    event_type = EVENT_OF_STATUS.get(status)
    if event_type is None:
        return []
    extra = {"until": message.deferred_until} if status == "deferred" else {}
    return [event_type(**event_fields(message, at, **extra))]


class Dispatcher:
    def __init__(
        self,
        store: BroadcastStore,
        contacts: Contacts,
        queues: ChannelQueues,
        clock: Clock,
        settings: SendingSettings,
        *,
        channels: frozenset[str],
    ) -> None:
        self.store = store
        self.contacts = contacts
        self.queues = queues
        self.clock = clock
        self.settings = settings
        self.channels = channels  # those this deployment can send on

    def dispatch(
        self,
        message_ids: Sequence[str],
        *,
        correlation_id: str | None,
        correlation_ids: Mapping[str, str | None] | None = None,
    ) -> dict[str, str]:
        """Decide and enqueue each message; answers message id -> what became of it.

        Each message's events carry `correlation_ids[message id]` when given (a queue batch of several requests'
        messages, decided at once), else `correlation_id`."""
        now = self.clock.now()
        messages = self.store.get_messages(message_ids, with_content=True)
        due = [m for m in messages.values() if self._due(m, now)]
        cards = self.contacts.cards(sorted({m.customer_id for m in due})) if due else {}
        paused_until = self.store.paused_until(self.settings.configuration_set)
        suppressions = SuppressionsRead(self.store, _card_addresses(cards.get(m.customer_id) for m in due))
        outcome: dict[str, str] = {i: "unknown" for i in message_ids if i not in messages}
        by_channel: dict[str, list[dict[str, Any]]] = {}
        for message in messages.values():
            if not self._due(message, now):
                outcome[message.message_id] = message.status
                continue
            card = cards.get(message.customer_id)
            if message.status == "queued":  # a redelivery after a crash before enqueueing: enqueue again
                outcome[message.message_id] = self._enqueue_again(message, card, now, by_channel)
                continue
            decision = self._decide(message, card, paused_until, now, suppressions)
            try:
                correlation = (correlation_ids or {}).get(message.message_id, correlation_id)
                outcome[message.message_id] = self._apply(message, card, decision, now, correlation, by_channel)
            except StaleMessage:
                outcome[message.message_id] = "raced"  # another worker moved it: its outcome stands
        for channel, bodies in by_channel.items():
            self.queues.enqueue(channel, bodies)
        return outcome

    def preview(self, requests: Sequence[MessageRequest]) -> list[PolicyPreview]:
        """What the policy would decide now for each request (a campaign's dry run), by the same `_decide` as a
        dispatch, on the same cards, suppressions, caps and pause; nothing is stored and nothing is sent."""
        now = self.clock.now()
        cards = self.contacts.cards(sorted({r.customer_id for r in requests})) if requests else {}
        paused_until = self.store.paused_until(self.settings.configuration_set)
        previews = []
        for request in requests:
            message = Message(
                message_id="preview",
                customer_id=request.customer_id,
                purpose=request.purpose,
                topic=request.topic,
                source=request.source or "preview",
                step=request.step,
                requested_channel=request.channel,
                status="requested",
                content=request.content,
                data=request.data,
                fingerprint="",
                requested_at=now,
                updated_at=now,
            )
            decision = self._decide(message, cards.get(request.customer_id), paused_until, now)
            previews.append(
                PolicyPreview(
                    customer_id=request.customer_id,
                    step=request.step,
                    outcome=decision.outcome,
                    channel=decision.channel,
                    reason=decision.reason,
                    until=decision.until,
                )
            )
        return previews

    def release_due(self, *, correlation_id: str | None, batch: int = 25) -> dict[str, int]:
        """Decide again every deferral that came due; its marker goes once the message moved on."""
        due = self.store.due_deferrals(self.clock.now())
        counts: dict[str, int] = {}
        for start in range(0, len(due), batch):
            chunk = due[start : start + batch]
            outcome = self.dispatch(
                [sort_key.rsplit("#", 1)[1] for _, sort_key in chunk], correlation_id=correlation_id
            )
            for hour_key, sort_key in chunk:
                self.store.forget_deferral(hour_key, sort_key)
            for result in outcome.values():
                counts[result] = counts.get(result, 0) + 1
        return counts

    def _due(self, message: Message, now: datetime) -> bool:
        if message.status in {"requested", "queued"}:
            return True
        return message.status == "deferred" and (message.deferred_until is None or message.deferred_until <= now)

    def _decide(
        self,
        message: Message,
        card: Mapping[str, Any] | None,
        paused_until: datetime | None,
        now: datetime,
        suppressions: SuppressionsRead | None = None,
    ) -> Decision:
        recipient = Recipient.from_card(card) if card else None
        channels = frozenset(message.content) & self.channels
        intent = Intent(message.purpose, channels, message.topic, message.requested_channel)
        situation = Situation()
        if recipient is not None:
            devices = tuple(d.endpoint_arn for d in self.store.devices(recipient.customer_id) if d.enabled)
            webhooks = tuple(self.store.customer_endpoints(recipient.customer_id)) if "webhook" in channels else ()
            addresses = [a for values in recipient.addresses.values() for a in values] + list(devices)
            since = now - self.settings.policy.longest_cap_window
            situation = Situation(
                devices=devices,
                webhooks=webhooks,
                suppressed=(suppressions or SuppressionsRead(self.store, ())).suppressed(addresses)
                if addresses
                else {},
                recent_sends=self.store.recent_sends(recipient.customer_id, since)
                if message.purpose == "marketing"
                else (),
                paused_until=paused_until,
            )
        return decide(intent, recipient, situation, now=now, settings=self.settings.policy)

    def _apply(
        self,
        message: Message,
        card: Mapping[str, Any] | None,
        decision: Decision,
        now: datetime,
        correlation_id: str | None,
        by_channel: dict[str, list[dict[str, Any]]],
    ) -> str:
        trace = "; ".join(decision.trace)
        message.channel = decision.channel
        message.address = decision.address
        if decision.outcome == "suppress":
            events = transition(message, "suppressed", now, reason=decision.reason, policy=trace)
            self.store.save_transition(message, events, correlation_id=correlation_id, now=now)
            return "suppressed"
        if decision.outcome == "defer":
            assert decision.until is not None
            message.deferred_until = decision.until
            events = transition(message, "deferred", now, reason=decision.reason, policy=trace)
            marker = self.store.deferral_marker(message, decision.until)
            self.store.save_transition(message, events, correlation_id=correlation_id, now=now, extra=[marker])
            return "deferred"
        profile = dict((card or {}).get("profile") or {})
        try:
            rendered = render_parts(message.content[str(message.channel)], profile=profile, data=message.data)
        except RenderFailed as exc:
            events = transition(message, "failed", now, reason="render_error", error=str(exc)[:300])
            self.store.save_transition(message, events, correlation_id=correlation_id, now=now)
            return "failed"
        message.deferred_until = None
        transition(message, "queued", now, policy=trace)
        body = self._outbound_body(message, now, rendered=rendered, country=profile.get("country"))
        self.store.save_transition(message, [], correlation_id=correlation_id, now=now)
        if body is not None:
            by_channel.setdefault(str(message.channel), []).append(body)
        return "queued"

    def _enqueue_again(
        self, message: Message, card: Mapping[str, Any] | None, now: datetime, by_channel: dict[str, list[Any]]
    ) -> str:
        """The same rendering as the first time (same card, same data); the sender drops what is a duplicate."""
        profile = dict((card or {}).get("profile") or {})
        try:
            rendered = render_parts(message.content[str(message.channel)], profile=profile, data=message.data)
        except (RenderFailed, KeyError):
            return "queued"
        body = self._outbound_body(message, now, rendered=rendered, country=profile.get("country"))
        if body is not None:
            by_channel.setdefault(str(message.channel), []).append(body)
        return "queued"

    def _outbound_body(
        self, message: Message, now: datetime, *, rendered: Mapping[str, Any], country: Any = None
    ) -> dict[str, Any] | None:
        if message.channel is None or message.address is None:
            return None
        unsubscribe_url = preferences_url = None
        if message.purpose == "marketing" and self.settings.link_secret and self.settings.links_base_url:
            unsubscribe_url = self._link(message, "unsubscribe", now)
            preferences_url = self._link(message, "preferences", now)
        return {
            "message_id": message.message_id,
            "customer_id": message.customer_id,
            "channel": message.channel,
            "address": message.address,
            "purpose": message.purpose,
            "topic": message.topic,
            "content": dict(rendered),
            "tags": {"message_id": message.message_id, "requested_at": message.requested_at.isoformat()},
            "tracking": message.tracking,
            "unsubscribe_url": unsubscribe_url,
            "preferences_url": preferences_url,
            "country": country if isinstance(country, str) else None,
        }

    def _link(self, message: Message, kind: str, now: datetime) -> str:
        token = LinkToken(
            kind=kind,  # type: ignore[arg-type]
            customer_id=message.customer_id,
            message_id=message.message_id,
            channel=str(message.channel),
            topic=message.topic,
            purpose=message.purpose,
            expires_at=now + self.settings.link_lifetime,
        )
        return f"{self.settings.links_base_url.rstrip('/')}/{kind}?token={sign_link(self.settings.link_secret, token)}"


def _card_addresses(cards: Iterable[Mapping[str, Any] | None]) -> list[str]:
    """Every address the contact cards hold (what the policy may check against the suppression list)."""
    return [a for card in cards if card for values in (card.get("addresses") or {}).values() for a in values]


def outbound_of(body: Mapping[str, Any]) -> OutboundMessage:
    """The rendered message a channel queue's record carries."""
    return OutboundMessage(**{k: body[k] for k in OutboundMessage.__dataclass_fields__ if k in body})


def _outbound_or_none(body: Mapping[str, Any]) -> OutboundMessage | None:
    try:
        return outbound_of(body)
    except TypeError:  # a malformed record: its own send fails it
        return None


class Sender:
    def __init__(
        self,
        store: BroadcastStore,
        contacts: Contacts,
        adapters: Mapping[str, ChannelAdapter],
        clock: Clock,
        settings: SendingSettings,
        *,
        jitter: random.Random | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.store = store
        self.contacts = contacts
        self.adapters = adapters
        self.clock = clock
        self.settings = settings
        self.jitter = jitter or random.Random()  # noqa: S311 - spreading retries, not a secret
        self.pacer = pacer
        self._batch_cards: dict[str, dict[str, Any] | None] = {}
        self._batch_suppressions: SuppressionsRead | None = None
        self._in_batch = False
        self._sent_emails: dict[datetime, int] = {}  # a batch's sends the guard counts, by the hour they fell in

    @contextmanager
    def batch(self, bodies: Sequence[Mapping[str, Any]]) -> Iterator[None]:
        """Ask the contacts function once for the cards of a queue batch's recipients, for its sends.

        The cards are as fresh as the batch (seconds before each provider call); a failed ask leaves each
        send to ask for its own card, so one unanswered call fails records, not the batch's reading.
        The guard's count of sent emails is added once for the batch, at its end, per hour (one write per
        batch, not per email). A process dying mid-batch loses that count: the guard then reads a bounce
        rate over fewer sends, higher, and pauses sooner, never later. The pacer takes the batch's sends from
        its window in one write per provider key (`Pacer.expect`).
        """
        ids = sorted({str(b["customer_id"]) for b in bodies if b.get("customer_id")})
        if self.pacer is not None:
            self.pacer.expect([o for o in map(_outbound_or_none, bodies) if o is not None])
        try:
            cards = self.contacts.cards(ids) if ids else {}
            self._batch_cards = {i: cards.get(i) for i in ids}
        except ServiceUnavailable:
            self._batch_cards = {}
        self._batch_suppressions = SuppressionsRead(self.store, (str(b["address"]) for b in bodies if b.get("address")))
        self._in_batch = True
        try:
            yield
        finally:
            self._batch_cards = {}
            self._batch_suppressions = None
            self._in_batch = False
            counted, self._sent_emails = self._sent_emails, {}
            for hour, count in sorted(counted.items()):
                self.store.count_outcome(self.settings.configuration_set, "sent", hour, count=count)

    def send(self, body: Mapping[str, Any], *, correlation_id: str | None = None) -> str:
        """Send one queued message once; answers what became of it, or raises `RetryLater`."""
        now = self.clock.now()
        message = self.store.get_message(str(body["message_id"]))
        if message is None:
            return "unknown"
        if message.status in SENT_OR_LATER or message.status in FINAL_STATUSES:
            return "duplicate"
        if message.status == "sending" and message.lease_until is not None:
            free_at = message.lease_until + self.settings.evidence_grace
            if now < free_at:
                raise RetryLater("another attempt holds the message", int((free_at - now).total_seconds()) + 1)
            evidence = self.store.evidence(message.message_id)
            if evidence is not None:  # the provider took it from the attempt that died: no second send
                return self._settle_taken(message, evidence, correlation_id, now)
        elif message.status != "queued":
            return "not_queued"
        outbound = outbound_of(body)
        blocked = self._still_allowed(message, outbound)
        if blocked:
            events = transition(message, "suppressed", now, reason=blocked, at_send="true")
            self._save(message, events, correlation_id, now)
            return "suppressed"
        if self.pacer is not None:  # before the claim: a send paced out changes nothing and costs no write
            retry_in = self.pacer.admit(outbound)
            if retry_in is not None:
                raise RetryLater("paced", retry_in)
            now = self.clock.now()  # the pacer may have waited for its window
        message.attempts += 1
        message.lease_until = now + self.settings.lease
        transition(message, "sending", now, attempt=str(message.attempts))
        self._save(message, [], correlation_id, now)  # the claim: a stale read loses here
        adapter = self.adapters.get(outbound.channel)
        try:
            if adapter is None:
                raise ChannelError(f"{outbound.channel} is not configured", permanent=True, code="no_channel")
            result = adapter.send(replace(outbound, tags={"message_id": message.message_id, **outbound.tags}))
        except ChannelError as error:
            return self._refused(message, error, correlation_id)
        done = self.clock.now()
        message.provider_message_id = result.provider_message_id
        message.lease_until = None
        events = transition(message, "sent", done, provider_message_id=result.provider_message_id or "")
        # Who owns a phone number is read only by an inbound STOP, which names nothing else; an email's
        # unsubscribe carries a signed token naming its customer, so email sends skip that write.
        # These records are written before the transition, not in a transaction with it: a crash between
        # leaves a send counted by the caps (or a provider id found) for a message still `sending`, which the
        # provider's evidence settles; never a sent message the caps miss.
        before = (
            [self.store.owner_marker(outbound.address, message.customer_id)]
            if outbound.channel in OWNED_BY_PHONE
            else []
        )
        if message.purpose == "marketing":
            before.append(self.store.sent_marker(message, done))
        if outbound.channel in FOUND_BY_PROVIDER_ID and result.provider_message_id:
            before.append(self.store.provider_marker(result.provider_message_id, message.message_id, done))
        self.store.save_transition(message, events, correlation_id=correlation_id, now=done, written_before=before)
        if message.channel == "email":
            if self._in_batch:
                hour = done.replace(minute=0, second=0, microsecond=0)
                self._sent_emails[hour] = self._sent_emails.get(hour, 0) + 1
            else:
                self.store.count_outcome(self.settings.configuration_set, "sent", done)
        return "sent"

    def _settle_taken(
        self, message: Message, provider_message_id: str, correlation_id: str | None, now: datetime
    ) -> str:
        """`sent`, on the provider's evidence, for a message whose sender died after its call."""
        message.provider_message_id = message.provider_message_id or provider_message_id or None
        message.lease_until = None
        events = transition(message, "sent", now, provider_message_id=message.provider_message_id or "")
        self._save(message, events, correlation_id, now)
        return "sent"

    def _still_allowed(self, message: Message, outbound: OutboundMessage) -> str:
        """The consent and suppression list as they are now; '' when the send may go ahead, else why not."""
        if message.customer_id in self._batch_cards:
            card = self._batch_cards[message.customer_id]
        else:
            card = self.contacts.cards([message.customer_id]).get(message.customer_id)
        if card is None or card.get("status", "active") != "active":
            return "unknown_customer"
        recipient = Recipient.from_card(card)
        if not has_consent(outbound.channel, message.purpose, message.topic, recipient.consents):
            return "no_consent"
        listed = (self._batch_suppressions or SuppressionsRead(self.store, ())).suppressed([outbound.address])
        if listed:
            return f"suppressed:{next(iter(listed.values()))}"
        return ""

    def _refused(self, message: Message, error: ChannelError, correlation_id: str | None) -> str:
        now = self.clock.now()
        message.lease_until = None
        if error.permanent:
            code = error.code or "error"
            events = transition(message, "failed", now, reason=f"permanent:{code}", error=error.reason[:300])
            self._save(message, events, correlation_id, now)
            return "failed"
        why = "throttled" if error.throttled else "transient"
        transition(message, "queued", now, reason=why, error=error.reason[:300])
        self._save(message, [], correlation_id, now)
        raise RetryLater(why, self.backoff_s(message.attempts))

    def backoff_s(self, attempt: int) -> int:
        """Exponential backoff with full jitter, at least a second, at most `retry_max_s`."""
        ceiling = min(self.settings.retry_max_s, self.settings.retry_base_s * 2 ** max(0, attempt - 1))
        return max(1, int(self.jitter.uniform(ceiling / 2, ceiling)))

    def _save(
        self,
        message: Message,
        events: Sequence[DomainEvent],
        correlation_id: str | None,
        now: datetime,
    ) -> None:
        self.store.save_transition(message, events, correlation_id=correlation_id, now=now)
