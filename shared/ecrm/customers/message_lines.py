"""One line per message on the customer's timeline, its status moving as broadcast's events arrive.

Key: the customer's partition, `CUST#<id>` / `TL#<requested_at>#broadcast:<message_id>`, beside the other
interactions (the timeline reads it as any other: `doc` holds the interaction). Every event of a message names
its request time, so each finds the line without a lookup, in whatever order the bus delivers them. The item
also holds `version` (the optimistic lock of the read-modify-write) and `applied`, the ids of the events the
line took: a redelivered event finds its id there and changes nothing.

One write unit per event instead of the four of an interaction and its idempotency marker in a transaction
(ADR 12, "What a message's events cost downstream"); the read before it is a fraction of a unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from ecrm.core.errors import Conflict
from ecrm.customers.models import Interaction

_SERIALIZE = TypeSerializer().serialize
_DESERIALIZE = TypeDeserializer().deserialize
MAX_CONFLICT_RETRIES = 8


@dataclass(frozen=True)
class LineKey:
    customer_pk: str
    requested_at: datetime
    message_id: str

    @property
    def interaction_id(self) -> str:
        return f"broadcast:{self.message_id}"

    @property
    def sort_key(self) -> str:
        return f"TL#{self.requested_at.isoformat()}#{self.interaction_id}"


@dataclass(frozen=True)
class StoredLine:
    interaction: Interaction
    version: int
    applied: frozenset[str]


class MessageLineStore:
    """The lines in the customer store's table (its client and table name)."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def load(self, key: LineKey, *, consistent: bool = True) -> StoredLine | None:
        """The line; read `consistent=False` at half the read units, when a stale line only costs a conditional
        write that fails (its version moved) and a strong read after it."""
        answer = self.client.get_item(
            TableName=self.table,
            Key={"pk": _SERIALIZE(key.customer_pk), "sk": _SERIALIZE(key.sort_key)},
            ConsistentRead=consistent,
        )
        item = answer.get("Item")
        if item is None:
            return None
        plain = {k: _DESERIALIZE(v) for k, v in item.items()}
        return StoredLine(
            interaction=Interaction.model_validate_json(plain["doc"]),
            version=int(plain.get("version", 0)),
            applied=frozenset(plain.get("applied") or ()),
        )

    def save(self, key: LineKey, line: Interaction, *, applied: frozenset[str], version: int) -> bool:
        """Write version `version + 1` of the line; False when another writer got there first (read again)."""
        condition = "attribute_not_exists(pk)" if version == 0 else "version = :seen"
        values = {} if version == 0 else {":seen": _SERIALIZE(version)}
        item = {
            "pk": key.customer_pk,
            "sk": key.sort_key,
            "doc": line.model_dump_json(),
            "version": version + 1,
            "applied": set(applied),
        }
        try:
            self.client.put_item(
                TableName=self.table,
                Item={k: _SERIALIZE(v) for k, v in item.items()},
                ConditionExpression=condition,
                **({"ExpressionAttributeValues": values} if values else {}),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True


def apply_with_retries(store: MessageLineStore, key: LineKey, event_id: str, merge: Any) -> bool:
    """Apply one event to its line once: True if the line took it now, False if it already had.

    `merge(current: Interaction | None) -> Interaction` builds the line with the event in it. A concurrent
    writer (another event of the message in another batch) makes the conditional write fail: read and merge
    again, a few times, then let the queue retry the record.

    The first read is eventually consistent (half a read unit): the line is usually written seconds before by
    the message's previous event, and a stale read is never applied, since its version no longer matches (or a
    line not yet seen exists): the write fails and the next reads are strong. A redelivered event that a stale
    read does not show as taken finds it there on the strong read, and changes nothing.
    """
    for attempt in range(MAX_CONFLICT_RETRIES):
        stored = store.load(key, consistent=attempt > 0)
        if stored is not None and event_id in stored.applied:
            return False
        current = stored.interaction if stored else None
        applied = (stored.applied if stored else frozenset()) | {event_id}
        if store.save(key, merge(current), applied=applied, version=stored.version if stored else 0):
            return True
    raise Conflict(f"the line of message {key.message_id} kept changing under its writers")
