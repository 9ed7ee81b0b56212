"""The customer store's use cases: upsert with identity resolution, edits, consents, timeline, GDPR.

Every use case is: read, decide with `logic`, write with one conditional transaction. A change
other engines must hear of (a profile created or updated, a consent, a merge, an erasure) writes its
events into the customer's outbox in that same transaction, and the outbox relay publishes them from
the table's stream (ADR 11): the state and its events never diverge, and a failing bus delays the
events instead of failing the request. Only an interaction is published after its write (a retry
with the same interaction id finds it recorded).
A write that lost a race (`IdentityTaken`, `ConcurrentUpdate`) is resolved again from fresh
state, a bounded number of times; the loser of a race therefore attaches to, or merges with, the
customer the winner created instead of creating a second one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ecrm.core.clock import Clock
from ecrm.core.errors import Conflict, NotFound, ServiceUnavailable
from ecrm.core.events import DomainEvent
from ecrm.core.ids import new_id
from ecrm.customers import logic
from ecrm.customers.identity import NormalizedIdentity, normalize_all, normalize_identity
from ecrm.customers.logic import ConsentChange, MergePolicy
from ecrm.customers.models import (
    MAX_CLAIMS,
    PUBLISHED_ATTRIBUTES,
    TRACKING_ANONYMOUS_NAMESPACE,
    Claim,
    Consent,
    ConsentChanged,
    ConsentIn,
    ConsentProof,
    ConsentUpdate,
    Customer,
    CustomerCreated,
    CustomerDataErased,
    CustomerErased,
    CustomerErasureRequested,
    CustomerPatch,
    CustomersMerged,
    CustomerUpdated,
    CustomerUpsert,
    CustomerView,
    ErasureRequest,
    Identity,
    IdentityIn,
    Interaction,
    InteractionIn,
    InteractionRecorded,
    MergeRecord,
    PreferencesPatch,
    ProfileSnapshot,
    TrackedIds,
    UpsertResult,
)
from ecrm.customers.store import ConcurrentUpdate, CustomerStore, IdentityTaken

MAX_ATTEMPTS = 8
ENGINE = "customers"
# What profile events carry for other engines by default (declared in the contract: `PUBLISHED_ATTRIBUTES`).
DEFAULT_PUBLISHED_ATTRIBUTES = frozenset(PUBLISHED_ATTRIBUTES)


class Publisher(Protocol):
    """What the service needs of an event publisher (`EventPublisher.publish_all`)."""

    def publish_all(self, events: Sequence[DomainEvent], *, correlation_id: str | None = None) -> Any: ...


class WriteCompanion(Protocol):
    """An item that commits in the same transaction as each write of an upsert, as the outbox does.

    An import's progress rides this way (`ecrm.customers.import_jobs`), so a chunk retried after a
    crash knows exactly which rows were applied. `item` is asked for the item to put with a write,
    given what the upsert will have done once that write commits (`done`: the record's last write;
    a merge before it is not); `committed` is told when that write has committed.
    """

    def item(self, result: UpsertResult, *, done: bool) -> dict[str, Any]: ...

    def committed(self, *, done: bool) -> None: ...


@dataclass
class CustomerService:
    store: CustomerStore
    publisher: Publisher
    clock: Clock
    policy: MergePolicy = field(default_factory=MergePolicy)
    default_region: str | None = None
    erasure_participants: tuple[str, ...] = (ENGINE,)
    published_attributes: frozenset[str] = DEFAULT_PUBLISHED_ATTRIBUTES

    def snapshot(self, customer: Customer, *, saved: bool = True) -> ProfileSnapshot:
        """The event-carried view of a profile other engines project (see `ProfileSnapshot`).

        `saved=False`: the view as the write about to happen stores it (its version one higher).
        """
        attributes = {k: v.value for k, v in customer.profile.items() if k in self.published_attributes}
        if "language" in self.published_attributes and "language" not in attributes and customer.preferences.language:
            attributes["language"] = customer.preferences.language
        return ProfileSnapshot(
            version=customer.version if saved else customer.version + 1,
            attributes=attributes,
            identity_types=sorted({i.type for i in customer.identities}),
            consents={f"{c.channel}:{c.purpose}": c.state for c in customer.consents},
        )

    # -- upsert ---------------------------------------------------------------------------------
    def upsert(
        self,
        record: CustomerUpsert,
        *,
        actor: str = "api",
        correlation_id: str | None = None,
        default_region: str | None = None,
        companion: WriteCompanion | None = None,
    ) -> UpsertResult:
        """Resolve and write the record; `merged_ids` names every merge committed, in any attempt."""
        identities = normalize_all(record.identities, default_region=default_region or self.default_region)
        merged: list[str] = []  # merges committed by earlier attempts stay committed
        for _ in range(MAX_ATTEMPTS):
            try:
                return self._upsert_once(record, identities, actor, correlation_id, companion, merged)
            except (IdentityTaken, ConcurrentUpdate):
                continue
        raise ServiceUnavailable("the customer is being changed concurrently; retry the request")

    def _upsert_once(
        self,
        record: CustomerUpsert,
        identities: list[NormalizedIdentity],
        actor: str,
        correlation_id: str | None,
        companion: WriteCompanion | None,
        merged_ids: list[str],
    ) -> UpsertResult:
        """One resolution from fresh state; each write carries its own events (a merge is committed with its event)."""
        now = self.clock.now()
        observed_at = record.observed_at or now
        owners = self.store.owners_of(i.key for i in identities)
        plan = logic.plan_resolution(identities, owners, self.policy)
        if plan.action == "create":
            customer = Customer(customer_id=new_id("cus_"), status="active", created_at=now, updated_at=now)
            created_changes, consent_changes = self._apply(customer, record, identities, observed_at, now, actor)
            created = CustomerCreated(
                customer_id=customer.customer_id,
                record_source=record.source,
                identity_types=sorted({i.type for i in identities}),
                created_at=now,
                snapshot=self.snapshot(customer, saved=False),
            )
            result = UpsertResult(
                customer_id=customer.customer_id,
                created=True,
                matched_by=[],
                merged_ids=list(merged_ids),
                changed=created_changes,
            )
            extra = [self.store.consent_log_item(customer.customer_id, c.consent) for c in consent_changes]
            self.store.save(
                customer,
                new_identities=identities,
                unique_types=self.policy.unique_types,
                extra=[*extra, companion.item(result, done=True)] if companion else extra,
                create=True,
                source=record.source,
                now=now,
                events=[created, *self._consent_events(customer.customer_id, consent_changes, now)],
                correlation_id=correlation_id,
            )
            if companion:
                companion.committed(done=True)
            return result

        assert plan.survivor_id is not None
        survivor = self.store.load(plan.survivor_id)
        if survivor is None or survivor.status != "active":
            raise ConcurrentUpdate(plan.survivor_id)  # merged or erased meanwhile: resolve again
        changed: list[str] = []
        for loser_id in plan.merged_ids:
            loser = self.store.load(loser_id, follow=False)
            if loser is None or loser.status != "active":
                raise ConcurrentUpdate(loser_id)
            merge_changed, consent_changes = logic.merge_into(survivor, loser, self.policy)
            survivor.identities = _union_identities(survivor.identities, loser.identities)
            survivor.claims = _union_claims(survivor.claims, loser.claims)
            survivor.updated_at = now
            merge = MergeRecord(
                survivor_id=survivor.customer_id,
                merged_id=loser_id,
                matched_by=list(plan.matched_by),
                reason=f"a {record.source} record carried identities of both customers",
                merged_by=actor,
                merged_at=now,
            )
            merged = CustomersMerged(
                survivor_id=survivor.customer_id,
                merged_ids=[loser_id, *loser.merged_ids],
                matched_by=list(plan.matched_by),
                reason=merge.reason,
                merged_by=actor,
                merged_at=now,
                snapshot=self.snapshot(survivor, saved=False),
            )
            changed += merge_changed
            so_far = UpsertResult(
                customer_id=survivor.customer_id,
                created=False,
                matched_by=list(plan.matched_by),
                merged_ids=[*merged_ids, loser_id],
                changed=sorted(set(changed)),
            )
            self.store.merge(
                survivor,
                loser,
                merge,
                loser.identities,
                now,
                events=[merged, *self._consent_events(survivor.customer_id, consent_changes, now)],
                correlation_id=correlation_id,
                extra=[companion.item(so_far, done=False)] if companion else (),
            )
            merged_ids.append(loser_id)
            if companion:
                companion.committed(done=False)
        record_changed, consent_changes = self._apply(survivor, record, identities, observed_at, now, actor)
        changed += record_changed
        result = UpsertResult(
            customer_id=survivor.customer_id,
            created=False,
            matched_by=list(plan.matched_by),
            merged_ids=list(merged_ids),
            changed=sorted(set(changed)),
        )
        new_identities = [
            i for i in plan.unclaimed if i.type in self.policy.unique_types or owners.get(i.key) != survivor.customer_id
        ]
        if record_changed or consent_changes or new_identities:
            survivor.updated_at = now
            events: list[DomainEvent] = []
            if record_changed:
                events.append(
                    CustomerUpdated(
                        customer_id=survivor.customer_id,
                        record_source=record.source,
                        changed=sorted(set(record_changed)),
                        updated_at=now,
                        snapshot=self.snapshot(survivor, saved=False),
                    )
                )
            events += self._consent_events(survivor.customer_id, consent_changes, now)
            extra = [self.store.consent_log_item(survivor.customer_id, c.consent) for c in consent_changes]
            self.store.save(
                survivor,
                new_identities=new_identities,
                unique_types=self.policy.unique_types,
                extra=[*extra, companion.item(result, done=True)] if companion else extra,
                source=record.source,
                now=now,
                events=events,
                correlation_id=correlation_id,
            )
            if companion:
                companion.committed(done=True)
        return result

    def _apply(
        self,
        customer: Customer,
        record: CustomerUpsert,
        identities: list[NormalizedIdentity],
        observed_at: datetime,
        now: datetime,
        actor: str,
    ) -> tuple[list[str], list[ConsentChange]]:
        changed = logic.apply_attributes(
            customer.profile, record.attributes, source=record.source, observed_at=observed_at, policy=self.policy
        )
        known = {i.key for i in customer.identities}
        added = [
            Identity(type=i.type, value=i.value, namespace=i.namespace, source=record.source, first_seen=now)
            for i in identities
            if i.key not in known
        ]
        if added:
            customer.identities = _union_identities(customer.identities, added)
            changed += [f"identities.{i.type}" for i in added]
        if record.source not in customer.sources:
            customer.sources = sorted({*customer.sources, record.source})
        consents = {logic.consent_key(c.channel, c.purpose): c for c in customer.consents}
        consent_changes = [
            c for s in record.consents if (c := logic.apply_consent(consents, s, now=now, recorded_by=actor))
        ]
        customer.consents = sorted(consents.values(), key=lambda c: (c.channel, c.purpose))
        if record.preferences is not None:
            patch = record.preferences.model_dump(exclude_unset=True)
            customer.preferences, preference_changes = logic.apply_preferences(customer.preferences, patch)
            changed += preference_changes
        return sorted(set(changed)), consent_changes

    def _consent_events(self, customer_id: str, changes: list[ConsentChange], now: datetime) -> list[DomainEvent]:
        return [
            ConsentChanged(
                customer_id=customer_id,
                channel=c.consent.channel,
                purpose=c.consent.purpose,
                state=c.consent.state,
                previous_state=c.previous_state,
                proof_source=c.consent.proof.source,
                changed_at=now,
            )
            for c in changes
        ]

    # -- what clients claim -----------------------------------------------------------------------
    def record_claims(self, customer_id: str, claims: dict[str, str], *, source: str, at: datetime) -> Customer | None:
        """Keep a client's unverified statements on the customer (ADR 9): no identity, no attribute, no event.

        A claim already held is refreshed, not repeated; the latest `MAX_CLAIMS` are kept.
        """
        if not claims:
            return None
        for _ in range(MAX_ATTEMPTS):
            customer = self.store.load(customer_id)
            if customer is None or customer.status != "active":
                return None
            incoming = [
                Claim(field=name, value=value, source=source, first_claimed_at=at, last_claimed_at=at)
                for name, value in sorted(claims.items())
            ]
            updated = _union_claims(customer.claims, incoming)
            if updated == customer.claims:
                return customer
            customer.claims = updated
            try:
                self.store.save(customer, source=source, now=self.clock.now())
            except (IdentityTaken, ConcurrentUpdate):
                continue
            return customer
        raise ServiceUnavailable("the customer is being changed concurrently; retry")

    # -- what the analysis engine computes ------------------------------------------------------
    def record_analysis(
        self,
        customer_id: str,
        *,
        entered: Sequence[str] = (),
        exited: Sequence[str] = (),
        traits: dict[str, Any] | None = None,
    ) -> Customer | None:
        """Show segment memberships and computed traits on the profile (no event: the analysis engine owns them)."""
        for _ in range(MAX_ATTEMPTS):
            customer = self.store.load(customer_id)
            if customer is None or customer.status != "active":
                return None
            segments = [s for s in customer.segments if s not in set(exited)]
            segments += [s for s in entered if s not in segments]
            merged_traits = {**customer.traits, **(traits or {})}
            if segments == customer.segments and merged_traits == customer.traits:
                return customer
            customer.segments, customer.traits = segments, merged_traits
            try:
                self.store.save(
                    customer,
                    new_identities=[],
                    unique_types=self.policy.unique_types,
                    source="analysis",
                    now=self.clock.now(),
                )
            except (IdentityTaken, ConcurrentUpdate):
                continue
            return customer
        raise ServiceUnavailable("the customer is being changed concurrently; retry")

    # -- reads ----------------------------------------------------------------------------------
    def get(self, customer_id: str) -> Customer:
        customer = self.store.load(customer_id)
        if customer is None or customer.status == "erased":
            raise NotFound(f"customer {customer_id} does not exist")
        return customer

    def view(self, customer_id: str, *, timeline_items: int = 10) -> CustomerView:
        customer = self.get(customer_id)
        recent, _ = self.store.timeline([customer.customer_id, *customer.merged_ids], limit=timeline_items)
        return CustomerView(**customer.model_dump(), recent_timeline=recent)

    def lookup(self, identity: IdentityIn) -> Customer:
        key = normalize_identity(identity, default_region=self.default_region).key
        owner = self.store.owners_of([key]).get(key)
        if owner is None:
            # The value is not repeated: the caller sent it, and a detail may travel further than the answer.
            raise NotFound(f"no customer has this {identity.type.replace('_', ' ')}")
        return self.get(owner)

    def timeline(self, customer_id: str, *, limit: int, cursor: str | None) -> tuple[list[Interaction], str | None]:
        customer = self.get(customer_id)
        return self.store.timeline([customer.customer_id, *customer.merged_ids], limit=limit, cursor=cursor)

    # -- edits ----------------------------------------------------------------------------------
    def patch(
        self,
        customer_id: str,
        patch: CustomerPatch,
        *,
        actor: str,
        source: str = "staff",
        correlation_id: str | None = None,
    ) -> Customer:
        for _ in range(MAX_ATTEMPTS):
            now = self.clock.now()
            customer = self.get(customer_id)
            changed: list[str] = []
            for name, value in sorted(patch.attributes.items()):
                if value is None:
                    if customer.profile.pop(name, None) is not None:
                        changed.append(name)
                else:  # a staff edit is authoritative: it replaces whatever source held it
                    current = customer.profile.get(name)
                    if current is None or current.value != value:
                        customer.profile[name] = logic.AttributeValue(value=value, source=source, observed_at=now)
                        changed.append(name)
            identities = normalize_all(patch.identities, default_region=self.default_region)
            owners = self.store.owners_of(i.key for i in identities)
            foreign = sorted(k for k, v in owners.items() if v != customer.customer_id)
            if foreign:
                raise Conflict(
                    f"identities {', '.join(foreign)} belong to another customer: upsert a record with "
                    "both customers' identities to merge them"
                )
            new = [i for i in identities if i.key not in owners]
            if new:
                customer.identities = _union_identities(
                    customer.identities,
                    [
                        Identity(type=i.type, value=i.value, namespace=i.namespace, source=source, first_seen=now)
                        for i in new
                    ],
                )
                changed += [f"identities.{i.type}" for i in new]
            if patch.preferences is not None:
                customer.preferences, preference_changes = logic.apply_preferences(
                    customer.preferences, patch.preferences.model_dump(exclude_unset=True)
                )
                changed += preference_changes
            if not changed:
                return customer
            customer.updated_at = now
            updated = CustomerUpdated(
                customer_id=customer.customer_id,
                record_source=source,
                changed=sorted(set(changed)),
                updated_at=now,
                snapshot=self.snapshot(customer, saved=False),
            )
            try:
                self.store.save(
                    customer,
                    new_identities=new,
                    unique_types=self.policy.unique_types,
                    source=source,
                    now=now,
                    events=[updated],
                    correlation_id=correlation_id,
                )
            except (IdentityTaken, ConcurrentUpdate):
                continue
            return customer
        raise ServiceUnavailable("the customer is being changed concurrently; retry the request")

    def update_preferences(
        self, customer_id: str, patch: PreferencesPatch, *, correlation_id: str | None = None
    ) -> Customer:
        return self.patch(
            customer_id,
            CustomerPatch(preferences=patch),
            actor=customer_id,
            source="customer",
            correlation_id=correlation_id,
        )

    def set_consent(
        self,
        customer_id: str,
        channel: str,
        purpose: str,
        update: ConsentUpdate,
        *,
        source: str,
        recorded_by: str,
        ip: str | None = None,
        user_agent: str | None = None,
        correlation_id: str | None = None,
    ) -> Consent:
        """One consent statement; `recorded_by` is the caller (staff subject, or the customer's own id on `/me`)."""
        for _ in range(MAX_ATTEMPTS):
            now = self.clock.now()
            customer = self.get(customer_id)
            statement = ConsentIn.model_validate(
                {
                    "channel": channel,
                    "purpose": purpose,
                    "state": update.state,
                    "proof": ConsentProof(
                        source=update.source or source,
                        captured_at=now,
                        notice_version=update.notice_version,
                        text=update.text,
                        ip=ip,
                        user_agent=user_agent,
                    ),
                }
            )
            consents = {logic.consent_key(c.channel, c.purpose): c for c in customer.consents}
            change = logic.apply_consent(consents, statement, now=now, recorded_by=recorded_by)
            customer.consents = sorted(consents.values(), key=lambda c: (c.channel, c.purpose))
            customer.updated_at = now
            held = consents[logic.consent_key(channel, purpose)]
            try:
                self.store.save(
                    customer,
                    extra=[self.store.consent_log_item(customer.customer_id, held)],
                    now=now,
                    events=self._consent_events(customer.customer_id, [change], now) if change else (),
                    correlation_id=correlation_id,
                )
            except ConcurrentUpdate:
                continue
            return held
        raise ServiceUnavailable("the customer is being changed concurrently; retry the request")

    def set_consents(
        self,
        customer_id: str,
        statements: Sequence[ConsentIn],
        *,
        recorded_by: str,
        correlation_id: str | None = None,
    ) -> Customer:
        """Several consent statements of one customer in one write, their proof logged, their events in the outbox.

        A statement that changes nothing held (a repeat, or one older than what is held) writes nothing,
        so a redelivered unsubscribe leaves no trace.
        """
        for _ in range(MAX_ATTEMPTS):
            now = self.clock.now()
            customer = self.get(customer_id)
            consents = {logic.consent_key(c.channel, c.purpose): c for c in customer.consents}
            before = dict(consents)
            changes = [
                change
                for statement in statements
                if (change := logic.apply_consent(consents, statement, now=now, recorded_by=recorded_by))
            ]
            touched = [held for key, held in consents.items() if before.get(key) is not held]
            if not touched:
                return customer
            customer.consents = sorted(consents.values(), key=lambda c: (c.channel, c.purpose))
            customer.updated_at = now
            try:
                self.store.save(
                    customer,
                    extra=[self.store.consent_log_item(customer.customer_id, held) for held in touched],
                    now=now,
                    events=self._consent_events(customer.customer_id, changes, now),
                    correlation_id=correlation_id,
                )
            except ConcurrentUpdate:
                continue
            return customer
        raise ServiceUnavailable("the customer is being changed concurrently; retry the request")

    def record_interaction(
        self, customer_id: str, interaction: InteractionIn, *, correlation_id: str | None = None
    ) -> tuple[Interaction, bool]:
        customer = self.get(customer_id)
        now = self.clock.now()
        recorded = Interaction(
            interaction_id=interaction.interaction_id or new_id("int_"),
            customer_id=customer.customer_id,
            type=interaction.type,
            occurred_at=interaction.occurred_at,
            recorded_at=now,
            source=interaction.source,
            channel=interaction.channel,
            properties=interaction.properties,
        )
        event = InteractionRecorded(
            customer_id=customer.customer_id,
            interaction_id=recorded.interaction_id,
            type=recorded.type,
            channel=recorded.channel,
            record_source=recorded.source,
            occurred_at=recorded.occurred_at,
            properties=recorded.properties,
        )
        # The event rides in the timeline item (the outbox): published after the write, it was lost to a crash
        # between the two, since the redelivery finds the interaction recorded and publishes nothing.
        if not self.store.add_interaction(recorded, events=[event], correlation_id=correlation_id, now=now):
            return recorded, False
        return recorded, True

    # -- GDPR -----------------------------------------------------------------------------------
    def export(self, customer_id: str) -> dict[str, Any]:
        """Art. 15/20: everything held on the customer, machine-readable."""
        customer = self.get(customer_id)
        ids = [customer.customer_id, *customer.merged_ids]
        timeline: list[Interaction] = []
        cursor: str | None = None
        while True:
            page, cursor = self.store.timeline(ids, limit=500, cursor=cursor)
            timeline += page
            if cursor is None:
                break
        return {
            "format": "ecrm.customer-export.v1",
            "exported_at": self.clock.now().isoformat(),
            "customer": customer.model_dump(mode="json"),
            "consent_history": [entry for i in ids for entry in self.store.consent_log(i)],
            "merges": [m.model_dump(mode="json") for i in ids for m in self.store.merges(i)],
            "timeline": [t.model_dump(mode="json") for t in timeline],
        }

    def request_erasure(
        self, customer_id: str, *, requested_by: str, correlation_id: str | None = None
    ) -> ErasureRequest:
        customer = self.get(customer_id)
        now = self.clock.now()
        request = ErasureRequest(
            request_id=new_id("era_"),
            customer_id=customer.customer_id,
            customer_ids=[customer.customer_id, *customer.merged_ids],
            requested_by=requested_by,
            requested_at=now,
            status="pending",
            participants=sorted(self.erasure_participants),
        )
        requested = CustomerErasureRequested(
            request_id=request.request_id,
            customer_id=request.customer_id,
            customer_ids=request.customer_ids,
            requested_at=request.requested_at,
            tracked_ids=tracked_ids(customer.identities),
        )
        self.store.put_erasure(request, events=[requested], now=now, correlation_id=correlation_id)
        return request

    def get_erasure(self, request_id: str) -> ErasureRequest:
        request = self.store.get_erasure(request_id)
        if request is None:
            raise NotFound(f"erasure request {request_id} does not exist")
        return request

    def erase_own_data(self, request: CustomerErasureRequested) -> CustomerDataErased:
        """This engine's part of an erasure: profiles, identities, consents, timeline, merges."""
        now = self.clock.now()
        for customer_id in request.customer_ids:
            customer = self.store.load(customer_id, follow=False)
            if customer is None or customer.status == "erased":
                continue
            tombstone = Customer(
                customer_id=customer_id,
                status="erased",
                created_at=customer.created_at,
                updated_at=now,
                version=customer.version,
            )
            self.store.erase(customer_id, [i.key for i in customer.identities], tombstone)
        return CustomerDataErased(request_id=request.request_id, engine=ENGINE, erased_at=now)

    def acknowledge_erasure(
        self, ack: CustomerDataErased, *, correlation_id: str | None = None
    ) -> ErasureRequest | None:
        updated = self.store.acknowledge_erasure(ack.request_id, ack.engine, ack.erased_at)
        if updated is None or updated.status == "completed":
            return updated
        if set(updated.participants) <= set(updated.acknowledged):
            now = self.clock.now()
            completed = updated.model_copy(update={"status": "completed", "completed_at": now})
            erased = CustomerErased(
                request_id=completed.request_id, customer_id=completed.customer_id, completed_at=now
            )
            if self.store.put_erasure(
                completed, events=[erased], now=now, correlation_id=correlation_id, replacing=updated
            ):
                return completed
            return self.store.get_erasure(ack.request_id)  # another acknowledgement completed it first
        return updated


def _union_claims(current: list[Claim], more: list[Claim]) -> list[Claim]:
    """One claim per (field, value, source), first and last seen kept; the latest `MAX_CLAIMS`."""
    by_key = {(c.field, c.value, c.source): c for c in current}
    for claim in more:
        key = (claim.field, claim.value, claim.source)
        held = by_key.get(key)
        by_key[key] = (
            claim
            if held is None
            else held.model_copy(
                update={
                    "first_claimed_at": min(held.first_claimed_at, claim.first_claimed_at),
                    "last_claimed_at": max(held.last_claimed_at, claim.last_claimed_at),
                }
            )
        )
    latest = sorted(by_key.values(), key=lambda c: (c.last_claimed_at, c.field, c.value), reverse=True)[:MAX_CLAIMS]
    return sorted(latest, key=lambda c: (c.field, c.value, c.source))


def tracked_ids(identities: Sequence[Identity]) -> TrackedIds:
    """The anonymous ids (`device_id` in the `anon` namespace) and the user ids (`external_id` per source)."""
    anonymous: set[str] = set()
    users: dict[str, set[str]] = {}
    for identity in identities:
        if identity.type == "device_id" and identity.namespace == TRACKING_ANONYMOUS_NAMESPACE:
            anonymous.add(identity.value)
        elif identity.type == "external_id" and identity.namespace:
            users.setdefault(identity.namespace, set()).add(identity.value)
    return TrackedIds(
        anonymous_ids=sorted(anonymous), user_ids={source: sorted(ids) for source, ids in sorted(users.items())}
    )


def _union_identities(current: list[Identity], more: list[Identity]) -> list[Identity]:
    by_key = {i.key: i for i in current}
    for identity in more:
        by_key.setdefault(identity.key, identity)
    return sorted(by_key.values(), key=lambda i: (i.type, i.namespace, i.value))
