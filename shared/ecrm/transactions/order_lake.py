"""What the lake writer puts in the lake's `order_lines` for each event it consumes, merges included.

An order event's rows are written for the customer the order's customer is now: a customer the customer store
merged into another is followed to the survivor (`MergeMap`), so an event that arrives after the merge is the
survivor's. A merge (`CustomersMerged`) rewrites the merged customers' order history as the survivor's rows:
their earlier rows keep the merged id, which every reader drops with the merged customer, so segments, OLAP
and the model job count those orders once, under the survivor. The pointers are written before the history is
read: an order event the writer handles afterwards is written for the survivor, and a change it handled before
is in the state read, under the same row ids (`lake_records.change_id`), so readers keep it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ecrm.transactions.lake_records import OrderEvent, change_id, history_events, order_rows
from ecrm.transactions.merge_map import MergeMap
from ecrm.transactions.order_store import OrderStore


class OrderLakeRows:
    def __init__(self, orders: OrderStore, merges: MergeMap) -> None:
        self.orders = orders
        self.merges = merges

    def rows_for(self, event: OrderEvent) -> list[dict[str, Any]]:
        customer_id = self.merges.survivor_of(event.customer_id)
        if customer_id != event.customer_id:
            event = event.model_copy(update={"customer_id": customer_id})
        return order_rows(event, event_id=change_id(event))

    def attribute_merge(self, survivor_id: str, merged_ids: Sequence[str], merged_at: datetime) -> list[dict[str, Any]]:
        """Note each merged id's survivor, then the merged customers' orders (and the orders of those merged into
        them before) as the survivor's rows."""
        followed: set[str] = set()
        for loser in merged_ids:
            if loser != survivor_id:
                followed |= self.merges.note(loser, survivor_id, merged_at)
        survivor = self.merges.survivor_of(survivor_id)  # merged on since: the end of the chain
        rows: list[dict[str, Any]] = []
        for merged_id in sorted(followed):
            for order in self.orders.every_order_of(merged_id):
                for event in history_events(order, survivor):
                    rows += order_rows(event, event_id=change_id(event))
        return rows
