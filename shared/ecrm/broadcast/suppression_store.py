"""The suppression list and the owners of phone numbers, in the broadcast engine's table (keys in `store`'s docstring).

- suppression list: `SUPP#<normalised address>` / `SUPPRESSION` (one read per address at send time) and
  `SUPPLIST` / `<address>` for staff listing (suppressions are rare writes, so one partition lists them); an
  erased customer's entries are kept under `sha256:<hash of the address>` instead of the address;
- who an address belongs to, for inbound STOPs that name only a phone number: `ADDR#<address>` / `OWNER`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any

from ecrm.broadcast.keys import address_hash, normalise_address
from ecrm.broadcast.models import Suppression
from ecrm.broadcast.reach_store import ReachStore, from_item, key_of, to_item
from ecrm.core.errors import InvalidInput

# An erased customer's suppressed address is kept as this prefix and its SHA-256 (`keys.address_hash`).
HASHED = "sha256:"


class SuppressionStore(ReachStore):
    # -- suppression list -----------------------------------------------------------------------------
    def suppressed(self, addresses: Iterable[str]) -> dict[str, str]:
        """Normalised address -> reason, for the given addresses on the list (as given, or hashed by an erasure)."""
        wanted: dict[str, str] = {}
        for address in dict.fromkeys(normalise_address(a) for a in addresses):
            wanted[f"SUPP#{address}"] = address
            wanted[f"SUPP#{HASHED}{address_hash(address)}"] = address
        keys = [key_of(pk, "SUPPRESSION") for pk in wanted]
        found: dict[str, str] = {}
        while keys:
            batch, keys = keys[:100], keys[100:]
            request: dict[str, Any] = {self.table: {"Keys": batch}}
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                for raw in response["Responses"].get(self.table, []):
                    item = from_item(raw)
                    found[wanted[item["pk"]]] = item["reason"]
                request = response.get("UnprocessedKeys") or {}
        return found

    def suppress(self, entry: Suppression) -> None:
        address = normalise_address(entry.address)
        doc = entry.model_copy(update={"address": address}).model_dump_json()
        self.client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": to_item(
                            {"pk": f"SUPP#{address}", "sk": "SUPPRESSION", "reason": entry.reason, "doc": doc}
                        ),
                    }
                },
                {"Put": {"TableName": self.table, "Item": to_item({"pk": "SUPPLIST", "sk": address, "doc": doc})}},
            ]
        )

    def unsuppress(self, address: str) -> bool:
        address = normalise_address(address)
        hashed = f"{HASHED}{address_hash(address)}"
        keys = [key_of(f"SUPP#{a}", "SUPPRESSION") for a in (address, hashed)]
        existing = self.client.batch_get_item(RequestItems={self.table: {"Keys": keys}})["Responses"].get(self.table)
        self.client.transact_write_items(
            TransactItems=[
                {"Delete": {"TableName": self.table, "Key": key}}
                for key in [*keys, key_of("SUPPLIST", address), key_of("SUPPLIST", hashed)]
            ]
        )
        return bool(existing)

    def suppressions_of(self, customer_id: str, addresses: Iterable[str]) -> list[Suppression]:
        """The entries kept as given that name the customer or one of their addresses (what an erasure hashes)."""
        known = {normalise_address(a) for a in addresses}
        entries = [Suppression.model_validate_json(i["doc"]) for i in self._query("SUPPLIST", "")]
        return [
            e
            for e in entries
            if not e.address.startswith(HASHED) and (e.customer_id == customer_id or e.address in known)
        ]

    def hash_suppression(self, entry: Suppression) -> None:
        """Keep the entry under its address's hash, without the customer: a replay of the move writes the same."""
        address = normalise_address(entry.address)
        hashed = f"{HASHED}{address_hash(address)}"
        doc = entry.model_copy(update={"address": hashed, "customer_id": None}).model_dump_json()
        self.client.transact_write_items(
            TransactItems=[
                {"Delete": {"TableName": self.table, "Key": key_of(f"SUPP#{address}", "SUPPRESSION")}},
                {"Delete": {"TableName": self.table, "Key": key_of("SUPPLIST", address)}},
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": to_item(
                            {"pk": f"SUPP#{hashed}", "sk": "SUPPRESSION", "reason": entry.reason, "doc": doc}
                        ),
                    }
                },
                {"Put": {"TableName": self.table, "Item": to_item({"pk": "SUPPLIST", "sk": hashed, "doc": doc})}},
            ]
        )

    def suppressions(self, *, limit: int, cursor: str | None) -> tuple[list[Suppression], str | None]:
        query: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": "SUPPLIST"}},
            "Limit": limit,
        }
        if cursor:
            query["ExclusiveStartKey"] = key_of("SUPPLIST", decode_cursor(cursor))
        response = self.client.query(**query)
        items = [Suppression.model_validate_json(from_item(i)["doc"]) for i in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return items, (encode_cursor(last["sk"]["S"]) if last else None)

    # -- addresses' owners ----------------------------------------------------------------------------
    def owner_marker(self, address: str, customer_id: str) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table,
                "Item": to_item(
                    {"pk": f"ADDR#{normalise_address(address)}", "sk": "OWNER", "customer_id": customer_id}
                ),
            }
        }

    def owner_of(self, address: str) -> str | None:
        raw = self.client.get_item(TableName=self.table, Key=key_of(f"ADDR#{normalise_address(address)}", "OWNER")).get(
            "Item"
        )
        return from_item(raw)["customer_id"] if raw else None


def encode_cursor(sort_key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(sort_key).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError as exc:
        raise InvalidInput("the cursor is not one this API gave", field="cursor") from exc
    if not isinstance(value, str):
        raise InvalidInput("the cursor is not one this API gave", field="cursor")
    return value
