"""Personalization's projection of a customer, kept from the customer store's and segmentation's events.

Owns what recommendations, offers and previews need to know of a customer, and how each event changes it:
the published profile attributes (country, language, tier...) from profile snapshots, consent states by
`channel:purpose`, segment memberships, computed traits, and the item history (the items of an interaction's
`product_id` or `products[].product_id`; bought when the interaction type is a purchase).

Every change is idempotent and order-proof: snapshots apply by version, consents, memberships and traits by
time (the newest statement wins), items by (interaction id, item), so redelivered or reordered events change
nothing. An objection to profiling (a denied `<channel>:profiling` consent) drops the item history and stops
recording it: the customer then gets popular items only. Pure logic: the store persists the projection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field

from ecrm.core.contract import Contract
from ecrm.personalization.offers import OFFER_CHANNELS, CustomerContext

PURCHASE_TYPES = frozenset({"order_completed", "order_placed", "purchase", "purchased", "product_purchased"})
MAX_ITEMS_PER_INTERACTION = 50


@dataclass(frozen=True)
class HistoryPolicy:
    """What counts as a purchase and how much history a customer keeps."""

    purchase_types: frozenset[str] = PURCHASE_TYPES
    recent_size: int = 50  # (item, interaction) entries, newest first
    bought_size: int = 200  # distinct items bought, newest first: what "exclude already bought" reads
    half_life_days: float = 30.0  # the weight of an interaction halves every this many days
    viewed_weight: float = 0.5  # a view or a cart add counts half as much as a purchase


class RecentItem(Contract):
    item_id: str
    at: str = Field(description="When it happened, ISO 8601 UTC to the millisecond")
    bought: bool
    interaction_id: str


class CustomerProjection(Contract):
    customer_id: str
    status: Literal["active", "merged", "erased"] = "active"
    merged_into: str | None = None
    snapshot_version: int = 0
    attributes: dict[str, Any] = Field(default_factory=dict)
    consents: dict[str, tuple[str, str]] = Field(default_factory=dict, description="channel:purpose -> (state, at)")
    segments: dict[str, tuple[bool, str]] = Field(default_factory=dict, description="segment id -> (member, at)")
    traits: dict[str, Any] = Field(default_factory=dict)
    trait_times: dict[str, str] = Field(default_factory=dict)
    recent: list[RecentItem] = Field(default_factory=list, description="Newest first")
    bought: dict[str, str] = Field(default_factory=dict, description="item id -> when it was last bought")
    version: int = Field(default=0, description="Optimistic concurrency: every write increments it")

    @property
    def country(self) -> str | None:
        value = self.attributes.get("country")
        return value.upper() if isinstance(value, str) and value else None

    @property
    def language(self) -> str | None:
        value = self.attributes.get("language")
        return value if isinstance(value, str) and value else None

    @property
    def profiling_allowed(self) -> bool:
        """Allowed unless denied on any channel: the same reading as `CustomerContext.from_customer`."""
        return not any(key.endswith(":profiling") and state == "denied" for key, (state, _) in self.consents.items())

    @property
    def marketing_channels(self) -> frozenset[str]:
        return frozenset(
            key.split(":", 1)[0]
            for key, (state, _) in self.consents.items()
            if key.endswith(":marketing") and state == "granted" and key.split(":", 1)[0] in OFFER_CHANNELS
        )

    @property
    def segment_ids(self) -> frozenset[str]:
        return frozenset(segment for segment, (member, _) in self.segments.items() if member)

    def context(self) -> CustomerContext:
        """The customer as the offer rules see them."""
        return CustomerContext(
            customer_id=self.customer_id,
            segments=self.segment_ids,
            traits=dict(self.traits),
            country=self.country,
            marketing_channels=self.marketing_channels,
            profiling_allowed=self.profiling_allowed,
        )

    def template_customer(self) -> dict[str, Any]:
        """The customer as `template_catalogue.build_context` reads one: attributes flat, traits apart."""
        return {**self.attributes, "customer_id": self.customer_id, "traits": dict(self.traits)}

    def history_weights(self, now: datetime, policy: HistoryPolicy, limit: int = 20) -> dict[str, float]:
        """The `limit` most recent distinct items, each weighted by recency and by whether it was bought."""
        weights: dict[str, float] = {}
        for entry in self.recent:
            if entry.item_id not in weights and len(weights) >= limit:
                continue
            age_days = max(0.0, (now - _parse(entry.at)).total_seconds() / 86_400)
            weight = 0.5 ** (age_days / policy.half_life_days) * (1.0 if entry.bought else policy.viewed_weight)
            weights[entry.item_id] = weights.get(entry.item_id, 0.0) + weight
        return weights


def stamp(at: datetime) -> str:
    """`2026-11-23T10:15:30.123Z`: comparable as text, the form every time in the projection takes."""
    utc = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- how events change it ------------------------------------------------------------------------------------
def apply_snapshot(
    projection: CustomerProjection,
    *,
    version: int,
    attributes: Mapping[str, Any],
    consents: Mapping[str, str],
    at: datetime,
) -> bool:
    """A profile snapshot, unless a newer one was already taken."""
    if version <= projection.snapshot_version:
        return False
    projection.snapshot_version = version
    projection.attributes = dict(attributes)
    for key, state in consents.items():
        apply_consent(projection, key, state, at)
    return True


def apply_consent(projection: CustomerProjection, key: str, state: str, at: datetime) -> bool:
    """The newest statement of a consent wins; a profiling objection drops the item history."""
    when = stamp(at)
    current = projection.consents.get(key)
    if current is not None and current[1] >= when:
        return False
    projection.consents[key] = (state, when)
    if key.endswith(":profiling") and state == "denied":
        projection.recent, projection.bought = [], {}
    return True


def apply_segment(projection: CustomerProjection, segment_id: str, member: bool, at: datetime) -> bool:
    """Entered or exited: the newest move wins, so an exit delivered before its entry is not undone by it."""
    when = stamp(at)
    current = projection.segments.get(segment_id)
    if current is not None and current[1] >= when:
        return False
    projection.segments[segment_id] = (member, when)
    return True


def apply_traits(projection: CustomerProjection, traits: Mapping[str, Any], at: datetime) -> bool:
    """Computed traits, the newest computation per trait wins; None removes a trait."""
    when = stamp(at)
    changed = False
    for name, value in traits.items():
        if projection.trait_times.get(name, "") > when:
            continue
        projection.trait_times[name] = when
        if value is None:
            changed |= projection.traits.pop(name, None) is not None
        elif projection.traits.get(name) != value:
            projection.traits[name] = value
            changed = True
    return changed


def items_of(properties: Mapping[str, Any]) -> list[str]:
    """The items an interaction is about: `product_id`, and `products` as ids or as objects with `product_id`."""
    found: list[str] = []
    candidates: list[Any] = [properties.get("product_id")]
    products = properties.get("products")
    if isinstance(products, list):
        candidates += [p.get("product_id") if isinstance(p, Mapping) else p for p in products]
    for value in candidates:
        if isinstance(value, bool) or not isinstance(value, str | int):
            continue
        text = str(value).strip()[:128]
        if text and text not in found:
            found.append(text)
    return found[:MAX_ITEMS_PER_INTERACTION]


def apply_interaction(
    projection: CustomerProjection,
    *,
    interaction_id: str,
    kind: str,
    occurred_at: datetime,
    properties: Mapping[str, Any],
    policy: HistoryPolicy,
) -> bool:
    """Record the interaction's items (nothing while the customer objects to profiling)."""
    items = items_of(properties)
    if not items or not projection.profiling_allowed:
        return False
    when = stamp(occurred_at)
    bought = kind in policy.purchase_types
    entries = [RecentItem(item_id=item, at=when, bought=bought, interaction_id=interaction_id) for item in items]
    return _add_history(projection, entries, policy)


def merge_history(survivor: CustomerProjection, loser: CustomerProjection, policy: HistoryPolicy) -> bool:
    """A merged customer's items join the survivor's (if the survivor allows profiling)."""
    if not survivor.profiling_allowed:
        return False
    changed = _add_history(survivor, loser.recent, policy)
    for item, when in loser.bought.items():
        if survivor.bought.get(item, "") < when:
            survivor.bought[item] = when
            changed = True
    _trim_bought(survivor, policy)
    return changed


def _add_history(projection: CustomerProjection, entries: Iterable[RecentItem], policy: HistoryPolicy) -> bool:
    before = [(e.interaction_id, e.item_id) for e in projection.recent]
    known = set(before)
    bought_before = dict(projection.bought)
    added = []
    for entry in entries:
        if (entry.interaction_id, entry.item_id) in known:
            continue
        known.add((entry.interaction_id, entry.item_id))
        added.append(entry)
        if entry.bought and projection.bought.get(entry.item_id, "") < entry.at:
            projection.bought[entry.item_id] = entry.at
    merged = sorted([*projection.recent, *added], key=lambda e: (e.at, e.interaction_id, e.item_id), reverse=True)
    projection.recent = merged[: policy.recent_size]
    _trim_bought(projection, policy)
    return [(e.interaction_id, e.item_id) for e in projection.recent] != before or projection.bought != bought_before


def _trim_bought(projection: CustomerProjection, policy: HistoryPolicy) -> None:
    if len(projection.bought) > policy.bought_size:
        newest = sorted(projection.bought.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[: policy.bought_size]
        projection.bought = dict(newest)
