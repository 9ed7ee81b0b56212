"""How each customer store event (and computed traits, the transactions engine's order and loyalty events, and
broadcast's message events, `message_behaviour`) changes the analysis engine's projection.

A loyalty event carries the account as the change left it: its standing becomes the customer's `loyalty_*`
traits (`rules.LOYALTY_TRAITS`) when its account version is newer than the one held, so a late or repeated
event changes nothing and segments on the tier or the points about to expire follow in real time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ecrm.analysis.membership import MembershipService
from ecrm.analysis.message_behaviour import MESSAGE_EVENTS, behaviour_of
from ecrm.analysis.models import TraitsComputed
from ecrm.analysis.order_rows import ORDER_EVENTS, order_rows_of
from ecrm.analysis.predicate import OrderRow
from ecrm.analysis.projection import (
    Change,
    Projection,
    apply_consent,
    apply_snapshot,
    apply_traits,
    behaviour_from_interaction,
)
from ecrm.core.events import DomainEvent
from ecrm.customers.models import (
    ConsentChanged,
    CustomerCreated,
    CustomersMerged,
    CustomerUpdated,
    InteractionRecorded,
    ProfileSnapshot,
)
from ecrm.transactions.models import LOYALTY_EVENTS, is_newer_standing, loyalty_traits


def apply_customer_event(
    service: MembershipService, event: Any, *, correlation_id: str | None = None, event_id: str | None = None
) -> list[DomainEvent]:
    """Apply one event; `event_id` (the envelope's id) names an order event's rows, as the lake's rows are named."""
    catalog = service.catalog
    if isinstance(event, ORDER_EVENTS):
        rows = order_rows_of(event, event_id=event_id or f"{event.detail_type}:{event.order_id}")
        if not rows:
            return []
        return service.apply(
            event.customer_id,
            lambda p: Change(),
            new_orders=rows,
            trigger=event.detail_type,
            correlation_id=correlation_id,
            follow_merge=True,
        )
    if isinstance(event, LOYALTY_EVENTS):
        standing = event.standing
        if standing is None:
            return []

        def take_standing(projection: Projection) -> Change:
            if not is_newer_standing(projection.traits, standing):
                return Change()
            return apply_traits(projection, loyalty_traits(standing), standing.as_of, catalog)

        return service.apply(event.customer_id, take_standing, trigger=event.detail_type, correlation_id=correlation_id)
    if isinstance(event, CustomerCreated | CustomerUpdated):
        at = event.created_at if isinstance(event, CustomerCreated) else event.updated_at
        return _snapshot(service, event.customer_id, event.snapshot, at, event.detail_type, correlation_id)
    if isinstance(event, ConsentChanged):
        key = f"{event.channel}:{event.purpose}"
        return service.apply(
            event.customer_id,
            lambda p: apply_consent(p, key, event.state, event.changed_at),
            trigger=event.detail_type,
            correlation_id=correlation_id,
        )
    if isinstance(event, MESSAGE_EVENTS):
        behaviour = behaviour_of(event, event_id or f"{event.detail_type}:{event.message_id}")
        if behaviour is None:
            return []
        return service.apply(  # a message of a customer merged since goes to the survivor, as an order does
            event.customer_id,
            lambda p: Change(),
            new_events=[behaviour],
            trigger=behaviour.type,
            correlation_id=correlation_id,
            follow_merge=True,
        )
    if isinstance(event, InteractionRecorded):
        behaviour = behaviour_from_interaction(
            event.interaction_id, event.type, event.occurred_at, event.channel, event.properties, event.record_source
        )
        return service.apply(
            event.customer_id,
            lambda p: Change(),
            new_events=[behaviour],
            trigger=event.type,
            correlation_id=correlation_id,
        )
    if isinstance(event, CustomersMerged):
        published: list[DomainEvent] = []
        moved = []
        moved_orders: list[OrderRow] = []
        for loser in event.merged_ids:
            if loser == event.survivor_id:
                continue
            moved += service.events_of(loser)
            # The loser's orders are the survivor's now, written under the survivor before the loser is removed
            # (a crash in between loses none; a redelivery rewrites the same items): order conditions count them
            # under the survivor, once, since a row keeps its event id and sku.
            orders = service.store.load_customer(loser).orders
            if orders:
                service.store.put_orders(event.survivor_id, orders)
                moved_orders += orders
            published += service.remove(
                loser, status="merged", merged_into=event.survivor_id, trigger=event.detail_type
            )
        if moved:
            service.write_behaviour(event.survivor_id, moved)
        published += service.apply(
            event.survivor_id,
            lambda p: _merge_change(p, event.snapshot, event.merged_at, catalog),
            new_events=moved,
            new_orders=moved_orders,
            trigger=event.detail_type,
            correlation_id=correlation_id,
        )
        return published
    if isinstance(event, TraitsComputed):
        published = []
        for scored in event.customers:
            published += service.apply(
                scored.customer_id,
                _traits_of(scored.traits, event.computed_at, catalog),
                trigger=f"traits:{event.model}",
                correlation_id=correlation_id,
            )
        return published
    return []


def _traits_of(traits: dict[str, Any], at: datetime, catalog: Any) -> Callable[[Projection], Change]:
    def take(projection: Projection) -> Change:
        return apply_traits(projection, traits, at, catalog)

    return take


def _snapshot(
    service: MembershipService,
    customer_id: str,
    snapshot: ProfileSnapshot | None,
    at: Any,
    trigger: str,
    correlation_id: str | None,
) -> list[DomainEvent]:
    if snapshot is None:
        return []

    def take(projection: Projection) -> Change:
        return apply_snapshot(
            projection,
            version=snapshot.version,
            attributes=snapshot.attributes,
            identity_types=snapshot.identity_types,
            consents=snapshot.consents,
            at=at,
            catalog=service.catalog,
        )

    return service.apply(customer_id, take, trigger=trigger, correlation_id=correlation_id)


def _merge_change(projection: Projection, snapshot: ProfileSnapshot | None, at: Any, catalog: Any) -> Change:
    change = Change(everything=True)
    if snapshot is not None:
        apply_snapshot(
            projection,
            version=snapshot.version,
            attributes=snapshot.attributes,
            identity_types=snapshot.identity_types,
            consents=snapshot.consents,
            at=at,
            catalog=catalog,
        )
    return change
