"""The customer store's contract: API bodies, the 360-degree view, and its domain events."""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints, field_validator, model_validator

from ecrm.core.contract import Contract

# The erasure protocol every engine takes part in: part of this contract, declared in core (see there).
from ecrm.core.erasure import CustomerDataErased as CustomerDataErased
from ecrm.core.erasure import CustomerErasureRequested as CustomerErasureRequested
from ecrm.core.erasure import TrackedIds as TrackedIds
from ecrm.core.events import DomainEvent

# Profile attribute names and values: part of this contract, declared in core (personalization reads them too).
from ecrm.core.values import AttributeName as AttributeName
from ecrm.core.values import FiniteFloat as FiniteFloat
from ecrm.core.values import Scalar as Scalar

# What profile events carry for other engines by default (`CUSTOMERS_PUBLISHED_ATTRIBUTES` overrides it): part of
# this contract, declared in core's vocabulary so segmentation reads it without importing this module.
from ecrm.core.vocabulary import PUBLISHED_ATTRIBUTES as PUBLISHED_ATTRIBUTES
from ecrm.core.vocabulary import Channel as Channel
from ecrm.transactions.models import ImportedStatus, OrderIn

SOURCE = "ecrm.customers"

IdentityType = Literal["email", "phone", "external_id", "loyalty_card", "device_id"]
ConsentState = Literal["granted", "denied"]
CustomerStatus = Literal["active", "merged", "erased"]

SourceName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_\-]{0,39}$")]
# marketing | transactional | profiling | topic:<name>
Purpose = Annotated[str, StringConstraints(pattern=r"^(marketing|transactional|profiling|topic:[a-z0-9_\-]{1,40})$")]

STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)


# -- identities ---------------------------------------------------------------------------------
class IdentityIn(Contract):
    """An identifier as a source knows it; normalised before it is matched."""

    model_config = STRICT

    type: IdentityType
    value: Annotated[str, StringConstraints(min_length=1, max_length=320)]
    namespace: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_\-]{0,40}$")] = Field(
        default="", description="For external_id: the system that issued it (erp, callcenter, shop...)"
    )

    @model_validator(mode="after")
    def _external_ids_are_namespaced(self) -> IdentityIn:
        if self.type == "external_id" and not self.namespace:
            raise ValueError("an external_id needs the namespace of the system that issued it")
        return self


class Identity(Contract):
    type: IdentityType
    value: str
    namespace: str = ""
    source: str
    first_seen: datetime

    @property
    def key(self) -> str:
        return identity_key(self.type, self.namespace, self.value)


def identity_key(type_: str, namespace: str, value: str) -> str:
    return f"{type_}:{namespace}:{value}" if namespace else f"{type_}:{value}"


# -- consents and preferences --------------------------------------------------------------------
class ConsentProof(Contract):
    """What makes a consent (or its withdrawal) demonstrable."""

    model_config = STRICT

    source: SourceName
    captured_at: AwareDatetime
    notice_version: Annotated[str, StringConstraints(max_length=64)] | None = None
    text: Annotated[str, StringConstraints(max_length=2000)] | None = None
    ip: Annotated[str, StringConstraints(max_length=64)] | None = None
    user_agent: Annotated[str, StringConstraints(max_length=512)] | None = None


class RecordedConsentProof(ConsentProof):
    """The proof as the store keeps it: the statement's evidence, and who recorded it.

    `recorded_by` is set by the store from the caller, never read from a body: the staff member's
    subject on staff routes and in `POST /customers`, `import:<id>` for an import, the customer's id
    on `/me`.
    """

    recorded_by: str | None = None


class ConsentIn(Contract):
    model_config = STRICT

    channel: Channel
    purpose: Purpose
    state: ConsentState
    proof: ConsentProof


class CustomerConsentUpdate(Contract):
    """`PUT /me/consents/{channel}/{purpose}`: what a customer states about their own consent.

    No `source`: the proof of a consent is evidence, and on `/me` its source is the customer, always;
    a body that names one is refused (422) rather than ignored.
    """

    model_config = STRICT

    state: ConsentState
    notice_version: Annotated[str, StringConstraints(max_length=64)] | None = None
    text: Annotated[str, StringConstraints(max_length=2000)] | None = None


class ConsentUpdate(CustomerConsentUpdate):
    """`PUT /customers/{id}/consents/{channel}/{purpose}`: staff recording a consent, and where it was given."""

    source: SourceName | None = None


class Consent(Contract):
    channel: Channel
    purpose: str
    state: ConsentState
    proof: RecordedConsentProof
    updated_at: datetime

    @field_validator("proof", mode="before")
    @classmethod
    def _held_proof(cls, value: Any) -> Any:
        """A statement's proof becomes the held proof (with no recorder until the store sets one)."""
        return value.model_dump() if isinstance(value, ConsentProof) else value


LanguageTag = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]


def _iana_zone(zone: str | None) -> str | None:
    if zone is None:
        return None
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{zone!r} is not an IANA time zone") from None
    return zone


class QuietHours(Contract):
    model_config = STRICT

    start: time
    end: time


class FrequencyLimit(Contract):
    model_config = STRICT

    max_messages: int = Field(ge=0, le=1000)
    per: Literal["day", "week", "month"]


class Preferences(Contract):
    model_config = STRICT

    preferred_channels: list[Channel] = Field(default_factory=list, max_length=6)
    language: LanguageTag | None = None
    time_zone: str | None = None
    quiet_hours: QuietHours | None = None
    frequency_limit: FrequencyLimit | None = None

    @field_validator("preferred_channels")
    @classmethod
    def _no_repeats(cls, channels: list[str]) -> list[str]:
        if len(set(channels)) != len(channels):
            raise ValueError("a channel appears twice")
        return channels

    _zone = field_validator("time_zone")(classmethod(lambda cls, zone: _iana_zone(zone)))


class PreferencesPatch(Contract):
    """Only the fields present are changed (`PATCH /me/preferences`)."""

    model_config = STRICT

    preferred_channels: list[Channel] | None = Field(default=None, max_length=6)
    language: LanguageTag | None = None
    time_zone: str | None = None
    quiet_hours: QuietHours | None = None
    frequency_limit: FrequencyLimit | None = None

    _zone = field_validator("time_zone")(classmethod(lambda cls, zone: _iana_zone(zone)))


# -- contact cards: what the broadcast engine asks at send time (the contacts function) ---------------
class ContactConsent(Contract):
    channel: Channel
    purpose: str
    state: ConsentState
    updated_at: datetime


class ContactCard(Contract):
    """Everything a send decision needs of one customer, as the store holds it at the moment of asking.

    The broadcast engine asks for it just before deciding and again before the provider call (ADR 12),
    so a consent withdrawn seconds before a send is honoured: it never keeps a copy.
    `addresses`: `email` and `phone` (E.164; sms, voice and whatsapp reach the customer on it).
    """

    customer_id: str
    status: CustomerStatus
    addresses: dict[str, list[str]] = Field(default_factory=dict)
    consents: list[ContactConsent] = Field(default_factory=list)
    preferences: Preferences = Field(default_factory=Preferences)
    profile: dict[str, Scalar] = Field(default_factory=dict, description="Attribute values for rendering")
    traits: dict[str, Any] = Field(default_factory=dict)

    def consent_state(self, channel: str, purpose: str) -> ConsentState | None:
        return next((c.state for c in self.consents if c.channel == channel and c.purpose == purpose), None)


CONTACT_CARDS_PER_CALL = 100
CustomerIdText = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]


class ContactCardsRequest(Contract):
    """`{"operation": "cards", "customer_ids": [...]}`: the cards of up to 100 customers."""

    model_config = STRICT

    operation: Literal["cards"]
    customer_ids: list[CustomerIdText] = Field(min_length=1, max_length=CONTACT_CARDS_PER_CALL)


class ContactCards(Contract):
    """Cards by the id asked for (a merged id answers with its survivor's card); erased or unknown ids are missing."""

    cards: dict[str, ContactCard] = Field(default_factory=dict)
    missing: list[str] = Field(default_factory=list)


class ContactConsentStatement(Contract):
    model_config = STRICT

    channel: Channel
    purpose: Purpose
    state: ConsentState


class RecordConsentsRequest(Contract):
    """`{"operation": "record_consents", ...}`: what the customer said through a broadcast surface.

    `recorded_by` names that surface (`one_click`, `preference_centre`, `sms_stop`, `complaint`, ...);
    the store keeps it as `broadcast:<surface>` beside the proof.
    """

    model_config = STRICT

    operation: Literal["record_consents"]
    customer_id: CustomerIdText
    consents: list[ContactConsentStatement] = Field(min_length=1, max_length=20)
    proof: ConsentProof
    recorded_by: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class RecordedConsents(Contract):
    card: ContactCard


class ContactsRequest(Contract):
    """One payload of the contacts function, told apart by its `operation`."""

    request: Annotated[ContactCardsRequest | RecordConsentsRequest, Field(discriminator="operation")]


# -- profiles ------------------------------------------------------------------------------------
class AttributeValue(Contract):
    """A profile attribute with its provenance: which source said it, and when."""

    value: Scalar
    source: str
    observed_at: datetime


PROFILE_ATTRIBUTES = (
    "first_name",
    "last_name",
    "birth_date",
    "gender",
    "company",
    "job_title",
    "street",
    "postal_code",
    "city",
    "region",
    "country",
    "locale",
)
_ATTRIBUTE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _check_attributes(attributes: dict[str, Scalar]) -> dict[str, Scalar]:
    if len(attributes) > 100:
        raise ValueError("at most 100 attributes per record")
    for name, value in attributes.items():
        if not _ATTRIBUTE_PATTERN.match(name):
            raise ValueError(f"attribute name {name!r} must be snake_case, at most 64 characters")
        if isinstance(value, str) and len(value) > 2000:
            raise ValueError(f"attribute {name!r} is longer than 2000 characters")
    if "country" in attributes and attributes["country"] is not None:
        country = str(attributes["country"])
        if not re.fullmatch(r"[A-Za-z]{2}", country):
            raise ValueError("country must be an ISO 3166-1 alpha-2 code")
        attributes["country"] = country.upper()
    return attributes


class CustomerUpsert(Contract):
    """`POST /customers`: a record from one source, matched to a customer by its identities."""

    model_config = STRICT

    source: SourceName
    identities: list[IdentityIn] = Field(min_length=1, max_length=50)
    attributes: dict[str, Scalar] = Field(default_factory=dict)
    consents: list[ConsentIn] = Field(default_factory=list, max_length=50)
    preferences: Preferences | None = None
    observed_at: AwareDatetime | None = Field(
        default=None, description="When the source saw this record (default: now)"
    )

    _attributes = field_validator("attributes")(_check_attributes)


class CustomerPatch(Contract):
    """`PATCH /customers/{id}`: staff edits; `null` removes an attribute."""

    model_config = STRICT

    attributes: dict[str, Scalar] = Field(default_factory=dict)
    identities: list[IdentityIn] = Field(default_factory=list, max_length=50)
    preferences: PreferencesPatch | None = None

    _attributes = field_validator("attributes")(_check_attributes)


class UpsertResult(Contract):
    customer_id: str
    created: bool
    matched_by: list[str] = Field(description="Identity keys that matched an existing customer")
    merged_ids: list[str] = Field(description="Customers merged into this one by this record")
    changed: list[str] = Field(default_factory=list, description="What this record changed")


class MergeRecord(Contract):
    survivor_id: str
    merged_id: str
    matched_by: list[str]
    reason: str
    merged_by: str = Field(
        description="Who caused it: a staff member, `import:<id>`, or `collect:<source>/<messageId>` (trusted "
        "sources only)"
    )
    merged_at: datetime


MAX_CLAIMS = 50


class Claim(Contract):
    """Something a client said about the customer without proof (ADR 9).

    A browser or app holds a public write key, so what it says about who the visitor is (an email,
    a phone, a user id without its signature, a name) is kept here as a claim: visible to staff,
    never an identity, never a merge key, never a profile attribute.
    """

    field: Annotated[str, StringConstraints(max_length=64)] = Field(
        description="email, phone, user_id or a profile attribute name"
    )
    value: Annotated[str, StringConstraints(max_length=320)]
    source: str
    first_claimed_at: datetime
    last_claimed_at: datetime


# -- interactions and the timeline --------------------------------------------------------------
class InteractionIn(Contract):
    model_config = STRICT

    type: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")] = Field(
        description="web_visit, page_view, product_view, add_to_cart, purchase, call, email_open, email_click, "
        "ticket, ..."
    )
    occurred_at: AwareDatetime
    source: SourceName
    channel: Channel | Literal["web", "store", "app"] | None = None
    interaction_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-:.]{1,128}$")] | None = Field(
        default=None, description="The source's id: recording the same interaction twice changes nothing"
    )
    properties: dict[str, Any] = Field(default_factory=dict)

    @field_validator("properties")
    @classmethod
    def _small(cls, properties: dict[str, Any]) -> dict[str, Any]:
        import json

        if len(json.dumps(properties, default=str)) > 16_000:
            raise ValueError("properties are larger than 16 KB")
        return properties


class Interaction(Contract):
    interaction_id: str
    customer_id: str
    type: str
    occurred_at: datetime
    recorded_at: datetime
    source: str
    channel: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class TimelinePage(Contract):
    items: list[Interaction]
    next_cursor: str | None = None


# -- the 360-degree view --------------------------------------------------------------------------
class Customer(Contract):
    customer_id: str
    status: CustomerStatus
    created_at: datetime
    updated_at: datetime
    profile: dict[str, AttributeValue] = Field(default_factory=dict)
    identities: list[Identity] = Field(default_factory=list)
    consents: list[Consent] = Field(default_factory=list)
    preferences: Preferences = Field(default_factory=Preferences)
    traits: dict[str, Any] = Field(default_factory=dict, description="Computed by the analysis engine")
    segments: list[str] = Field(default_factory=list, description="Maintained by the segmentation engine")
    merged_ids: list[str] = Field(default_factory=list, description="Customers merged into this one")
    merged_into: str | None = None
    sources: list[str] = Field(default_factory=list)
    claims: list[Claim] = Field(
        default_factory=list,
        description=f"Unverified statements from client sources (ADR 9), the latest {MAX_CLAIMS}; never identities",
    )
    version: int = 0


class CustomerView(Customer):
    recent_timeline: list[Interaction] = Field(default_factory=list)


# -- imports --------------------------------------------------------------------------------------
class ImportRequest(Contract):
    """`POST /imports`: where the file will come from and how its columns map."""

    model_config = STRICT

    source: SourceName
    format: Literal["csv", "jsonl"] = "csv"
    kind: Literal["customers", "orders"] = Field(
        default="customers",
        description="What a row is: a customer record, or a line of an order (rows of one order are consecutive; "
        "a JSON Lines row may carry the order's `lines` as a list). Orders are placed once per source and "
        "`order_ref`, at their own `placed_at`, for the customer their identities resolve to (created if none)",
    )
    mapping: dict[str, str] = Field(
        min_length=1,
        description="Column -> field. customers: email, phone, external_id, loyalty_card, device_id, consent."
        "<channel>.<purpose>, preference.<name>, observed_at, or a profile attribute name. orders: order_ref, "
        "the customer's identities (email, phone, external_id, loyalty_card, device_id), placed_at, currency, "
        "channel, store, status, and the line's sku, name, quantity, unit_price (a decimal), category, or lines. "
        "'-' ignores a column",
    )
    default_phone_region: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = None
    earn_points: bool = Field(
        default=False,
        description="orders: whether the imported orders earn loyalty points; a history backfill does not (the "
        "default), a feed of new orders from a store system does",
    )

    @model_validator(mode="after")
    def _points_are_for_orders(self) -> ImportRequest:
        if self.earn_points and self.kind != "orders":
            raise ValueError("earn_points is for an import of kind orders")
        return self


class ImportStatus(Contract):
    import_id: str
    source: str
    status: Literal["awaiting_upload", "running", "completed", "failed", "duplicate"]
    file_key: str
    total_rows: int | None = None
    processed_rows: int = 0
    imported_rows: int = 0
    unchanged_rows: int = 0
    error_rows: int = 0
    created_customers: int = 0
    merged_customers: int = 0
    error_report_key: str | None = None
    error_report_url: str | None = Field(default=None, description="Presigned download of the error report")
    failure: str | None = None
    requested_by: str | None = Field(
        default=None,
        description="Who started it: the staff member's subject, or `drop:<object key>` for a dropped file; "
        "merges it causes name `import:<import_id>`",
    )
    created_at: datetime
    updated_at: datetime
    duplicate_of: str | None = None


class ImportTicket(Contract):
    import_id: str
    upload_url: str
    upload_method: Literal["PUT"] = "PUT"
    upload_headers: dict[str, str] = Field(default_factory=dict)
    expires_in: int
    status_url: str


# -- GDPR -----------------------------------------------------------------------------------------
class ErasureRequest(Contract):
    request_id: str
    customer_id: str
    customer_ids: list[str]
    requested_by: str
    requested_at: datetime
    status: Literal["pending", "completed"]
    participants: list[str]
    acknowledged: dict[str, datetime] = Field(default_factory=dict)
    completed_at: datetime | None = None


# -- events ---------------------------------------------------------------------------------------
class ProfileSnapshot(Contract):
    """What other engines may know of a profile without asking the store (event-carried state).

    Only the attributes the deployment publishes (`CUSTOMERS_PUBLISHED_ATTRIBUTES`, by default
    those segmentation reads: no names, addresses or identity values), the kinds of identity the
    customer has, and consent states by `channel:purpose`. `version` orders snapshots: a consumer
    keeps the highest it has seen, so late or repeated deliveries change nothing.
    """

    version: int
    attributes: dict[str, Scalar] = Field(default_factory=dict)
    identity_types: list[str] = Field(default_factory=list)
    consents: dict[str, ConsentState] = Field(default_factory=dict)


class CustomerCreated(DomainEvent):
    """A record matched no existing customer: a new profile exists."""

    source = SOURCE
    detail_type = "CustomerCreated"

    customer_id: str
    record_source: str
    identity_types: list[str]
    created_at: datetime
    snapshot: ProfileSnapshot | None = None


class CustomerUpdated(DomainEvent):
    """Profile attributes, identities or preferences of a customer changed."""

    source = SOURCE
    detail_type = "CustomerUpdated"

    customer_id: str
    record_source: str
    changed: list[str]
    updated_at: datetime
    snapshot: ProfileSnapshot | None = None


class CustomersMerged(DomainEvent):
    """Records showed two customers are one person: `merged_ids` now resolve to `survivor_id`."""

    source = SOURCE
    detail_type = "CustomersMerged"

    survivor_id: str
    merged_ids: list[str]
    matched_by: list[str]
    reason: str
    merged_by: str = Field(default="", description="Who caused the merge (see `MergeRecord.merged_by`)")
    merged_at: datetime
    snapshot: ProfileSnapshot | None = None


class ConsentChanged(DomainEvent):
    """A consent was granted or withdrawn (or a merge made it more restrictive)."""

    source = SOURCE
    detail_type = "ConsentChanged"

    customer_id: str
    channel: str
    purpose: str
    state: ConsentState
    previous_state: ConsentState | None
    proof_source: str
    changed_at: datetime


class InteractionRecorded(DomainEvent):
    """Something the customer did or experienced, now on their timeline (a message's steps are not republished:
    broadcast's own message events are the record of them)."""

    source = SOURCE
    detail_type = "InteractionRecorded"

    customer_id: str
    interaction_id: str
    type: str
    channel: str | None
    record_source: str
    occurred_at: datetime
    properties: dict[str, Any]


# The namespace of the `device_id` identities that are tracking's anonymous ids (the Segment `anonymousId`).
TRACKING_ANONYMOUS_NAMESPACE = "anon"


class CustomerErased(DomainEvent):
    """Every engine acknowledged: the erasure request is complete."""

    source = SOURCE
    detail_type = "CustomerErased"

    request_id: str
    customer_id: str
    completed_at: datetime


class OrderImportRequested(DomainEvent):
    """An orders import resolved an order's customer and hands the order to the transactions engine.

    Written with the import chunk's progress in one transaction (so a chunk retried after a crash hands no order
    over twice, and none is lost); the transactions engine places it once per (`record_source`, `order_ref`) at
    `placed_at`, so a redelivery replays it."""

    source = SOURCE
    detail_type = "OrderImportRequested"

    import_id: str
    record_source: str
    order_ref: str
    rows: list[int] = Field(description="The file's rows of the order")
    order: OrderIn
    placed_at: datetime
    status: ImportedStatus
    earns_points: bool


class ImportCompleted(DomainEvent):
    """A bulk import finished: counts and where the error report is."""

    source = SOURCE
    detail_type = "ImportCompleted"

    import_id: str
    record_source: str
    imported_rows: int
    unchanged_rows: int
    error_rows: int
    created_customers: int
    merged_customers: int
    error_report_key: str | None
    completed_at: datetime
