"""From collected events (the Segment spec) to customers: identities, timeline, anonymous stitching.

What an event may do depends on how far its ids can be believed (`identity_trust`, ADR 9):

- trusted (a server-side source): `identify` / `alias` resolve through the customer store's identity
  resolution: the source's `userId` is an `external_id` in the source's namespace, the
  `anonymousId` a `device_id` in the `anon` namespace, `traits.email` / `traits.phone` are
  identities too, and other traits update the profile. Such a record may merge two customers; the
  merge records the source and the message that caused it.
- verified (a client source whose `userId` carried a valid `context.userHash`): the user id and the
  anonymous id resolve (a device id never merges two customers), so the visitor's anonymous events
  join the customer the site vouched for; the traits are only claims.
- unverified (a client source without a valid signature): the anonymous id is the only id used. The
  user id and traits of an `identify` are kept as claims (`Customer.claims`, and an
  `identity_claimed` interaction) on the customer the anonymous id already belongs to, or held with
  the anonymous events until a trusted or verified call links it. It never adds an identity, merges,
  or changes a profile; an unverified `alias` changes nothing.

Whatever an anonymous visitor did before is moved onto the customer's timeline once the anonymous id
is linked: nothing browsed before sign-in is lost. `track` / `page` / `screen` / `group` land on the
timeline of the customer their believable ids resolve to; a believable `userId` never seen before
creates the customer; an anonymous id alone is held under that id (90 days) until it is linked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ecrm.collect.models import CollectedEvent
from ecrm.customers.identity import InvalidIdentity, normalize_identity
from ecrm.customers.models import (
    TRACKING_ANONYMOUS_NAMESPACE,
    CustomerUpsert,
    IdentityIn,
    Interaction,
    InteractionIn,
)
from ecrm.customers.service import CustomerService

ANONYMOUS_NAMESPACE = TRACKING_ANONYMOUS_NAMESPACE
CLAIMED_INTERACTION = "identity_claimed"
CLAIMED_TRAITS = ("email", "phone")
TRAIT_ATTRIBUTES = {
    "firstName": "first_name",
    "first_name": "first_name",
    "lastName": "last_name",
    "last_name": "last_name",
    "birthday": "birth_date",
    "gender": "gender",
    "title": "job_title",
    "company": "company",
    "city": "city",
    "country": "country",
    "postalCode": "postal_code",
    "postal_code": "postal_code",
    "state": "region",
    "street": "street",
}


@dataclass(frozen=True)
class StitchOutcome:
    customer_id: str | None
    held: bool = False
    stitched: int = 0
    claims: int = 0
    ignored: bool = False


def interaction_type(event: CollectedEvent) -> str:
    if event.type == "page":
        return "page_view"
    if event.type == "screen":
        return "screen_view"
    if event.type == "group":
        return "group"
    name = re.sub(r"[^a-z0-9]+", "_", (event.event or "event").lower()).strip("_") or "event"
    return (name if name[0].isalpha() else f"event_{name}")[:40]


def _believed_user_id(event: CollectedEvent) -> str | None:
    """The user id, when the source may be believed about it: trusted, or signed by the site's backend."""
    return event.user_id if event.identity_trust in ("trusted", "verified") else None


def _identities(event: CollectedEvent, *, with_traits: bool) -> list[IdentityIn]:
    ids: list[IdentityIn] = []
    user_id = _believed_user_id(event)
    if user_id:
        ids.append(IdentityIn(type="external_id", namespace=event.source_name, value=user_id))
    if event.anonymous_id:
        ids.append(IdentityIn(type="device_id", namespace=ANONYMOUS_NAMESPACE, value=event.anonymous_id))
    if not with_traits:
        return ids
    for trait, kind in (("email", "email"), ("phone", "phone")):
        value = event.traits.get(trait)
        if isinstance(value, str) and value.strip():
            candidate = IdentityIn(type=kind, value=value)
            try:
                normalize_identity(candidate)
            except InvalidIdentity:
                continue  # a bad trait is not a reason to lose the event
            ids.append(candidate)
    return ids


def _claims(event: CollectedEvent) -> dict[str, str]:
    """What an identify call from a client source says without proof: kept as claims, never as facts."""
    claims: dict[str, str] = {}
    if event.user_id and _believed_user_id(event) is None:
        claims["user_id"] = event.user_id
    for trait in CLAIMED_TRAITS:
        value = event.traits.get(trait)
        if isinstance(value, str) and value.strip():
            claims[trait] = value.strip()[:320]
    for name, value in _attributes(event.traits).items():
        claims[name] = str(value)[:320]
    return claims


def _attributes(traits: dict[str, Any]) -> dict[str, Any]:
    flat = dict(traits)
    address = traits.get("address")
    if isinstance(address, dict):
        flat.update({k: v for k, v in address.items() if k not in flat})
    if isinstance(traits.get("company"), dict):
        flat["company"] = traits["company"].get("name")
    out: dict[str, Any] = {}
    for trait, attribute in TRAIT_ATTRIBUTES.items():
        value = flat.get(trait)
        if isinstance(value, str | int | float | bool) and value != "":
            out[attribute] = value
    country = out.get("country")
    if country is not None and not (isinstance(country, str) and re.fullmatch(r"[A-Za-z]{2}", country)):
        out.pop("country")
    return out


class Stitcher:
    def __init__(self, service: CustomerService) -> None:
        self.service = service

    def apply(self, event: CollectedEvent, *, correlation_id: str | None = None) -> StitchOutcome:
        if event.type == "alias":
            return self._alias(event, correlation_id)
        if event.type == "identify":
            return self._identify(event, correlation_id)
        user_id = _believed_user_id(event)
        owner = self._owner(event)
        if owner is None and not user_id:
            if not event.anonymous_id:  # only an unverified user id: nothing it may be attached to
                return StitchOutcome(None, ignored=True)
            self.service.store.hold_anonymous(event.anonymous_id, self._interaction(event, ""))
            return StitchOutcome(None, held=True)
        if owner is None or (user_id and event.anonymous_id):
            # a user id never seen, or a known user on a device that may not be linked yet
            owner = self._upsert(event, _identities(event, with_traits=False), correlation_id)
        customer_id = owner
        self.service.record_interaction(customer_id, self._interaction_in(event), correlation_id=correlation_id)
        return StitchOutcome(customer_id, stitched=self._stitch(event.anonymous_id, customer_id))

    def _identify(self, event: CollectedEvent, correlation_id: str | None) -> StitchOutcome:
        if event.identity_trust == "trusted":
            customer_id = self._upsert(event, _identities(event, with_traits=True), correlation_id)
            return StitchOutcome(customer_id, stitched=self._stitch(event.anonymous_id, customer_id))
        claims = _claims(event)
        if event.identity_trust == "verified":
            customer_id = self._upsert(event, _identities(event, with_traits=False), correlation_id)
            self._record_claims(customer_id, claims, event)
            return StitchOutcome(
                customer_id, stitched=self._stitch(event.anonymous_id, customer_id), claims=len(claims)
            )
        # unverified: claims go where the anonymous id already belongs, or wait with its events
        owner = self._owner(event)
        if owner is None and not event.anonymous_id:
            return StitchOutcome(None, ignored=True)
        claimed = self._interaction(event, owner or "", claims=claims)
        if owner is None:
            assert event.anonymous_id is not None
            self.service.store.hold_anonymous(event.anonymous_id, claimed)
            return StitchOutcome(None, held=True, claims=len(claims))
        self._record_claims(owner, claims, event)
        self.service.record_interaction(owner, _as_incoming(claimed), correlation_id=correlation_id)
        return StitchOutcome(owner, claims=len(claims))

    def _record_claims(self, customer_id: str, claims: dict[str, str], event: CollectedEvent) -> None:
        self.service.record_claims(customer_id, claims, source=event.source_name, at=event.timestamp)

    def _alias(self, event: CollectedEvent, correlation_id: str | None) -> StitchOutcome:
        assert event.previous_id
        assert event.user_id
        if _believed_user_id(event) is None:
            return StitchOutcome(None, ignored=True)  # an unsigned alias from a client proves nothing
        previous_as_user = IdentityIn(type="external_id", namespace=event.source_name, value=event.previous_id)
        previous_as_device = IdentityIn(type="device_id", namespace=ANONYMOUS_NAMESPACE, value=event.previous_id)
        if event.identity_trust == "trusted":
            keys = {normalize_identity(i).key: i for i in (previous_as_user, previous_as_device)}
            owned = self.service.store.owners_of(keys)
            previous = [keys[k] for k in keys if k in owned] or [previous_as_device]
        else:  # verified: the previous id may only be this visitor's device, which never merges anyone
            previous = [previous_as_device]
        current = IdentityIn(type="external_id", namespace=event.source_name, value=event.user_id)
        customer_id = self._upsert(event, [current, *previous], correlation_id)
        return StitchOutcome(customer_id, stitched=self._stitch(event.previous_id, customer_id))

    def _owner(self, event: CollectedEvent) -> str | None:
        keys = []
        user_id = _believed_user_id(event)
        if user_id:
            keys.append(
                normalize_identity(IdentityIn(type="external_id", namespace=event.source_name, value=user_id)).key
            )
        if event.anonymous_id:
            keys.append(
                normalize_identity(
                    IdentityIn(type="device_id", namespace=ANONYMOUS_NAMESPACE, value=event.anonymous_id)
                ).key
            )
        owners = self.service.store.owners_of(keys)
        for key in keys:  # the user id wins over the device
            if key in owners:
                return owners[key]
        return None

    def _upsert(self, event: CollectedEvent, identities: list[IdentityIn], correlation_id: str | None) -> str:
        trusted = event.identity_trust == "trusted"
        record = CustomerUpsert(
            source=event.source_name,
            identities=identities,
            attributes=_attributes(event.traits) if event.type == "identify" and trusted else {},
            observed_at=event.timestamp,
        )
        return self.service.upsert(
            record, actor=f"collect:{event.source_name}/{event.message_id}", correlation_id=correlation_id
        ).customer_id

    def _stitch(self, anonymous_id: str | None, customer_id: str) -> int:
        if not anonymous_id:
            return 0
        held = self.service.store.held_anonymous(anonymous_id)
        for _, interaction in held:
            claims = interaction.properties.get("claims") if interaction.type == CLAIMED_INTERACTION else None
            if isinstance(claims, dict):
                self.service.record_claims(
                    customer_id,
                    {str(k): str(v) for k, v in claims.items()},
                    source=interaction.source,
                    at=interaction.occurred_at,
                )
            self.service.record_interaction(customer_id, _as_incoming(interaction))
        self.service.store.release_anonymous(anonymous_id, [sk for sk, _ in held])
        return len(held)

    def _interaction_in(self, event: CollectedEvent, *, claims: dict[str, str] | None = None) -> InteractionIn:
        channel = "app" if event.type == "screen" or event.context.get("app") else "web"
        properties: dict[str, Any] = {"properties": event.properties, "message_type": event.type}
        if claims is not None:
            properties["claims"] = claims
            properties["verified"] = False
        for field in ("event", "name", "category", "group_id"):
            if getattr(event, field):
                properties[field] = getattr(event, field)
        page = event.context.get("page")
        if isinstance(page, dict) and page.get("url"):
            properties["url"] = page["url"]
        return InteractionIn(
            type=CLAIMED_INTERACTION if claims is not None else interaction_type(event),
            occurred_at=event.timestamp,
            source=event.source_name,
            channel=channel,
            interaction_id=_interaction_id(event),
            properties=properties,
        )

    def _interaction(
        self, event: CollectedEvent, customer_id: str, *, claims: dict[str, str] | None = None
    ) -> Interaction:
        incoming = self._interaction_in(event, claims=claims)
        return Interaction(
            interaction_id=incoming.interaction_id or event.message_id,
            customer_id=customer_id,
            type=incoming.type,
            occurred_at=incoming.occurred_at,
            recorded_at=event.received_at,
            source=incoming.source,
            channel=incoming.channel,
            properties=incoming.properties,
        )


def _as_incoming(interaction: Interaction) -> InteractionIn:
    return InteractionIn(
        type=interaction.type,
        occurred_at=interaction.occurred_at,
        source=interaction.source,
        channel=interaction.channel,
        interaction_id=interaction.interaction_id,
        properties=interaction.properties,
    )


def _interaction_id(event: CollectedEvent) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_\-:.]", "_", event.message_id)[:120]
    return f"{event.source_name[:6]}:{cleaned}"
