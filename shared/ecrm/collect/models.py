"""The collection engine's contract: Segment-spec messages, sources, and its domain events.

Field names follow the Segment HTTP tracking API (camelCase on the wire), so existing client
libraries work unchanged. Limits as in the spec: 32 KB per message, 500 KB per batch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints, model_validator

from ecrm.core.contract import Contract
from ecrm.core.erasure import CustomerDataErased
from ecrm.core.events import DomainEvent

SOURCE = "ecrm.collect"
MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024

MessageType = Literal["identify", "track", "page", "screen", "group", "alias"]
IdentityTrust = Literal["trusted", "verified", "unverified"]
"""How far the customer store may believe the ids and traits of a collected message (ADR 9):

- `trusted`: a server-side source (its write key is a secret): ids and traits are facts;
- `verified`: a client source (web, mobile: its write key is public) whose call carried a valid
  `context.userHash`, the HMAC of the `userId` computed by the site's backend: the user id is proof,
  the traits are claims;
- `unverified`: a client source without a valid signature: the anonymous id is the only thing it
  may attach events to; the user id and traits are claims.
"""
SERVER_KINDS = frozenset({"server"})
"""Source kinds whose write key stays on a server, so whoever holds it is the company itself."""
USER_HASH_FIELD = "userHash"
"""`context.userHash`: hex HMAC-SHA256 of the `userId` with the source's identity secret."""
Id = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class Message(Contract):
    """One Segment message. Unknown top-level fields are kept (the spec allows integrations etc.)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    type: MessageType
    message_id: Id | None = Field(default=None, alias="messageId")
    user_id: Id | None = Field(default=None, alias="userId")
    anonymous_id: Id | None = Field(default=None, alias="anonymousId")
    timestamp: AwareDatetime | None = None
    sent_at: AwareDatetime | None = Field(default=None, alias="sentAt")
    context: dict[str, Any] = Field(default_factory=dict)
    integrations: dict[str, Any] = Field(default_factory=dict)
    # track
    event: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    # identify / group
    traits: dict[str, Any] = Field(default_factory=dict)
    # page / screen
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    category: Annotated[str, StringConstraints(max_length=200)] | None = None
    # group
    group_id: Id | None = Field(default=None, alias="groupId")
    # alias
    previous_id: Id | None = Field(default=None, alias="previousId")

    @model_validator(mode="after")
    def _spec(self) -> Message:
        if self.type != "alias" and not (self.user_id or self.anonymous_id):
            raise ValueError("userId or anonymousId is required")
        if self.type == "track" and not self.event:
            raise ValueError("a track call needs an event name")
        if self.type == "group" and not self.group_id:
            raise ValueError("a group call needs a groupId")
        if self.type == "alias" and not (self.previous_id and self.user_id):
            raise ValueError("an alias call needs previousId and userId")
        return self


class Batch(Contract):
    """`POST /v1/batch`: `batch` holds messages; `context` and `integrations` apply to each."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    batch: list[dict[str, Any]] = Field(min_length=1, max_length=2500)
    context: dict[str, Any] = Field(default_factory=dict)
    integrations: dict[str, Any] = Field(default_factory=dict)
    sent_at: AwareDatetime | None = Field(default=None, alias="sentAt")


class Rejection(Contract):
    model_config = ConfigDict(serialize_by_alias=True)

    index: int
    message_id: str | None = Field(default=None, serialization_alias="messageId")
    reason: str


class IngestResult(Contract):
    """Segment answers `{"success": true}`; we add what was accepted, duplicated and rejected."""

    model_config = ConfigDict(serialize_by_alias=True)

    success: bool
    accepted: int
    duplicates: int = 0
    rejected: list[Rejection] = Field(default_factory=list)


class CollectedEvent(Contract):
    """A message as the platform keeps it: normalised, with server times and its source."""

    message_id: str
    type: MessageType
    source_id: str
    source_name: str
    user_id: str | None = None
    anonymous_id: str | None = None
    event: str | None = None
    name: str | None = None
    category: str | None = None
    group_id: str | None = None
    previous_id: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    identity_trust: IdentityTrust = Field(
        default="unverified",
        description="How far its ids and traits may be believed (ADR 9); absent means the least: unverified",
    )
    timestamp: datetime = Field(description="When it happened: the client's time, corrected for clock skew")
    original_timestamp: datetime | None = Field(default=None, description="The client's own timestamp")
    sent_at: datetime | None = None
    received_at: datetime = Field(description="When the platform received it")


# -- sources -------------------------------------------------------------------------------------
class SourceIn(Contract):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_\-]{0,39}$")] = Field(
        description="Also the namespace of this source's userIds in the customer store (external_id)"
    )
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    kind: Literal["web", "ios", "android", "server", "other"] = "web"


class SourcePatch(Contract):
    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    description: Annotated[str, StringConstraints(max_length=500)] | None = None


class Source(Contract):
    source_id: str
    name: str
    description: str = ""
    kind: str = "web"
    trusted: bool = Field(
        default=False,
        description="A server-side source: the identities and traits it sends are facts. Client sources "
        "(web, ios, android, other) are not: their identities are claims unless the call is signed (ADR 9)",
    )
    enabled: bool = True
    key_prefix: str = Field(description="The first characters of the current write key, to recognise it")
    created_at: datetime
    rotated_at: datetime | None = None


class SourceWithKey(Source):
    write_key: str = Field(description="Shown once: only its hash is stored")
    previous_key_valid_until: datetime | None = None
    identity_secret: str | None = Field(
        default=None,
        description="Client sources only, shown once: the site's backend signs each signed-in user id with it "
        "(`context.userHash` = hex HMAC-SHA256 of the userId); keep it on the server, never in the page",
    )


# -- events ---------------------------------------------------------------------------------------
class _Collected(DomainEvent):
    """Base of the collection engine's events: the message as kept (`CollectedEvent`)."""

    source = SOURCE

    message: CollectedEvent


class UserIdentified(_Collected):
    """An identify call: a user id and/or traits for an anonymous id."""

    detail_type = "UserIdentified"


class TrackEventReceived(_Collected):
    """A track call (product viewed, added to cart, order completed, ...)."""

    detail_type = "TrackEventReceived"


class PageViewed(_Collected):
    """A page call from a web site."""

    detail_type = "PageViewed"


class ScreenViewed(_Collected):
    """A screen call from a mobile app."""

    detail_type = "ScreenViewed"


class GroupIdentified(_Collected):
    """A group call: the user belongs to an account or organisation."""

    detail_type = "GroupIdentified"


class UserAliased(_Collected):
    """An alias call: `previousId` and `userId` are the same person."""

    detail_type = "UserAliased"


EVENT_FOR_TYPE: dict[str, type[_Collected]] = {
    "identify": UserIdentified,
    "track": TrackEventReceived,
    "page": PageViewed,
    "screen": ScreenViewed,
    "group": GroupIdentified,
    "alias": UserAliased,
}


class CollectDataErased(CustomerDataErased):
    """The collection engine's acknowledgement of an erasure request: the lake holds no row of the customer."""

    source = SOURCE
    detail_type = "CustomerDataErased"
