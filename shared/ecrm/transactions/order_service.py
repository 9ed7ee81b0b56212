"""Order use cases: place (once per Idempotency-Key), place an imported one, change status, take a return, read.

Every change is the order's rule (`orders`) applied to what the store read, written with its event in one
transaction, conditional on the version read; a concurrent change makes the loser re-read and re-apply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ecrm.core.clock import Clock
from ecrm.core.errors import InvalidInput, NotFound, ServiceUnavailable
from ecrm.core.events import DomainEvent
from ecrm.core.ids import new_id
from ecrm.transactions import orders
from ecrm.transactions.merge_map import MergeMap
from ecrm.transactions.models import ImportedStatus, Order, OrderIn, ReturnIn, StatusChangeIn
from ecrm.transactions.order_store import KeyAlreadyUsed, OrderStore, StaleOrder, idempotency_pk

MAX_KEY_LENGTH = 255
ATTEMPTS = 5


@dataclass(frozen=True)
class Placement:
    order: Order
    created: bool  # False: a replay of the key's first request, answered with the order it created


class OrderService:
    def __init__(self, store: OrderStore, clock: Clock, merges: MergeMap | None = None) -> None:
        self.store = store
        self.clock = clock
        self.merges = merges

    def place(self, body: OrderIn, *, idempotency_key: str | None, caller: str, correlation_id: str) -> Placement:
        """The order, created once per (caller, key): a replay with the same body gets the same order.

        An order for a customer the customer store merged into another is the survivor's (a shop that kept the
        old id): its events, points and history are the survivor's."""
        key = _checked_key(idempotency_key)

        def build(order_id: str, owned: OrderIn, now: datetime) -> tuple[Order, Sequence[DomainEvent]]:
            order, event = orders.new_order(order_id, owned, now)
            return order, [event]

        return self._place_once(body, idempotency_pk(caller, key), orders.fingerprint(body), build, correlation_id)

    def place_imported(
        self,
        body: OrderIn,
        *,
        source: str,
        order_ref: str,
        placed_at: datetime,
        status: ImportedStatus,
        earns_points: bool,
        correlation_id: str | None,
    ) -> Placement:
        """An order of another system's history, placed once per (source, its reference there), at its own date.

        The key is the API's (caller `import:<source>`, key the reference), kept for good, so a file imported
        again, a redelivered request or a retried chunk replays it; the same reference with another content is
        the API's 422 (`IdempotencyKeyReused`)."""

        def build(order_id: str, owned: OrderIn, now: datetime) -> tuple[Order, Sequence[DomainEvent]]:
            return orders.imported_order(
                order_id, owned, placed_at=placed_at, status=status, earns_points=earns_points, now=now
            )

        fingerprint = orders.import_fingerprint(body, placed_at=placed_at, status=status, earns_points=earns_points)
        key_pk = idempotency_pk(f"import:{source}", order_ref)
        return self._place_once(body, key_pk, fingerprint, build, correlation_id, key_expires=False)

    def _place_once(
        self,
        body: OrderIn,
        key_pk: str,
        fingerprint: str,
        build: Callable[[str, OrderIn, datetime], tuple[Order, Sequence[DomainEvent]]],
        correlation_id: str | None,
        *,
        key_expires: bool = True,
    ) -> Placement:
        known = self.store.key_record(key_pk)
        if known is None:
            now = self.clock.now()
            if self.merges is not None:
                owner = self.merges.survivor_of(body.customer_id)
                body = body if owner == body.customer_id else body.model_copy(update={"customer_id": owner})
            order, events = build(new_id("ord_"), body, now)
            try:
                self.store.place(
                    order,
                    events,
                    key_pk=key_pk,
                    fingerprint=fingerprint,
                    correlation_id=correlation_id,
                    now=now,
                    key_expires=key_expires,
                )
                return Placement(order, created=True)
            except KeyAlreadyUsed:
                known = self.store.key_record(key_pk)  # a concurrent twin won: answer as its replay
                if known is None:
                    raise ServiceUnavailable("the Idempotency-Key is being used concurrently; retry") from None
        if known.fingerprint != fingerprint:
            raise orders.IdempotencyKeyReused(
                "this Idempotency-Key was used for an order with another body; use a new key for a new order"
            )
        replayed = self.store.get(known.order_id)
        if replayed is None:  # a twin's placement is being applied: its key can be read before its order
            raise ServiceUnavailable("the Idempotency-Key is being used concurrently; retry")
        return Placement(replayed, created=False)

    def get(self, order_id: str) -> Order:
        order = self.store.get(order_id)
        if order is None:
            raise NotFound(f"no order {order_id}")
        return order

    def for_customer(self, customer_id: str, limit: int = 50) -> list[Order]:
        """The customer's orders, newest first, with those placed before a merge under an id the customer store
        merged into them: an order keeps the id it was placed for, the merge map knows whose it is now."""
        ids = [customer_id, *sorted(self.merges.merged_into(customer_id))] if self.merges else [customer_id]
        if len(ids) == 1:
            return self.store.for_customer(customer_id, limit)
        found = [order for owner in ids for order in self.store.for_customer(owner, limit)]
        return sorted(found, key=lambda order: (order.placed_at, order.order_id), reverse=True)[:limit]

    def change_status(self, order_id: str, change: StatusChangeIn, *, correlation_id: str) -> Order:
        for _ in range(ATTEMPTS):
            order = self.get(order_id)
            if order.status == change.status:
                return order  # a retried request: already there, nothing to publish again
            changed, event = orders.change_status(order, change, self.clock.now())
            try:
                self.store.save(
                    changed,
                    expected_version=order.version,
                    event=event,
                    correlation_id=correlation_id,
                    now=changed.updated_at,
                )
                return changed
            except StaleOrder:
                continue
        raise ServiceUnavailable("the order is being changed concurrently; retry the request")

    def take_return(
        self, order_id: str, request: ReturnIn, *, idempotency_key: str | None = None, correlation_id: str
    ) -> tuple[Order, bool]:
        """(the order after the return, True), or for a replayed key (the order as it is, False).

        With a key the return's id is derived from it, and the order keeps its returns: a retry finds its
        return there, so it is taken once; the same key with other lines is a 422.
        """
        return_id = orders.return_id_for(order_id, idempotency_key) if idempotency_key else new_id("ret_")
        for _ in range(ATTEMPTS):
            order = self.get(order_id)
            known = next((r for r in order.returns if r.return_id == return_id), None)
            if known is not None:
                if known.lines != request.lines:
                    raise orders.IdempotencyKeyReused("this Idempotency-Key was used for a return of other lines")
                return order, False
            changed, event = orders.apply_return(order, request, return_id, self.clock.now())
            try:
                self.store.save(
                    changed,
                    expected_version=order.version,
                    event=event,
                    correlation_id=correlation_id,
                    now=changed.updated_at,
                )
                return changed, True
            except StaleOrder:
                continue
        raise ServiceUnavailable("the order is being changed concurrently; retry the request")


def _checked_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise InvalidInput("placing an order takes an Idempotency-Key header (a unique value per new order)")
    key = key.strip()
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(f"the Idempotency-Key is printable text of at most {MAX_KEY_LENGTH} characters")
    return key
