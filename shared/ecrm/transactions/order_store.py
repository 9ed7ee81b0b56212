"""Orders in the engine's table, each change written with its event through the outbox (ADR 11).

Key design (table `pk`/`sk`, TTL `expires_at`, GSI `by_customer`):
- `ORDER#<order id>` / `ORDER`: the order as JSON plus its `version`; every change is conditional on the
  version it read, so two concurrent changes cannot both win. `by_customer_pk = CUST#<customer id>`,
  `by_customer_sk = <placed_at ISO>#<order id>`: a customer's orders, newest first, from the index.
- `ORDER#<order id>` / `OUTBOX`: the events of the order's last transaction (`ecrm.core.outbox`).
- `IDEM#<sha-256 of caller and Idempotency-Key>` / `IDEMPOTENCY`: the order a key created and the
  fingerprint of its body, written in the order's own transaction (so a key never names an order that
  was not saved); kept `IDEMPOTENCY_RETENTION`, an imported order's key (caller `import:<source>`, key its
  reference in that system) for good.
The loyalty ledger shares the table under `MEMBER#...` (`loyalty_store`), merged customers' pointers are
`MERGED#<id>` (`merge_map`); the catalogue and purchases
will take their own prefixes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from ecrm.core.events import DomainEvent
from ecrm.core.outbox import OUTBOX_SORT_KEY, Outbox
from ecrm.transactions.models import Order

ORDER_SK = "ORDER"
IDEMPOTENCY_SK = "IDEMPOTENCY"
CUSTOMER_INDEX = "by_customer"
IDEMPOTENCY_RETENTION = timedelta(days=30)


def order_pk(order_id: str) -> str:
    return f"ORDER#{order_id}"


def idempotency_pk(caller: str, key: str) -> str:
    digest = hashlib.sha256(f"{caller}\n{key}".encode()).hexdigest()
    return f"IDEM#{digest}"


@dataclass(frozen=True)
class KeyRecord:
    order_id: str
    fingerprint: str


class KeyAlreadyUsed(Exception):
    """The Idempotency-Key was taken by another transaction (a retry, or a concurrent twin)."""


class StaleOrder(Exception):
    """The order changed since it was read."""


class OrderStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name
        self.outbox = Outbox(table_name)

    # -- reads ---------------------------------------------------------------------------------------------
    def get(self, order_id: str) -> Order | None:
        item = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": order_pk(order_id)}, "sk": {"S": ORDER_SK}}, ConsistentRead=True
        ).get("Item")
        return Order.model_validate_json(item["order"]["S"]) if item else None

    def key_record(self, key_pk: str) -> KeyRecord | None:
        item = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": key_pk}, "sk": {"S": IDEMPOTENCY_SK}}, ConsistentRead=True
        ).get("Item")
        return KeyRecord(item["order_id"]["S"], item["fingerprint"]["S"]) if item else None

    def for_customer(self, customer_id: str, limit: int) -> list[Order]:
        response = self.client.query(
            TableName=self.table,
            IndexName=CUSTOMER_INDEX,
            KeyConditionExpression="by_customer_pk = :c",
            ExpressionAttributeValues={":c": {"S": f"CUST#{customer_id}"}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [Order.model_validate_json(item["order"]["S"]) for item in response.get("Items", [])]

    def every_order_of(self, customer_id: str) -> Iterator[Order]:
        """All the customer's orders, page by page (a merge attributes each of them to the survivor)."""
        query: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": CUSTOMER_INDEX,
            "KeyConditionExpression": "by_customer_pk = :c",
            "ExpressionAttributeValues": {":c": {"S": f"CUST#{customer_id}"}},
        }
        while True:
            response = self.client.query(**query)
            for item in response.get("Items", []):
                yield Order.model_validate_json(item["order"]["S"])
            if "LastEvaluatedKey" not in response:
                return
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # -- writes --------------------------------------------------------------------------------------------
    def place(
        self,
        order: Order,
        events: Sequence[DomainEvent],
        *,
        key_pk: str,
        fingerprint: str,
        correlation_id: str | None,
        now: datetime,
        key_expires: bool = True,
    ) -> None:
        """Save a new order, its key and its events together; `KeyAlreadyUsed` if the key is taken.

        `key_expires=False` keeps the key for good: an imported order's key guards against a file imported
        again a year later, not only against a client's retries."""
        key_item = {
            "pk": {"S": key_pk},
            "sk": {"S": IDEMPOTENCY_SK},
            "order_id": {"S": order.order_id},
            "fingerprint": {"S": fingerprint},
        }
        if key_expires:
            key_item["expires_at"] = {"N": str(int((now + IDEMPOTENCY_RETENTION).timestamp()))}
        actions = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": key_item,
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Put": {
                    "TableName": self.table,
                    "Item": self._order_item(order),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            self.outbox.put(order_pk(order.order_id), events, correlation_id=correlation_id, now=now),
        ]
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if lost_to_another_write(exc):
                raise KeyAlreadyUsed(key_pk) from exc
            raise

    def save(
        self, order: Order, *, expected_version: int, event: DomainEvent, correlation_id: str | None, now: datetime
    ) -> None:
        """Replace the order if it is still at `expected_version`, with its event; `StaleOrder` if not."""
        actions = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": self._order_item(order),
                    "ConditionExpression": "#version = :expected",
                    "ExpressionAttributeNames": {"#version": "version"},
                    "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
                }
            },
            self.outbox.put(order_pk(order.order_id), [event], correlation_id=correlation_id, now=now),
        ]
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if lost_to_another_write(exc):
                raise StaleOrder(order.order_id) from exc
            raise

    def detach_customer(self, order: Order, *, expected_version: int) -> None:
        """Keep the order (bookkeeping) without its customer: no customer id, out of the customer index.

        Its outbox item, whose events name the customer, is deleted with it. `StaleOrder` if it changed.
        """
        item = self._order_item(order)
        del item["by_customer_pk"], item["by_customer_sk"]
        actions = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": item,
                    "ConditionExpression": "#version = :expected",
                    "ExpressionAttributeNames": {"#version": "version"},
                    "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
                }
            },
            {"Delete": {"TableName": self.table, "Key": {"pk": item["pk"], "sk": {"S": OUTBOX_SORT_KEY}}}},
        ]
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if lost_to_another_write(exc):
                raise StaleOrder(order.order_id) from exc
            raise

    def plain_put(self, order: Order) -> None:
        """The order's item alone, with no key, condition or event: the benchmark's baseline."""
        self.client.put_item(TableName=self.table, Item=self._order_item(order))

    def _order_item(self, order: Order) -> dict[str, Any]:
        return {
            "pk": {"S": order_pk(order.order_id)},
            "sk": {"S": ORDER_SK},
            "order": {"S": order.model_dump_json()},
            "status": {"S": order.status},
            "version": {"N": str(order.version)},
            "by_customer_pk": {"S": f"CUST#{order.customer_id}"},
            "by_customer_sk": {"S": f"{order.placed_at.isoformat()}#{order.order_id}"},
        }


def lost_to_another_write(exc: ClientError) -> bool:
    """A transaction cancelled by a failed condition or by a concurrent transaction on its items.

    Either way another write got there first: the caller reads again (a throttle or a validation error
    is neither, and is raised as it is).
    """
    if exc.response["Error"]["Code"] != "TransactionCanceledException":
        return False
    codes = {reason.get("Code") for reason in exc.response.get("CancellationReasons") or []}
    return bool(codes & {"ConditionalCheckFailed", "TransactionConflict"})
