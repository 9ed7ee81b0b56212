"""From collected events (the Segment spec) to customers: identities, timeline, anonymous stitching.

- `identify` / `alias` resolve through the customer store's identity resolution: the source's
  `userId` is an `external_id` in the source's namespace, the `anonymousId` a `device_id` in the
  `anon` namespace, and `traits.email` / `traits.phone` are identities too. Whatever an anonymous
  visitor did before is then moved onto the customer's timeline: nothing browsed before sign-in is
  lost.
- `track` / `page` / `screen` / `group` land on the timeline of the customer their ids resolve to;
  a `userId` never seen before creates the customer; an unknown `anonymousId` alone is held under
  that id (90 days) until it is identified.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ecrm.collect.models import CollectedEvent
from ecrm.customers.identity import InvalidIdentity, normalize_identity
from ecrm.customers.models import CustomerUpsert, IdentityIn, Interaction, InteractionIn
from ecrm.customers.service import CustomerService

ANONYMOUS_NAMESPACE = "anon"
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


def interaction_type(event: CollectedEvent) -> str:
    if event.type == "page":
        return "page_view"
    if event.type == "screen":
        return "screen_view"
    if event.type == "group":
        return "group"
    name = re.sub(r"[^a-z0-9]+", "_", (event.event or "event").lower()).strip("_") or "event"
    return (name if name[0].isalpha() else f"event_{name}")[:40]


def _identities(event: CollectedEvent) -> list[IdentityIn]:
    ids: list[IdentityIn] = []
    if event.user_id:
        ids.append(IdentityIn(type="external_id", namespace=event.source_name, value=event.user_id))
    if event.anonymous_id:
        ids.append(IdentityIn(type="device_id", namespace=ANONYMOUS_NAMESPACE, value=event.anonymous_id))
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
            customer_id = self._upsert(event, _identities(event), correlation_id)
            return StitchOutcome(customer_id, stitched=self._stitch(event.anonymous_id, customer_id))
        owner = self._owner(event)
        if owner is None and not event.user_id:
            assert event.anonymous_id is not None
            self.service.store.hold_anonymous(event.anonymous_id, self._interaction(event, ""))
            return StitchOutcome(None, held=True)
        if owner is None or (event.user_id and event.anonymous_id):
            # a user id never seen, or a known user on a device that may not be linked yet
            owner = self._upsert(event, _identities(event), correlation_id)
        customer_id = owner
        self.service.record_interaction(customer_id, self._interaction_in(event), correlation_id=correlation_id)
        return StitchOutcome(customer_id, stitched=self._stitch(event.anonymous_id, customer_id))

    def _alias(self, event: CollectedEvent, correlation_id: str | None) -> StitchOutcome:
        assert event.previous_id
        assert event.user_id
        previous_as_user = IdentityIn(type="external_id", namespace=event.source_name, value=event.previous_id)
        previous_as_device = IdentityIn(type="device_id", namespace=ANONYMOUS_NAMESPACE, value=event.previous_id)
        keys = {normalize_identity(i).key: i for i in (previous_as_user, previous_as_device)}
        owned = self.service.store.owners_of(keys)
        previous = [keys[k] for k in keys if k in owned] or [previous_as_device]
        current = IdentityIn(type="external_id", namespace=event.source_name, value=event.user_id)
        customer_id = self._upsert(event, [current, *previous], correlation_id)
        return StitchOutcome(customer_id, stitched=self._stitch(event.previous_id, customer_id))

    def _owner(self, event: CollectedEvent) -> str | None:
        keys = []
        if event.user_id:
            keys.append(
                normalize_identity(IdentityIn(type="external_id", namespace=event.source_name, value=event.user_id)).key
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
        record = CustomerUpsert(
            source=event.source_name,
            identities=identities,
            attributes=_attributes(event.traits) if event.type == "identify" else {},
            observed_at=event.timestamp,
        )
        return self.service.upsert(
            record, actor=f"collect:{event.source_name}", correlation_id=correlation_id
        ).customer_id

    def _stitch(self, anonymous_id: str | None, customer_id: str) -> int:
        if not anonymous_id:
            return 0
        held = self.service.store.held_anonymous(anonymous_id)
        for _, interaction in held:
            self.service.record_interaction(
                customer_id,
                InteractionIn(
                    type=interaction.type,
                    occurred_at=interaction.occurred_at,
                    source=interaction.source,
                    channel=interaction.channel,
                    interaction_id=interaction.interaction_id,
                    properties=interaction.properties,
                ),
            )
        self.service.store.release_anonymous(anonymous_id, [sk for sk, _ in held])
        return len(held)

    def _interaction_in(self, event: CollectedEvent) -> InteractionIn:
        channel = "app" if event.type == "screen" or event.context.get("app") else "web"
        properties: dict[str, Any] = {"properties": event.properties, "message_type": event.type}
        for field in ("event", "name", "category", "group_id"):
            if getattr(event, field):
                properties[field] = getattr(event, field)
        page = event.context.get("page")
        if isinstance(page, dict) and page.get("url"):
            properties["url"] = page["url"]
        return InteractionIn(
            type=interaction_type(event),
            occurred_at=event.timestamp,
            source=event.source_name,
            channel=channel,
            interaction_id=_interaction_id(event),
            properties=properties,
        )

    def _interaction(self, event: CollectedEvent, customer_id: str) -> Interaction:
        incoming = self._interaction_in(event)
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


def _interaction_id(event: CollectedEvent) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_\-:.]", "_", event.message_id)[:120]
    return f"{event.source_name[:6]}:{cleaned}"
