"""Which customers the customer store merged into which: the transactions engine's copy of `CustomersMerged`,
so that what it writes for a merged customer's id (the lake's order lines) is written for the survivor.

Key design (the engine's table): `MERGED#<merged customer id>` / `MERGED` holds `survivor_id` and `merged_at`;
`MERGED#<survivor id>` / `FROM` holds `merged_ids`, the set of every id merged into the survivor, directly or
through a chain (so when the survivor is merged in turn, their orders follow too). A merge is never undone, so
the items are kept (ids only, no personal data); a survivor that is merged later points on, and a lookup
follows the chain.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

MERGED_SK = "MERGED"
FROM_SK = "FROM"
MAX_HOPS = 10  # a chain of merges longer than this is a loop or damage: the last id found is kept


def merged_pk(customer_id: str) -> str:
    return f"MERGED#{customer_id}"


class MergeMap:
    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name

    def merged_into(self, customer_id: str) -> set[str]:
        """Every id merged into the customer, directly or through a chain."""
        item = self.client.get_item(
            TableName=self.table,
            Key={"pk": {"S": merged_pk(customer_id)}, "sk": {"S": FROM_SK}},
            ConsistentRead=True,
        ).get("Item")
        return set(item["merged_ids"]["SS"]) if item else set()

    def note(self, merged_id: str, survivor_id: str, merged_at: datetime) -> set[str]:
        """Point the merged id (and the ids merged into it before) at the survivor; returns those ids.
        Idempotent: a redelivered merge writes the same pointer and adds the same ids again."""
        ids = {merged_id, *self.merged_into(merged_id)}
        self.client.update_item(
            TableName=self.table,
            Key={"pk": {"S": merged_pk(survivor_id)}, "sk": {"S": FROM_SK}},
            UpdateExpression="ADD merged_ids :ids",
            ExpressionAttributeValues={":ids": {"SS": sorted(ids)}},
        )
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": merged_pk(merged_id)},
                "sk": {"S": MERGED_SK},
                "survivor_id": {"S": survivor_id},
                "merged_at": {"S": merged_at.isoformat()},
            },
        )
        return ids

    def survivor_of(self, customer_id: str) -> str:
        """The customer the id belongs to now: itself unless it was merged, else the end of the merge chain."""
        seen = {customer_id}
        for _ in range(MAX_HOPS):
            item = self.client.get_item(
                TableName=self.table,
                Key={"pk": {"S": merged_pk(customer_id)}, "sk": {"S": MERGED_SK}},
                ConsistentRead=True,
            ).get("Item")
            if item is None or item["survivor_id"]["S"] in seen:
                return customer_id
            customer_id = item["survivor_id"]["S"]
            seen.add(customer_id)
        return customer_id
