"""This engine's part of an erasure request (GDPR Art. 17): the loyalty partition and what comparisons kept of the
customer (stated preferences, counted purchase history) deleted, orders detached.

Orders are bookkeeping a company must keep (invoices, refunds), so they stay, without their customer: the
customer id becomes `erased` and the order leaves the customer index. The loyalty account, its causes,
statement and outbox are deleted, leaving an erased account that late order events do not refill. The
lake's `order_lines` rows keep the customer id (no name or contact), as `customer_changes` does (ADR 10).
"""

from __future__ import annotations

from ecrm.core.clock import Clock
from ecrm.core.erasure import CustomerErasureRequested
from ecrm.core.errors import ServiceUnavailable
from ecrm.transactions.catalog_store import CatalogStore
from ecrm.transactions.loyalty_store import LoyaltyStore
from ecrm.transactions.models import TransactionsDataErased
from ecrm.transactions.order_store import OrderStore, StaleOrder

ENGINE = "transactions"
ERASED_CUSTOMER = "erased"
ATTEMPTS = 5
PAGE = 100


class TransactionsErasure:
    def __init__(self, orders: OrderStore, loyalty: LoyaltyStore, shoppers: CatalogStore, clock: Clock) -> None:
        self.orders = orders
        self.loyalty = loyalty
        self.shoppers = shoppers
        self.clock = clock

    def erase(self, request: CustomerErasureRequested) -> TransactionsDataErased:
        """Erase every id of the request; safe to run again (a redelivery finds nothing left to change)."""
        for customer_id in dict.fromkeys([request.customer_id, *request.customer_ids]):
            self.loyalty.erase_member(customer_id)
            self.shoppers.forget_shopper(customer_id)
            self._detach_orders(customer_id)
        return TransactionsDataErased(request_id=request.request_id, engine=ENGINE, erased_at=self.clock.now())

    def _detach_orders(self, customer_id: str) -> None:
        """Page through the customer index until it lists no order not yet detached (it lags the table)."""
        done: set[str] = set()
        while listed := [o.order_id for o in self.orders.for_customer(customer_id, PAGE) if o.order_id not in done]:
            for order_id in listed:
                self._detach(order_id)
                done.add(order_id)

    def _detach(self, order_id: str) -> None:
        for _ in range(ATTEMPTS):
            order = self.orders.get(order_id)
            if order is None or order.customer_id == ERASED_CUSTOMER:
                return
            detached = order.model_copy(update={"customer_id": ERASED_CUSTOMER, "version": order.version + 1})
            try:
                self.orders.detach_customer(detached, expected_version=order.version)
                return
            except StaleOrder:
                continue
        raise ServiceUnavailable(f"order {order_id} kept changing during the erasure; the queue retries")
