"""How other engines' events keep personalization's projection of each customer, and erasure.

Consumed: the customer store's `CustomerCreated` / `CustomerUpdated` (their profile `snapshot`),
`ConsentChanged`, `InteractionRecorded` (the items of the history), `CustomersMerged` (the merged customers'
history and offer usage move to the survivor) and `CustomerErasureRequested`; segmentation's
`SegmentEntered` / `SegmentExited` and `TraitsComputed`; the transactions engine's loyalty events, whose
standing (tier, balance, points about to expire) becomes the `loyalty_*` traits offer rules and content read,
kept only when its account version is newer than the one held (events arrive late and twice). Each change
is a read, an idempotent apply (`projection`) and a version-checked write, retried from fresh state when
another consumer wrote first.

A merged customer keeps a tombstone pointing at the survivor, so a late event for the old id lands on the
survivor; an erased one keeps a tombstone without data, so a late event cannot bring data back. Erasure
deletes everything under the customer and acknowledges with `CustomerDataErased` from this engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ecrm.analysis.models import SegmentEntered, SegmentExited, TraitsComputed
from ecrm.core.clock import Clock
from ecrm.core.errors import ServiceUnavailable
from ecrm.customers.models import (
    ConsentChanged,
    CustomerCreated,
    CustomerErasureRequested,
    CustomersMerged,
    CustomerUpdated,
    InteractionRecorded,
    ProfileSnapshot,
)
from ecrm.personalization.models import PersonalizationDataErased
from ecrm.personalization.projection import (
    CustomerProjection,
    HistoryPolicy,
    apply_consent,
    apply_interaction,
    apply_segment,
    apply_snapshot,
    apply_traits,
    merge_history,
)
from ecrm.personalization.store import PersonalizationStore, ProjectionConflict
from ecrm.transactions.models import LOYALTY_EVENTS, LoyaltyStanding, is_newer_standing, loyalty_traits

if TYPE_CHECKING:
    from ecrm.personalization.offer_service import Publisher

ENGINE = "personalization"
MAX_ATTEMPTS = 6
MAX_HOPS = 3
CONSUMED_EVENTS = (
    CustomerCreated,
    CustomerUpdated,
    CustomersMerged,
    ConsentChanged,
    InteractionRecorded,
    CustomerErasureRequested,
    SegmentEntered,
    SegmentExited,
    TraitsComputed,
    *LOYALTY_EVENTS,
)

Change = Callable[[CustomerProjection], bool]


@dataclass
class ProjectionService:
    store: PersonalizationStore
    publisher: Publisher
    clock: Clock
    history: HistoryPolicy = field(default_factory=HistoryPolicy)

    def apply(self, event: Any, *, correlation_id: str | None = None) -> None:
        """Take one event into the projection (events this engine does not read are ignored)."""
        if isinstance(event, CustomerCreated | CustomerUpdated):
            at = event.created_at if isinstance(event, CustomerCreated) else event.updated_at
            if event.snapshot is not None:
                self.update(event.customer_id, _snapshot(event.snapshot, at))
        elif isinstance(event, ConsentChanged):
            key = f"{event.channel}:{event.purpose}"
            self.update(event.customer_id, lambda p: apply_consent(p, key, event.state, event.changed_at))
        elif isinstance(event, InteractionRecorded):
            self.update(
                event.customer_id,
                lambda p: apply_interaction(
                    p,
                    interaction_id=event.interaction_id,
                    kind=event.type,
                    occurred_at=event.occurred_at,
                    properties=event.properties,
                    policy=self.history,
                ),
            )
        elif isinstance(event, SegmentEntered | SegmentExited):
            member = isinstance(event, SegmentEntered)
            at = event.entered_at if isinstance(event, SegmentEntered) else event.exited_at
            self.update(event.customer_id, lambda p: apply_segment(p, event.segment_id, member, at))
        elif isinstance(event, TraitsComputed):
            for scored in event.customers:
                self.update(scored.customer_id, _traits(scored.traits, event.computed_at))
        elif isinstance(event, LOYALTY_EVENTS):
            if event.standing is not None:
                self.update(event.customer_id, _standing(event.standing))
        elif isinstance(event, CustomersMerged):
            self.merge(event)
        elif isinstance(event, CustomerErasureRequested):
            self.erase(event, correlation_id=correlation_id)

    def update(self, customer_id: str, change: Change) -> None:
        """Read, apply, write if anything changed; follow merge tombstones; never write to an erased customer."""
        for _ in range(MAX_ATTEMPTS):
            current = self.store.projection(customer_id)
            for _ in range(MAX_HOPS):
                if current is None or current.status != "merged" or not current.merged_into:
                    break
                customer_id = current.merged_into
                current = self.store.projection(customer_id)
            if current is not None and current.status != "active":
                return
            projection = current or CustomerProjection(customer_id=customer_id)
            if not change(projection):
                return
            try:
                self.store.save_projection(projection, expected_version=current.version if current else None)
                return
            except ProjectionConflict:
                continue
        raise ServiceUnavailable(f"the projection of {customer_id} kept changing; the event is retried")

    def merge(self, event: CustomersMerged) -> None:
        for loser_id in event.merged_ids:
            if loser_id == event.survivor_id:
                continue
            loser = self.store.load_customer(loser_id)
            if loser.projection is not None and loser.projection.status != "active":
                continue  # already merged (a redelivery) or erased
            if loser.projection is not None:
                self.update(event.survivor_id, _merged(loser.projection, self.history))
            if loser.usage:
                self.store.add_usage(event.survivor_id, loser.usage)
            self._tombstone(loser_id, status="merged", merged_into=event.survivor_id)
        if event.snapshot is not None:
            self.update(event.survivor_id, _snapshot(event.snapshot, event.merged_at))

    def erase(self, event: CustomerErasureRequested, *, correlation_id: str | None = None) -> None:
        for customer_id in dict.fromkeys([event.customer_id, *event.customer_ids]):
            self._tombstone(customer_id, status="erased")
        ack = PersonalizationDataErased(request_id=event.request_id, engine=ENGINE, erased_at=self.clock.now())
        self.publisher.publish_all([ack], correlation_id=correlation_id)

    def _tombstone(self, customer_id: str, *, status: str, merged_into: str | None = None) -> None:
        """Delete everything kept on the customer and leave only its status (and the survivor of a merge)."""
        self.store.delete_customer(customer_id)
        tombstone = CustomerProjection.model_validate(
            {"customer_id": customer_id, "status": status, "merged_into": merged_into}
        )
        try:
            self.store.save_projection(tombstone, expected_version=None)
        except ProjectionConflict:
            # An event recreated the projection between the delete and the tombstone: delete again.
            self.store.delete_customer(customer_id)
            self.store.save_projection(tombstone, expected_version=None)


def _snapshot(snapshot: ProfileSnapshot, at: Any) -> Change:
    def take(projection: CustomerProjection) -> bool:
        return apply_snapshot(
            projection, version=snapshot.version, attributes=snapshot.attributes, consents=snapshot.consents, at=at
        )

    return take


def _merged(loser: CustomerProjection, policy: HistoryPolicy) -> Change:
    def take(projection: CustomerProjection) -> bool:
        return merge_history(projection, loser, policy)

    return take


def _traits(traits: dict[str, Any], at: Any) -> Change:
    def take(projection: CustomerProjection) -> bool:
        return apply_traits(projection, traits, at)

    return take


def _standing(standing: LoyaltyStanding) -> Change:
    def take(projection: CustomerProjection) -> bool:
        if not is_newer_standing(projection.traits, standing):
            return False
        return apply_traits(projection, loyalty_traits(standing), standing.as_of)

    return take
