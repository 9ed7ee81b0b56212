"""The analysis engine's projection of a customer, kept from the customer store's events.

The customer store is the source of truth; segmentation keeps only what rules read (catalogued
attributes, traits, consent states, identity kinds, behaviour events) and applies each event
idempotently: snapshots by version, consents and traits by time, behaviour by event id. Pure
logic: the store persists a `Projection`, the service decides what to re-evaluate from `Change`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ecrm.analysis.predicate import BehaviourEvent, OrderRow, Subject, subject_attributes
from ecrm.analysis.rules import DEFAULT_CATALOG, FieldCatalog

AMOUNT_PROPERTIES = ("revenue", "total", "amount", "value", "order_total", "price")


@dataclass
class Change:
    """What an event changed on a customer: the real-time path re-evaluates only segments reading it."""

    attributes: set[str] = field(default_factory=set)
    traits: set[str] = field(default_factory=set)
    consents: set[str] = field(default_factory=set)
    identities: set[str] = field(default_factory=set)
    events: set[str] = field(default_factory=set)
    everything: bool = False

    def __bool__(self) -> bool:
        return self.everything or any((self.attributes, self.traits, self.consents, self.identities, self.events))

    def touches(self, dependencies: Any) -> bool:
        """Whether a rule with these `rules.Dependencies` may change its result."""
        return (
            self.everything
            or bool(self.attributes & dependencies.attributes)
            or bool(self.traits & dependencies.traits)
            or bool(self.consents & dependencies.consents)
            or bool(self.identities & dependencies.identities)
            or bool(self.events & dependencies.events)
        )


@dataclass
class Projection:
    customer_id: str
    status: str = "active"
    merged_into: str | None = None
    snapshot_version: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)
    trait_times: dict[str, str] = field(default_factory=dict)
    consents: dict[str, list[str]] = field(default_factory=dict)  # key -> [state, ISO time]
    identities: list[str] = field(default_factory=list)
    version: int = 0  # every change; orders the lake's profile rows

    def subject(self, events: Sequence[BehaviourEvent], orders: Sequence[OrderRow] = ()) -> Subject:
        return Subject(
            customer_id=self.customer_id,
            attributes=dict(self.attributes),
            traits=dict(self.traits),
            consents={key: value[0] for key, value in self.consents.items()},
            identities=frozenset(self.identities),
            events=events,
            orders=orders,
        )

    def to_item(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "merged_into": self.merged_into,
            "snapshot_version": self.snapshot_version,
            "attributes": {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in self.attributes.items()},
            "traits": self.traits,
            "trait_times": self.trait_times,
            "consents": self.consents,
            "identities": self.identities,
            "version": self.version,
        }

    @classmethod
    def from_item(
        cls, customer_id: str, item: Mapping[str, Any], catalog: FieldCatalog = DEFAULT_CATALOG
    ) -> Projection:
        return cls(
            customer_id=customer_id,
            status=item.get("status", "active"),
            merged_into=item.get("merged_into"),
            snapshot_version=int(item.get("snapshot_version", 0)),
            attributes=subject_attributes(item.get("attributes", {}), catalog.attributes),
            traits=subject_attributes(item.get("traits", {}), catalog.traits),
            trait_times=dict(item.get("trait_times", {})),
            consents={k: list(v) for k, v in item.get("consents", {}).items()},
            identities=list(item.get("identities", [])),
            version=int(item.get("version", 0)),
        )


def apply_snapshot(
    projection: Projection,
    *,
    version: int,
    attributes: Mapping[str, Any],
    identity_types: Sequence[str],
    consents: Mapping[str, str],
    at: datetime,
    catalog: FieldCatalog = DEFAULT_CATALOG,
) -> Change:
    """Take a profile snapshot unless a newer one was already applied."""
    change = Change()
    if version <= projection.snapshot_version:
        return change
    projection.snapshot_version = version
    typed = subject_attributes(attributes, catalog.attributes)
    change.attributes = {
        k for k in set(typed) | set(projection.attributes) if typed.get(k) != projection.attributes.get(k)
    }
    projection.attributes = typed
    kinds = sorted(set(identity_types))
    change.identities = set(kinds) ^ set(projection.identities)
    projection.identities = kinds
    for key, state in consents.items():
        change.consents |= _set_consent(projection, key, state, at)
    return change


def apply_consent(projection: Projection, key: str, state: str, at: datetime) -> Change:
    return Change(consents=_set_consent(projection, key, state, at))


def _set_consent(projection: Projection, key: str, state: str, at: datetime) -> set[str]:
    stamp = _iso(at)
    current = projection.consents.get(key)
    if current is not None and current[1] > stamp:
        return set()
    # A newer statement of the same state moves the time on, so an older opposite one arriving later stays ignored.
    projection.consents[key] = [state, stamp]
    return set() if current is not None and current[0] == state else {key}


def apply_traits(
    projection: Projection, traits: Mapping[str, Any], at: datetime, catalog: FieldCatalog = DEFAULT_CATALOG
) -> Change:
    """Computed traits, newest computation wins per trait; unknown traits are kept out of rules."""
    stamp = _iso(at)
    changed: set[str] = set()
    typed = subject_attributes(traits, catalog.traits)
    for name in catalog.traits:
        if name not in traits or projection.trait_times.get(name, "") > stamp:
            continue
        value = typed.get(name)
        projection.trait_times[name] = stamp
        if projection.traits.get(name) != value:
            changed.add(name)
            if value is None:
                projection.traits.pop(name, None)
            else:
                projection.traits[name] = value
    return Change(traits=changed)


def behaviour_from_interaction(
    interaction_id: str,
    kind: str,
    occurred_at: datetime,
    channel: str | None,
    properties: Mapping[str, Any],
    source: str | None = None,
) -> BehaviourEvent:
    """An interaction on the timeline as a behaviour event: amount and category read from common property names."""
    return BehaviourEvent(
        event_id=interaction_id,
        type=kind,
        occurred_at=millisecond(occurred_at),
        amount=_amount(properties),
        category=_text(properties.get("category")) or _first_product(properties, "category"),
        channel=channel,
        product_id=_text(properties.get("product_id")) or _first_product(properties, "product_id"),
        segment_id=None,
        source=source,
    )


def millisecond(value: datetime) -> datetime:
    """Times as the lake stores them (UTC, milliseconds): both paths then see the same instant."""
    utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


def _amount(properties: Mapping[str, Any]) -> float | None:
    for name in AMOUNT_PROPERTIES:
        value = properties.get(name)
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                continue
    return None


def _text(value: Any) -> str | None:
    return str(value)[:256] if isinstance(value, str | int) and not isinstance(value, bool) and value != "" else None


def _first_product(properties: Mapping[str, Any], name: str) -> str | None:
    products = properties.get("products")
    if isinstance(products, list) and products and isinstance(products[0], dict):
        return _text(products[0].get(name))
    return None


def _iso(value: datetime) -> str:
    return millisecond(value).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
