"""What the collection engine keeps: sources, write keys and dedupe markers in one DynamoDB table
(`pk`, `sk`, TTL `expires_at`), and the lake feed through Kinesis Data Firehose.

Keys:
- source: `SOURCE#<id>` / `SOURCE` -> `doc` (the `Source` JSON), `key_hash`, `previous_key_hash`,
  `previous_key_valid_until`, `identity_secret` (client sources: the key of `context.userHash`;
  kept, unlike the write key, because verifying an HMAC needs it; the table is KMS-encrypted and
  the secret is never in `doc`, so no listing or API answer carries it), optimistic `version`.
  A copy of `doc` sits at `SOURCES` / `SOURCE#<id>`,
  written in the same transaction, so listing the (few) sources is one query, not a scan of a
  table that mostly holds message markers.
- unique source name: `SOURCENAME#<name>` / `SOURCENAME` -> `source_id` (the name is the namespace
  of the source's userIds in the customer store, so two sources may not share it).
- write key: `WRITEKEY#<sha256 hex of the key>` / `WRITEKEY` -> `source_id`, and for the previous
  key after a rotation `valid_until` (ISO) and `expires_at` (same instant, so DynamoDB removes it).
  Ingestion looks a key up by its hash alone; the key itself is never stored. Only one previous key
  is honoured: rotating again within the grace period revokes the older one at once.
- dedupe marker: `MSG#<source_id>#<message_id>` / `MSG` -> `state` (`pending` | `published`),
  `claim` (the claiming request's token), `lease_until` and `expires_at` (epoch seconds; 7 days).
  A marker counts only until `expires_at`: DynamoDB deletes expired items up to days late, so the
  claim condition treats an expired marker as absent. See `ecrm.collect.service` for the protocol.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from ecrm.collect.models import Source
from ecrm.core.errors import Conflict
from ecrm.core.lake import LAKE_MAX_BYTES, LAKE_MAX_RECORDS, FirehoseLakeWriter, lake_chunks  # noqa: F401 - re-exported

_SERIALIZE = TypeSerializer().serialize
_DESERIALIZE = TypeDeserializer().deserialize
logger = logging.getLogger(__name__)

MAX_CLAIM_THREADS = 16
MAX_BATCH_WRITE = 25
MAX_UNPROCESSED_ROUNDS = 8


def _item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _SERIALIZE(v) for k, v in values.items() if v is not None}


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _DESERIALIZE(v) for k, v in item.items()}


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


def source_pk(source_id: str) -> str:
    return f"SOURCE#{source_id}"


def write_key_pk(key_hash: str) -> str:
    return f"WRITEKEY#{key_hash}"


def message_pk(source_id: str, message_id: str) -> str:
    return f"MSG#{source_id}#{message_id}"


@dataclass(frozen=True)
class StoredSource:
    """A source with what only the store knows: its key hashes and version."""

    source: Source
    key_hash: str
    version: int = 1
    previous_key_hash: str | None = None
    previous_key_valid_until: datetime | None = None
    identity_secret: str | None = None


@dataclass(frozen=True)
class KeyMatch:
    """The source a write key belongs to; `valid_until` is set for a rotated-out key."""

    source: Source
    valid_until: datetime | None = None
    identity_secret: str | None = None

    def valid_at(self, now: datetime) -> bool:
        return self.valid_until is None or now < self.valid_until


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"
    DUPLICATE = "duplicate"
    IN_FLIGHT = "in_flight"


class CollectStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name

    # -- sources --------------------------------------------------------------------------------
    def create_source(self, source: Source, key_hash: str, identity_secret: str | None = None) -> None:
        stored = StoredSource(source, key_hash, identity_secret=identity_secret)
        actions = [
            self._put_source(stored, condition="attribute_not_exists(pk)"),
            self._put_listing(source),
            {
                "Put": {
                    "TableName": self.table,
                    "Item": _item(
                        {"pk": f"SOURCENAME#{source.name}", "sk": "SOURCENAME", "source_id": source.source_id}
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            self._put_key(key_hash, source.source_id),
        ]
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if _cancelled_at(exc) == [2]:
                raise Conflict(f"a source named {source.name!r} exists", field="name") from exc
            raise

    def get_source(self, source_id: str) -> StoredSource | None:
        raw = self.client.get_item(
            TableName=self.table, Key=_item({"pk": source_pk(source_id), "sk": "SOURCE"}), ConsistentRead=True
        ).get("Item")
        return _stored_source(_plain(raw)) if raw else None

    def list_sources(self) -> list[Source]:
        sources: list[Source] = []
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": _SERIALIZE("SOURCES")},
        }
        while True:
            response = self.client.query(**request)
            sources.extend(Source.model_validate_json(_plain(i)["doc"]) for i in response["Items"])
            if not response.get("LastEvaluatedKey"):
                return sorted(sources, key=lambda s: s.name)
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def save_source(self, stored: StoredSource, updated: Source) -> StoredSource:
        """Write a changed source if nobody changed it since `stored` was read; else `Conflict`."""
        saved = StoredSource(
            updated,
            stored.key_hash,
            stored.version + 1,
            stored.previous_key_hash,
            stored.previous_key_valid_until,
            stored.identity_secret,
        )
        self._transact_versioned([self._put_source(saved, expected=stored.version), self._put_listing(updated)])
        return saved

    def rotate_key(
        self, stored: StoredSource, updated: Source, new_key_hash: str, previous_valid_until: datetime
    ) -> StoredSource:
        """Make `new_key_hash` the key; the current one stays valid until `previous_valid_until`."""
        rotated = StoredSource(
            updated, new_key_hash, stored.version + 1, stored.key_hash, previous_valid_until, stored.identity_secret
        )
        actions = [
            self._put_source(rotated, expected=stored.version),
            self._put_listing(updated),
            self._put_key(new_key_hash, updated.source_id),
            {
                "Put": {
                    "TableName": self.table,
                    "Item": _item(
                        {
                            "pk": write_key_pk(stored.key_hash),
                            "sk": "WRITEKEY",
                            "source_id": updated.source_id,
                            "valid_until": previous_valid_until.isoformat(),
                            "expires_at": _epoch(previous_valid_until),
                        }
                    ),
                }
            },
        ]
        if stored.previous_key_hash:
            actions.append(
                {
                    "Delete": {
                        "TableName": self.table,
                        "Key": _item({"pk": write_key_pk(stored.previous_key_hash), "sk": "WRITEKEY"}),
                    }
                }
            )
        self._transact_versioned(actions)
        return rotated

    def find_by_write_key(self, key_hash: str) -> KeyMatch | None:
        """The source of a key, by its hash. Strongly consistent: a key just created must work at once."""
        raw = self.client.get_item(
            TableName=self.table, Key=_item({"pk": write_key_pk(key_hash), "sk": "WRITEKEY"}), ConsistentRead=True
        ).get("Item")
        if raw is None:
            return None
        key = _plain(raw)
        stored = self.get_source(key["source_id"])
        if stored is None:
            return None
        valid_until = datetime.fromisoformat(key["valid_until"]) if key.get("valid_until") else None
        return KeyMatch(stored.source, valid_until, stored.identity_secret)

    def _put_source(
        self, stored: StoredSource, *, expected: int | None = None, condition: str | None = None
    ) -> dict[str, Any]:
        put: dict[str, Any] = {
            "TableName": self.table,
            "Item": _item(
                {
                    "pk": source_pk(stored.source.source_id),
                    "sk": "SOURCE",
                    "doc": stored.source.model_dump_json(),
                    "version": stored.version,
                    "key_hash": stored.key_hash,
                    "previous_key_hash": stored.previous_key_hash,
                    "previous_key_valid_until": (
                        stored.previous_key_valid_until.isoformat() if stored.previous_key_valid_until else None
                    ),
                    "identity_secret": stored.identity_secret,
                }
            ),
        }
        if expected is not None:
            put["ConditionExpression"] = "version = :v"
            put["ExpressionAttributeValues"] = {":v": _SERIALIZE(expected)}
        elif condition:
            put["ConditionExpression"] = condition
        return {"Put": put}

    def _put_listing(self, source: Source) -> dict[str, Any]:
        item = {"pk": "SOURCES", "sk": source_pk(source.source_id), "doc": source.model_dump_json()}
        return {"Put": {"TableName": self.table, "Item": _item(item)}}

    def _put_key(self, key_hash: str, source_id: str) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table,
                "Item": _item({"pk": write_key_pk(key_hash), "sk": "WRITEKEY", "source_id": source_id}),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _transact_versioned(self, actions: list[dict[str, Any]]) -> None:
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                raise Conflict("the source changed while this request ran; try again") from exc
            raise

    # -- dedupe markers -------------------------------------------------------------------------
    def claim_messages(
        self,
        source_id: str,
        message_ids: Sequence[str],
        *,
        token: str,
        now: datetime,
        lease_until: datetime,
        expires_at: datetime,
    ) -> dict[str, ClaimOutcome]:
        """Claim each message id for this request: one conditional write each, in parallel.

        A marker is taken over when absent, expired, or `pending` with its lease run out (the
        request that claimed it died before it could publish or release).
        """

        def claim(message_id: str) -> ClaimOutcome:
            return self._claim(source_id, message_id, token, now, lease_until, expires_at)

        if len(message_ids) <= 1:
            return {m: claim(m) for m in message_ids}
        with ThreadPoolExecutor(max_workers=min(MAX_CLAIM_THREADS, len(message_ids))) as pool:
            return dict(zip(message_ids, pool.map(claim, message_ids), strict=True))

    def _claim(
        self, source_id: str, message_id: str, token: str, now: datetime, lease_until: datetime, expires_at: datetime
    ) -> ClaimOutcome:
        try:
            self.client.put_item(
                TableName=self.table,
                Item=_item(
                    {
                        "pk": message_pk(source_id, message_id),
                        "sk": "MSG",
                        "state": "pending",
                        "claim": token,
                        "lease_until": _epoch(lease_until),
                        "expires_at": _epoch(expires_at),
                    }
                ),
                ConditionExpression=(
                    "attribute_not_exists(pk) OR expires_at <= :now OR (#state = :pending AND lease_until <= :now)"
                ),
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":now": _SERIALIZE(_epoch(now)), ":pending": _SERIALIZE("pending")},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            old: Any = exc.response.get("Item")
            state = _plain(old).get("state") if old else self._marker_state(source_id, message_id)
            # Gone again by now (released by a failing request): not safe to call it a duplicate.
            return ClaimOutcome.DUPLICATE if state == "published" else ClaimOutcome.IN_FLIGHT
        return ClaimOutcome.CLAIMED

    def _marker_state(self, source_id: str, message_id: str) -> str | None:
        raw = self.client.get_item(
            TableName=self.table, Key=_item({"pk": message_pk(source_id, message_id), "sk": "MSG"}), ConsistentRead=True
        ).get("Item")
        return _plain(raw).get("state") if raw else None

    def confirm_messages(self, source_id: str, message_ids: Sequence[str], *, expires_at: datetime) -> None:
        """Mark claimed messages published, so every later copy within the window is a duplicate."""
        for start in range(0, len(message_ids), MAX_BATCH_WRITE):
            pending: dict[str, Any] = {
                self.table: [
                    {
                        "PutRequest": {
                            "Item": _item(
                                {
                                    "pk": message_pk(source_id, message_id),
                                    "sk": "MSG",
                                    "state": "published",
                                    "expires_at": _epoch(expires_at),
                                }
                            )
                        }
                    }
                    for message_id in message_ids[start : start + MAX_BATCH_WRITE]
                ]
            }
            for _ in range(MAX_UNPROCESSED_ROUNDS):
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
            else:
                raise RuntimeError(f"{len(pending[self.table])} dedupe marker(s) stayed unprocessed")

    def release_messages(self, source_id: str, message_ids: Sequence[str], *, token: str) -> None:
        """Drop this request's claims, so a retry of these messages is not taken for a duplicate."""
        for message_id in message_ids:
            try:
                self.client.delete_item(
                    TableName=self.table,
                    Key=_item({"pk": message_pk(source_id, message_id), "sk": "MSG"}),
                    ConditionExpression="#claim = :token",
                    ExpressionAttributeNames={"#claim": "claim"},
                    ExpressionAttributeValues={":token": _SERIALIZE(token)},
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise


def _stored_source(item: Mapping[str, Any]) -> StoredSource:
    until = item.get("previous_key_valid_until")
    return StoredSource(
        source=Source.model_validate_json(item["doc"]),
        key_hash=item["key_hash"],
        version=int(item["version"]),
        previous_key_hash=item.get("previous_key_hash"),
        previous_key_valid_until=datetime.fromisoformat(until) if until else None,
        identity_secret=item.get("identity_secret"),
    )


def _cancelled_at(exc: ClientError) -> list[int]:
    """The indexes of the transaction items whose condition failed."""
    if exc.response["Error"]["Code"] != "TransactionCanceledException":
        return []
    reasons = exc.response.get("CancellationReasons") or []
    return [i for i, r in enumerate(reasons) if r.get("Code") == "ConditionalCheckFailed"]
