"""Persistence of the platform slice.

Table `platform` (partition key `pk`, sort key `sk`, TTL attribute `expires_at`):
- a ping: `pk = PING#<ping_id>`, `sk = PING`; kept 7 days.

Writes are conditional on the item not existing, so a redelivered event records nothing twice.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

from botocore.exceptions import ClientError

from ecrm.platform.models import PingRecord

PING_TTL = timedelta(days=7)


class PingStore(Protocol):
    def save(self, record: PingRecord) -> bool: ...

    def get(self, ping_id: str) -> PingRecord | None: ...


class DynamoPingStore:
    def __init__(self, table: Any) -> None:
        self.table = table

    def save(self, record: PingRecord) -> bool:
        """Store `record`; False if this ping was already recorded (a redelivery)."""
        item = record.model_dump(mode="json")
        item.update(pk=f"PING#{record.ping_id}", sk="PING", expires_at=int((record.received_at + PING_TTL).timestamp()))
        try:
            self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get(self, ping_id: str) -> PingRecord | None:
        item = self.table.get_item(Key={"pk": f"PING#{ping_id}", "sk": "PING"}).get("Item")
        return PingRecord.model_validate(item) if item else None


class InMemoryPingStore:
    """For unit tests of the handlers."""

    def __init__(self) -> None:
        self.items: dict[str, PingRecord] = {}

    def save(self, record: PingRecord) -> bool:
        if record.ping_id in self.items:
            return False
        self.items[record.ping_id] = record
        return True

    def get(self, ping_id: str) -> PingRecord | None:
        return self.items.get(ping_id)
