"""The broadcast engine's contract: message requests and views, statuses, and its domain events (ADR 12).

A message is addressed by its key `(source, customer, step)` and never by a random id, so a re-run of a
request batch names the same messages. The events are what the customer store turns into timeline
interactions and what insights count; `CustomerUnsubscribed` tells every engine a consent went away.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from ecrm.core.contract import Contract
from ecrm.core.erasure import CustomerDataErased
from ecrm.core.events import DomainEvent
from ecrm.core.vocabulary import DeliveryChannel

SOURCE = "ecrm.broadcast"

MessagePurpose = Literal["marketing", "transactional"]
MessageStatus = Literal[
    "requested", "deferred", "suppressed", "queued", "sending", "sent", "delivered", "bounced", "complained", "failed"
]
# Where a status may go next: every transition is a conditional write naming the state it leaves.
NEXT_STATUSES: dict[str, frozenset[str]] = {
    "requested": frozenset({"deferred", "suppressed", "queued"}),
    "deferred": frozenset({"deferred", "suppressed", "queued"}),
    "queued": frozenset({"sending", "suppressed", "failed"}),
    "sending": frozenset({"queued", "sent", "failed", "suppressed", "delivered", "bounced", "complained"}),
    "sent": frozenset({"delivered", "bounced", "complained", "failed"}),
    "delivered": frozenset({"complained", "bounced"}),
    "bounced": frozenset(),
    "complained": frozenset(),
    "suppressed": frozenset(),
    "failed": frozenset(),
}
FINAL_STATUSES = frozenset(s for s, nxt in NEXT_STATUSES.items() if not nxt)
SENT_OR_LATER = frozenset({"sent", "delivered", "bounced", "complained"})

LOCALE_PATTERN = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8}){0,3}$"
CUSTOMER_ID_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"
MESSAGE_ID_PATTERN = r"^msg_[0-9A-Z]{26}$"
Topic = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_\-]{1,40}$")]
TEMPLATE_ID_PATTERN = r"^tpl_[0-9A-Z]{26}$"
SourceRef = Annotated[str, StringConstraints(pattern=r"^(campaign|journey|trigger|api):[A-Za-z0-9_.:\-]{1,128}$")]

# The parts each channel's content needs (rendered with the customer's profile and the request's data).
REQUIRED_PARTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "email": (("subject",), ("html", "text")),  # a subject, and html or text
    "sms": (("body",),),
    "voice": (("text",),),
    "push": (("body",),),
    "whatsapp": (("template_name",), ("language",)),
    "in_app": (("title",), ("body",)),
    "webhook": (("payload",),),
}


class TemplateRef(Contract):
    """A channel's content as a template the personalization engine stores, instead of inline parts.

    The version is pinned on the message when it is requested (the latest when none is named), so every
    later rendering of that message (a redelivery, a deferral that came due) uses the same text.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    template_id: Annotated[str, StringConstraints(pattern=TEMPLATE_ID_PATTERN)]
    version: Annotated[int, Field(ge=1, le=1_000_000)] | None = Field(default=None, description="Default: the latest")
    locale: Annotated[str, StringConstraints(pattern=LOCALE_PATTERN)] | None = Field(
        default=None, description="The variant: this tag, else its language, else the template's default locale"
    )


class PinnedTemplate(Contract):
    """The template version (and locale variant) a message's channel content was resolved from."""

    template_id: str
    version: int
    locale: str


def template_ref_of(parts: Mapping[str, Any]) -> TemplateRef | None:
    """The channel's content as a template reference, or None when it holds inline parts."""
    return TemplateRef.model_validate(parts) if "template_id" in parts else None


class MessageRequest(Contract):
    """`POST /messages`: one message to one customer, through the delivery policy.

    A channel's content is either its parts (jinja2 templates) or `{"template_id": ..., "version": ...,
    "locale": ...}`, a stored personalization template of that channel, resolved when the message is requested.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    customer_id: Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)]
    purpose: MessagePurpose
    topic: Topic | None = None
    channel: DeliveryChannel | None = Field(
        default=None, description="Forces the channel (no fallback); none: the customer's preferred reachable one"
    )
    content: dict[DeliveryChannel, dict[str, Any]] = Field(
        description="Per channel, its parts as jinja2 templates rendered with the customer's profile and `data`, "
        'or a stored template: {"template_id": "tpl_...", "version": 2, "locale": "fr"} (version and locale optional)'
    )
    data: dict[str, Any] = Field(default_factory=dict, description="Values the templates read as `data.<name>`")
    source: SourceRef | None = Field(
        default=None, description="campaign:<id>, journey:<id> or trigger:<name>; api sources use Idempotency-Key"
    )
    step: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")] = "0"
    tracking: bool = Field(default=False, description="Email: open and click tracking for this message")

    @field_validator("content")
    @classmethod
    def _parts_present(cls, content: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if not content:
            raise ValueError("content for at least one channel is required")
        for channel, parts in content.items():
            if "template_id" in parts:
                try:
                    content[channel] = TemplateRef.model_validate(parts).model_dump(exclude_none=True)
                except ValidationError as error:
                    wrong = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:3])
                    raise ValueError(f"{channel} names a template wrongly ({wrong})") from None
                continue
            subject = parts.get("subject") if channel == "email" else None
            if isinstance(subject, str) and ("\r" in subject or "\n" in subject):
                raise ValueError("an email subject is one line (no CR or LF)")
            for alternatives in REQUIRED_PARTS[channel]:
                if not any(parts.get(name) for name in alternatives):
                    raise ValueError(f"{channel} content needs {' or '.join(alternatives)}")
        return content

    @model_validator(mode="after")
    def _forced_channel_has_content(self) -> MessageRequest:
        if self.channel is not None and self.channel not in self.content:
            raise ValueError(f"the forced channel {self.channel} has no content")
        if self.source is not None and self.source.startswith("api:"):
            raise ValueError("api sources are named by the Idempotency-Key header")
        return self


class HistoryEntry(Contract):
    at: datetime
    status: str
    reason: str | None = None
    detail: dict[str, str] = Field(default_factory=dict)


class Message(Contract):
    """A message as stored: its request, where the policy sent it, and every step it went through."""

    message_id: str
    customer_id: str
    purpose: MessagePurpose
    topic: str | None = None
    source: str
    step: str = "0"
    requested_channel: str | None = None
    channel: str | None = None
    address: str | None = None
    status: MessageStatus
    reason: str | None = None
    content: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Stored apart from the status (`BroadcastStore`): read only to render"
    )
    data: dict[str, Any] = Field(default_factory=dict)
    tracking: bool = False
    templates: dict[str, PinnedTemplate] = Field(
        default_factory=dict, description="Per channel, the stored template its content was resolved from"
    )
    fingerprint: str
    requested_at: datetime
    updated_at: datetime
    deferred_until: datetime | None = None
    attempts: int = 0
    lease_until: datetime | None = None
    provider_message_id: str | None = None
    opened_at: datetime | None = None
    clicked_at: datetime | None = None
    version: int = 0
    history: list[HistoryEntry] = Field(default_factory=list)
    # Read from an item written before the content was stored apart: its writes keep the content inline.
    _inline_content: bool = PrivateAttr(default=False)


class MessageAccepted(Contract):
    message_id: str
    status: MessageStatus


TEST_ADDRESS_PATTERN = r"^(\+[1-9][0-9]{6,14}|[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63})$"


class TestMessage(Contract):
    """A test send (a campaign's, to a staff address): rendered with sample data and sent straight to the raw
    address as a transactional message, never to a customer card, never a stored message, so no report or
    insight counts it. `key` makes a retry send nothing."""

    __test__ = False  # not a test case, whatever its name

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    key: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:@+\-]{1,300}$")]
    channel: Literal["email", "sms"]
    address: Annotated[str, StringConstraints(pattern=TEST_ADDRESS_PATTERN)]
    content: dict[str, Any] = Field(description="The channel's parts, as jinja2 templates")
    profile: dict[str, Any] = Field(default_factory=dict, description="Sample profile values the templates read")
    data: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _address_fits_channel(self) -> TestMessage:
        if (self.channel == "sms") != self.address.startswith("+"):
            raise ValueError(
                f"a {self.channel} test goes to {'an E.164 number' if self.channel == 'sms' else 'an email address'}"
            )
        for alternatives in REQUIRED_PARTS[self.channel]:
            if not any(self.content.get(name) for name in alternatives):
                raise ValueError(f"{self.channel} content needs {' or '.join(alternatives)}")
        return self


class TestOutcome(Contract):
    __test__ = False

    key: str
    status: Literal["sent", "already_sent", "failed"]
    reason: str | None = None


class PolicyPreview(Contract):
    """What the delivery policy would decide now for one request, nothing stored (a campaign's dry run)."""

    customer_id: str
    step: str
    outcome: Literal["send", "defer", "suppress"]
    channel: str | None = None
    reason: str | None = None
    until: datetime | None = None


class MessageView(Contract):
    """`GET /messages/{id}`: the status and its history (the content stays inside the engine)."""

    message_id: str
    customer_id: str
    purpose: MessagePurpose
    topic: str | None
    source: str
    step: str
    channel: str | None
    status: MessageStatus
    reason: str | None
    requested_at: datetime
    updated_at: datetime
    deferred_until: datetime | None = None
    opened_at: datetime | None = None
    clicked_at: datetime | None = None
    templates: dict[str, PinnedTemplate] = Field(default_factory=dict)
    history: list[HistoryEntry]

    @classmethod
    def of(cls, message: Message) -> MessageView:
        return cls.model_validate(message.model_dump(include=set(cls.model_fields)))


class MessagePage(Contract):
    items: list[MessageView]
    next: str | None = None


# -- customer-facing ----------------------------------------------------------------------------
class InboxItem(Contract):
    item_id: str
    message_id: str
    title: str
    body: str
    image_url: str | None = None
    cta_label: str | None = None
    cta_url: str | None = None
    created_at: datetime
    read_at: datetime | None = None


class Inbox(Contract):
    items: list[InboxItem]
    unread: int


DevicePlatform = Literal["apns", "apns_sandbox", "fcm"]


class DeviceIn(Contract):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    platform: DevicePlatform
    token: Annotated[str, StringConstraints(min_length=8, max_length=4096, pattern=r"^[A-Za-z0-9_:\-.]+$")]


class Device(Contract):
    device_id: str
    platform: DevicePlatform
    endpoint_arn: str
    enabled: bool = True
    registered_at: datetime


class Suppression(Contract):
    address: str
    channel: str
    reason: str
    customer_id: str | None = None
    suppressed_at: datetime


class SuppressionPage(Contract):
    items: list[Suppression]
    next: str | None = None


class WebhookEndpointIn(Contract):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: Annotated[
        str, StringConstraints(pattern=r"^(https://[^\s]{3,2000}|http://127\.0\.0\.1(:[0-9]{1,5})?(/[^\s]{0,2000})?)$")
    ] = Field(description="https; plain http to 127.0.0.1 only where the deployment allows it (local runs)")
    customer_id: Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)] | None = Field(
        default=None, description="The customer whose device it is; none: a partner system"
    )


class WebhookEndpointCreated(Contract):
    endpoint_id: str
    url: str
    customer_id: str | None
    secret: str = Field(description="Shown once: signs every delivery (X-Ecrm-Signature)")
    enabled: bool = True


# -- events ---------------------------------------------------------------------------------------
class MessageEvent(DomainEvent):
    """A message's transition, as the customer store's timeline and insights read it."""

    source: ClassVar[str] = SOURCE

    message_id: str
    customer_id: str
    channel: DeliveryChannel | None = Field(default=None, description="None before the policy chose")
    purpose: MessagePurpose
    topic: str | None = None
    source_ref: str = Field(alias="source", description="campaign:<id> | journey:<id> | trigger:<name> | api:<key>")
    step: str = "0"
    status: MessageStatus
    reason: str | None = None
    occurred_at: datetime
    requested_at: datetime | None = Field(
        default=None, description="When the message was requested: names its one line on the customer's timeline"
    )

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, serialize_by_alias=True)


class MessageRequested(MessageEvent):
    """A message was accepted; the policy decides next what becomes of it."""

    detail_type: ClassVar[str] = "MessageRequested"


class MessageDeferred(MessageEvent):
    """Quiet hours, the SMS sending window or a deliverability pause hold the message until `until`."""

    detail_type: ClassVar[str] = "MessageDeferred"
    until: datetime


class MessageSuppressed(MessageEvent):
    """Not sent, with the reason (no consent, suppressed address, unreachable, frequency cap...)."""

    detail_type: ClassVar[str] = "MessageSuppressed"


class MessageSent(MessageEvent):
    """The provider took the message."""

    detail_type: ClassVar[str] = "MessageSent"


class MessageDelivered(MessageEvent):
    detail_type: ClassVar[str] = "MessageDelivered"


class MessageBounced(MessageEvent):
    detail_type: ClassVar[str] = "MessageBounced"


class MessageComplained(MessageEvent):
    detail_type: ClassVar[str] = "MessageComplained"


class MessageOpened(MessageEvent):
    detail_type: ClassVar[str] = "MessageOpened"


class MessageClicked(MessageEvent):
    detail_type: ClassVar[str] = "MessageClicked"
    link: str | None = None


class MessageFailed(MessageEvent):
    """The provider refused the message for good, or it could not be sent: the reason says which."""

    detail_type: ClassVar[str] = "MessageFailed"


UnsubscribeMethod = Literal["one_click", "preference_centre", "sms_stop", "whatsapp_stop", "complaint"]


class CustomerUnsubscribed(DomainEvent):
    """A customer withdrew a consent through broadcast (the customer store already holds the withdrawal)."""

    source: ClassVar[str] = SOURCE
    detail_type: ClassVar[str] = "CustomerUnsubscribed"

    customer_id: str
    channel: str
    topic: str | None = None
    purpose: str = Field(description='"marketing" or "topic:<name>"')
    method: UnsubscribeMethod
    address_hash: str | None = Field(default=None, description="SHA-256 of the address, never the address")
    occurred_at: datetime


class OutcomeCount(Contract):
    """How many of one message event broadcast published in a minute, for one channel, source and step."""

    minute: datetime = Field(description="The minute the events happened in (their `occurred_at`), UTC")
    event: str = Field(description="The message event counted: its detail type (MessageSent, MessageClicked...)")
    channel: DeliveryChannel | None = None
    source: str = Field(
        description="A campaign's or a journey's messages: `campaign:<id>` or `journey:<id>`; any other source by "
        "its kind alone (`api`, `trigger`...), which no counter reads further"
    )
    step: str = Field(
        default="",
        description="A campaign message's step (`r<run>.<arm>`), a journey's step id (its step without the pass), "
        "empty for any other source",
    )
    events: int = Field(ge=1)
    messages: int = Field(
        ge=0,
        description="How many of the events were their message's first of this kind: a click on a second link of "
        "a message is an event, not a message; every other message event happens once per message",
    )


class MessageOutcomesCounted(DomainEvent):
    """What broadcast published in one window of its table's stream, counted once: the message events per minute,
    channel, source and step (ADR 12, "Outcomes counted at the source"). What counters of message events read
    instead of every event: each window of each shard of the stream is counted once, whatever Lambda retried."""

    source: ClassVar[str] = SOURCE
    detail_type: ClassVar[str] = "MessageOutcomesCounted"

    shard_id: str
    window_start: datetime
    window_end: datetime
    first_sequence: str = Field(description="The first stream record counted here (a sequence number)")
    last_sequence: str = Field(description="The last stream record counted here")
    part: int = Field(default=1, ge=1, description="A window's counts travel in parts of at most 500 counts")
    parts: int = Field(default=1, ge=1)
    counts: list[OutcomeCount]


EVENT_OF_STATUS: dict[str, type[MessageEvent]] = {
    "requested": MessageRequested,
    "deferred": MessageDeferred,
    "suppressed": MessageSuppressed,
    "sent": MessageSent,
    "delivered": MessageDelivered,
    "bounced": MessageBounced,
    "complained": MessageComplained,
    "failed": MessageFailed,
}


class BroadcastDataErased(CustomerDataErased):
    """The broadcast engine's acknowledgement of an erasure request, from this engine's source."""

    source: ClassVar[str] = SOURCE
    detail_type: ClassVar[str] = "CustomerDataErased"
