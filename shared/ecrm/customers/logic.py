"""The customer store's rules, free of AWS: resolution plans, attribute precedence, consent merges.

Resolution: a record's unique identities (by default email, phone, external ids, loyalty cards)
are looked up; no owner -> a new customer; one owner -> that customer; several owners -> they are
one person and merge into the oldest (customer ids are time-ordered, so the smallest). Device ids
are not unique (a shared tablet): they attach to a customer but never merge two.

Attributes: each value keeps its source and when the source observed it. A value replaces the
current one when its source ranks higher for that attribute (configurable, `*` for the default
order), or ranks the same and is at least as recent. Sources not listed rank last.

Consents: the latest statement wins (a stale import never overrides a recent withdrawal). When
two customers merge, each (channel, purpose) takes the most restrictive state: denied wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from ecrm.customers.identity import NormalizedIdentity
from ecrm.customers.models import (
    AttributeValue,
    Consent,
    ConsentIn,
    Customer,
    Preferences,
    RecordedConsentProof,
    Scalar,
)

DEFAULT_UNIQUE_TYPES = frozenset({"email", "phone", "external_id", "loyalty_card"})


@dataclass(frozen=True)
class MergePolicy:
    unique_types: frozenset[str] = DEFAULT_UNIQUE_TYPES
    source_priority: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def rank(self, attribute: str, source: str) -> int:
        order = self.source_priority.get(attribute) or self.source_priority.get("*") or ()
        return order.index(source) if source in order else len(order)


@dataclass(frozen=True)
class ResolutionPlan:
    action: Literal["create", "attach", "merge"]
    survivor_id: str | None
    merged_ids: tuple[str, ...]
    matched_by: tuple[str, ...]
    unclaimed: tuple[NormalizedIdentity, ...]


def plan_resolution(
    identities: Iterable[NormalizedIdentity], owners: Mapping[str, str], policy: MergePolicy
) -> ResolutionPlan:
    """What to do with a record, given who owns each of its identity keys today."""
    identities = list(identities)
    unique = [i for i in identities if i.type in policy.unique_types]
    matched = {i.key: owners[i.key] for i in unique if i.key in owners}
    customers = sorted(set(matched.values()))
    if not customers:
        shared = sorted({owners[i.key] for i in identities if i.type not in policy.unique_types and i.key in owners})
        if shared and not unique:  # only device ids: the customer last seen on them
            survivor = shared[-1]
            return ResolutionPlan(
                "attach",
                survivor,
                (),
                tuple(i.key for i in identities if i.key in owners),
                tuple(i for i in identities if owners.get(i.key) != survivor),
            )
        return ResolutionPlan("create", None, (), (), tuple(identities))
    survivor, *others = customers
    unclaimed = tuple(i for i in identities if owners.get(i.key) != survivor)
    return ResolutionPlan("merge" if others else "attach", survivor, tuple(others), tuple(sorted(matched)), unclaimed)


def outranks(current: AttributeValue | None, incoming: AttributeValue, attribute: str, policy: MergePolicy) -> bool:
    if current is None:
        return True
    current_rank, incoming_rank = policy.rank(attribute, current.source), policy.rank(attribute, incoming.source)
    if incoming_rank != current_rank:
        return incoming_rank < current_rank
    return incoming.observed_at >= current.observed_at


def apply_attributes(
    profile: dict[str, AttributeValue],
    attributes: Mapping[str, Scalar],
    *,
    source: str,
    observed_at: datetime,
    policy: MergePolicy,
) -> list[str]:
    """Apply a source's attributes in place; returns the names whose value changed. `None` is ignored."""
    changed = []
    for name, value in sorted(attributes.items()):
        if value is None:
            continue
        incoming = AttributeValue(value=value, source=source, observed_at=observed_at)
        current = profile.get(name)
        if current is not None and current.value == value:
            if current != incoming and outranks(current, incoming, name, policy):
                profile[name] = incoming  # same value, better or fresher provenance: not a change
            continue
        if outranks(current, incoming, name, policy):
            profile[name] = incoming
            changed.append(name)
    return changed


def merge_profiles(
    survivor: dict[str, AttributeValue], other: Mapping[str, AttributeValue], policy: MergePolicy
) -> list[str]:
    changed = []
    for name, value in sorted(other.items()):
        current = survivor.get(name)
        if current is None or outranks(current, value, name, policy):
            if current is None or current.value != value.value:
                changed.append(name)
            survivor[name] = value
    return changed


def consent_key(channel: str, purpose: str) -> str:
    return f"{channel}#{purpose}"


@dataclass(frozen=True)
class ConsentChange:
    consent: Consent
    previous_state: str | None


def apply_consent(
    consents: dict[str, Consent], statement: ConsentIn, *, now: datetime, recorded_by: str | None = None
) -> ConsentChange | None:
    """Record a statement if it is newer than what is held; returns the change, if the state changed."""
    key = consent_key(statement.channel, statement.purpose)
    current = consents.get(key)
    if current is not None and statement.proof.captured_at < current.proof.captured_at:
        return None  # stale: a later statement is already held
    proof = RecordedConsentProof(**statement.proof.model_dump(), recorded_by=recorded_by)
    if current is not None and current.state == statement.state and current.proof == proof:
        return None
    consents[key] = Consent(
        channel=statement.channel,
        purpose=statement.purpose,
        state=statement.state,
        proof=proof,
        updated_at=now,
    )
    if current is not None and current.state == statement.state:
        return None  # a fresher proof of the same state
    return ConsentChange(consents[key], current.state if current else None)


def merge_consents(survivor: dict[str, Consent], other: Mapping[str, Consent]) -> list[ConsentChange]:
    """Most restrictive per (channel, purpose): a denial from either side wins over a grant."""
    changes = []
    for key, theirs in sorted(other.items()):
        mine = survivor.get(key)
        if mine is None:
            survivor[key] = theirs
            changes.append(ConsentChange(theirs, None))
        elif mine.state == "granted" and theirs.state == "denied":
            survivor[key] = theirs
            changes.append(ConsentChange(theirs, "granted"))
        elif mine.state == theirs.state and theirs.proof.captured_at > mine.proof.captured_at:
            survivor[key] = theirs  # same state, keep the freshest proof
    return changes


def apply_preferences(current: Preferences, patch: Mapping[str, object]) -> tuple[Preferences, list[str]]:
    merged = current.model_dump() | dict(patch)
    updated = Preferences.model_validate(merged)
    changed = [f"preferences.{k}" for k in patch if getattr(current, k) != getattr(updated, k)]
    return updated, changed


def merge_into(survivor: Customer, other: Customer, policy: MergePolicy) -> tuple[list[str], list[ConsentChange]]:
    """Fold `other` into `survivor` in place: profile by precedence, consents most restrictive."""
    changed = merge_profiles(survivor.profile, other.profile, policy)
    consents = {consent_key(c.channel, c.purpose): c for c in survivor.consents}
    consent_changes = merge_consents(consents, {consent_key(c.channel, c.purpose): c for c in other.consents})
    survivor.consents = sorted(consents.values(), key=lambda c: (c.channel, c.purpose))
    if not survivor.preferences.model_dump(exclude_defaults=True):
        survivor.preferences = other.preferences
    survivor.merged_ids = sorted({*survivor.merged_ids, other.customer_id, *other.merged_ids})
    survivor.sources = sorted({*survivor.sources, *other.sources})
    survivor.traits = {**other.traits, **survivor.traits}
    return changed, consent_changes
