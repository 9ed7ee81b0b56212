"""Persistence of the customer store in one DynamoDB table (`pk`, `sk`, TTL `expires_at`).

Access patterns and keys:
- profile (the 360 document, JSON in `doc`, optimistic `version`): `CUST#<id>` / `PROFILE`
- identity claim, one per normalised identity: `IDENT#<type>:<ns>:<value>` / `IDENT` -> `customer_id`.
  Claims of unique identities are conditional writes (`attribute_not_exists(pk)` or already mine),
  inside the same transaction as the profile, so two concurrent upserts of one new identity can
  never create two customers: one transaction fails and that upsert resolves again.
  The key is the identity itself, so millions of customers spread over as many partitions.
- consent log (every statement, for proof): `CUST#<id>` / `CONSENT#<ts>#<channel>#<purpose>`
- timeline: `CUST#<id>` / `TL#<occurred_at>#<interaction_id>`, newest first by sort key;
  idempotency marker `CUST#<id>` / `IX#<interaction_id>` written in the same transaction
- merge record: `CUST#<survivor>` / `MERGE#<ts>#<merged_id>`
- an unknown visitor's interactions, until an identify links them: `ANON#<anonymous_id>` / `TL#...` (TTL 90 days)
- import: `IMPORT#<id>` / `IMPORT` (atomic counters), chunk markers `IMPORT#<id>` / `CHUNK#<n>`,
  a chunk's progress `IMPORT#<id>` / `PROGRESS#<n>` (written with each row's change, TTL 14 days),
  file fingerprint `IMPORTFILE#<sha256>` / `IMPORTFILE`
- erasure request: `ERASURE#<id>` / `ERASURE`
- outbox (`ecrm.core.outbox`, ADR 11): `CUST#<id>` / `OUTBOX`, the events of the customer's latest
  change, written in the same transaction as the change and relayed to the bus from the table's
  stream; the next change of the customer overwrites it (each write is its own stream record), and
  it expires after two days. Consent, profile, merge and erasure events travel this way. An
  interaction's `InteractionRecorded` rides in its own timeline item instead (written once, never
  rewritten), in the transaction that records it.

A merged customer's profile stays as a pointer (`status=merged`, `merged_into`), so old ids keep
resolving; its timeline stays under its own partition and is read together with the survivor's.
"""

from __future__ import annotations

import base64
import heapq
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from ecrm.core.errors import Conflict, InvalidInput
from ecrm.core.events import DomainEvent
from ecrm.core.outbox import Outbox, events_attribute
from ecrm.customers.identity import NormalizedIdentity
from ecrm.customers.models import (
    Consent,
    Customer,
    ErasureRequest,
    Identity,
    ImportStatus,
    Interaction,
    MergeRecord,
)

_SERIALIZE = TypeSerializer().serialize
_DESERIALIZE = TypeDeserializer().deserialize
MAX_FOLLOW = 8
MAX_TRANSACTION_ITEMS = 100
MAX_CONFLICT_RETRIES = 5


class IdentityTaken(Exception):
    """A claim failed: another customer owns one of the identities now. Resolve again."""


class ConcurrentUpdate(Exception):
    """The profile changed since it was read. Resolve again."""


def _item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _SERIALIZE(v) for k, v in values.items() if v is not None}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _DESERIALIZE(v) for k, v in item.items()}


def customer_pk(customer_id: str) -> str:
    return f"CUST#{customer_id}"


def identity_pk(key: str) -> str:
    return f"IDENT#{key}"


class CustomerStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name
        self.outbox = Outbox(table_name)

    # -- identities -----------------------------------------------------------------------------
    def owners_of(self, keys: Iterable[str]) -> dict[str, str]:
        """Identity key -> owning customer id, for the keys that are claimed."""
        pending = [{"pk": _SERIALIZE(identity_pk(k)), "sk": _SERIALIZE("IDENT")} for k in sorted(set(keys))]
        owners: dict[str, str] = {}
        while pending:
            batch, pending = pending[:100], pending[100:]
            request: dict[str, Any] = {self.table: {"Keys": batch, "ConsistentRead": True}}
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                for raw in response["Responses"].get(self.table, []):
                    item = _plain(raw)
                    owners[item["pk"].removeprefix("IDENT#")] = item["customer_id"]
                request = response.get("UnprocessedKeys") or {}
        return owners

    # -- profiles -------------------------------------------------------------------------------
    def load(self, customer_id: str, *, follow: bool = True) -> Customer | None:
        """The customer, following merge pointers to the survivor unless `follow` is False."""
        for _ in range(MAX_FOLLOW):
            raw = self.client.get_item(
                TableName=self.table, Key=_item({"pk": customer_pk(customer_id), "sk": "PROFILE"}), ConsistentRead=True
            ).get("Item")
            if raw is None:
                return None
            item = _plain(raw)
            customer = Customer.model_validate_json(item["doc"])
            customer.version = int(item["version"])
            if not follow or customer.status != "merged" or not customer.merged_into:
                return customer
            customer_id = customer.merged_into
        raise Conflict(f"merge chain of {customer_id} is longer than {MAX_FOLLOW}")

    def load_many(self, customer_ids: Iterable[str]) -> dict[str, Customer | None]:
        """Each id's customer (a merged id's survivor), read 100 at a time with strongly consistent reads.

        For the contact cards a send asks for: one batch read per 100 ids instead of one read per id;
        only a merged id costs a second read, following its pointer.
        """
        wanted = sorted(set(customer_ids))
        found: dict[str, Customer | None] = dict.fromkeys(wanted)
        for start in range(0, len(wanted), 100):
            keys = [_item({"pk": customer_pk(i), "sk": "PROFILE"}) for i in wanted[start : start + 100]]
            request: dict[str, Any] = {self.table: {"Keys": keys, "ConsistentRead": True}}
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                for raw in response["Responses"].get(self.table, []):
                    item = _plain(raw)
                    customer = Customer.model_validate_json(item["doc"])
                    customer.version = int(item["version"])
                    found[item["pk"].removeprefix("CUST#")] = customer
                request = response.get("UnprocessedKeys") or {}
        for customer_id, held in found.items():
            if held is not None and held.status == "merged" and held.merged_into:
                found[customer_id] = self.load(held.merged_into)
        return found

    def save(
        self,
        customer: Customer,
        *,
        new_identities: Sequence[NormalizedIdentity] = (),
        unique_types: frozenset[str] = frozenset(),
        extra: Sequence[dict[str, Any]] = (),
        create: bool = False,
        source: str = "",
        now: datetime,
        events: Sequence[DomainEvent] = (),
        correlation_id: str | None = None,
    ) -> None:
        """Write the profile (version-checked), claim `new_identities`, put `events` in the outbox: all or nothing."""
        expected = customer.version
        customer.version = expected + 1
        profile = {
            "Put": {
                "TableName": self.table,
                "Item": _item(
                    {
                        "pk": customer_pk(customer.customer_id),
                        "sk": "PROFILE",
                        "version": customer.version,
                        "status": customer.status,
                        "doc": customer.model_dump_json(exclude={"version"}),
                    }
                ),
                **(
                    {"ConditionExpression": "attribute_not_exists(pk)"}
                    if create
                    else {
                        "ConditionExpression": "version = :v",
                        "ExpressionAttributeValues": {":v": _SERIALIZE(expected)},
                    }
                ),
            }
        }
        actions = [profile]
        for identity in new_identities:
            claim = {
                "TableName": self.table,
                "Item": _item(
                    {
                        "pk": identity_pk(identity.key),
                        "sk": "IDENT",
                        "customer_id": customer.customer_id,
                        "type": identity.type,
                        "namespace": identity.namespace,
                        "value": identity.value,
                        "source": source,
                        "claimed_at": now.isoformat(),
                    }
                ),
            }
            if identity.type in unique_types:
                claim["ConditionExpression"] = "attribute_not_exists(pk) OR customer_id = :me"
                claim["ExpressionAttributeValues"] = {":me": _SERIALIZE(customer.customer_id)}
            actions.append({"Put": claim})
        actions.extend({"Put": {"TableName": self.table, "Item": _item(e)}} for e in extra)
        if events:
            actions.append(
                self.outbox.put(customer_pk(customer.customer_id), events, correlation_id=correlation_id, now=now)
            )
        if len(actions) > MAX_TRANSACTION_ITEMS:
            customer.version = expected
            room = MAX_TRANSACTION_ITEMS - 1 - (1 if events else 0)
            raise InvalidInput(f"a record may add at most {room} identities and consents at once")
        self._transact(actions, customer, expected)

    def merge(
        self,
        survivor: Customer,
        loser: Customer,
        record: MergeRecord,
        claims: Sequence[Identity],
        now: datetime,
        *,
        events: Sequence[DomainEvent] = (),
        correlation_id: str | None = None,
        extra: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Point the loser and its identity claims at the survivor, save the survivor, put `events` in its outbox.

        `extra` items are put in the same transaction (an import's progress)."""
        survivor_expected, loser_expected = survivor.version, loser.version
        loser.status, loser.merged_into = "merged", survivor.customer_id
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": _item(
                        {
                            "pk": customer_pk(loser.customer_id),
                            "sk": "PROFILE",
                            "version": loser_expected + 1,
                            "status": "merged",
                            "doc": Customer(
                                customer_id=loser.customer_id,
                                status="merged",
                                created_at=loser.created_at,
                                updated_at=now,
                                merged_into=survivor.customer_id,
                            ).model_dump_json(exclude={"version"}),
                        }
                    ),
                    "ConditionExpression": "version = :v",
                    "ExpressionAttributeValues": {":v": _SERIALIZE(loser_expected)},
                }
            },
            {
                "Put": {
                    "TableName": self.table,
                    "Item": _item(
                        {
                            "pk": customer_pk(survivor.customer_id),
                            "sk": f"MERGE#{now.isoformat()}#{loser.customer_id}",
                            "doc": record.model_dump_json(),
                        }
                    ),
                }
            },
        ]
        for claim in claims:
            actions.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": _item({"pk": identity_pk(claim.key), "sk": "IDENT"}),
                        "UpdateExpression": "SET customer_id = :to",
                        "ConditionExpression": "customer_id = :from",
                        "ExpressionAttributeValues": {
                            ":to": _SERIALIZE(survivor.customer_id),
                            ":from": _SERIALIZE(loser.customer_id),
                        },
                    }
                }
            )
        survivor.version = survivor_expected + 1
        actions.append(
            {
                "Put": {
                    "TableName": self.table,
                    "Item": _item(
                        {
                            "pk": customer_pk(survivor.customer_id),
                            "sk": "PROFILE",
                            "version": survivor.version,
                            "status": survivor.status,
                            "doc": survivor.model_dump_json(exclude={"version"}),
                        }
                    ),
                    "ConditionExpression": "version = :v",
                    "ExpressionAttributeValues": {":v": _SERIALIZE(survivor_expected)},
                }
            }
        )
        actions.extend({"Put": {"TableName": self.table, "Item": _item(e)}} for e in extra)
        if events:
            actions.append(
                self.outbox.put(customer_pk(survivor.customer_id), events, correlation_id=correlation_id, now=now)
            )
        if len(actions) > MAX_TRANSACTION_ITEMS:
            survivor.version = survivor_expected
            raise Conflict(f"customer {loser.customer_id} has too many identities to merge in one step")
        self._transact(actions, survivor, survivor_expected)

    def _transact(self, actions: list[dict[str, Any]], customer: Customer, expected: int) -> None:
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            customer.version = expected
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons") or []
            codes = [r.get("Code") for r in reasons]
            if codes and codes[0] == "ConditionalCheckFailed":
                raise ConcurrentUpdate(customer.customer_id) from exc
            if "ConditionalCheckFailed" in codes:
                raise IdentityTaken(customer.customer_id) from exc
            raise ConcurrentUpdate(customer.customer_id) from exc  # conflicts with a parallel transaction

    def merges(self, customer_id: str) -> list[MergeRecord]:
        return [MergeRecord.model_validate_json(i["doc"]) for i in self._query(customer_pk(customer_id), "MERGE#")]

    def consent_log(self, customer_id: str) -> list[dict[str, Any]]:
        return [json.loads(i["doc"]) for i in self._query(customer_pk(customer_id), "CONSENT#")]

    @staticmethod
    def consent_log_item(customer_id: str, consent: Consent) -> dict[str, Any]:
        return {
            "pk": customer_pk(customer_id),
            "sk": f"CONSENT#{consent.proof.captured_at.isoformat()}#{consent.channel}#{consent.purpose}",
            "doc": consent.model_dump_json(),
        }

    # -- timeline -------------------------------------------------------------------------------
    def add_interaction(
        self,
        interaction: Interaction,
        *,
        events: Sequence[DomainEvent] = (),
        correlation_id: str | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Record it once, with `events` in its timeline item for the relay (ADR 11, "Events in the item they
        describe": the item is written once and never rewritten, so they are relayed once); False if this
        interaction id is already on the customer's timeline (nothing written, nothing published)."""
        pk = customer_pk(interaction.customer_id)
        sk = f"TL#{interaction.occurred_at.isoformat()}#{interaction.interaction_id}"
        line = _item({"pk": pk, "sk": sk, "doc": interaction.model_dump_json()})
        if events:
            line |= events_attribute(
                events, correlation_id=correlation_id, now=now or interaction.recorded_at, packed=True
            )
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": _item({"pk": pk, "sk": f"IX#{interaction.interaction_id}", "tl": sk}),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {"Put": {"TableName": self.table, "Item": line}},
                ]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                return False
            raise
        return True

    def timeline(
        self, customer_ids: Sequence[str], *, limit: int, cursor: str | None = None
    ) -> tuple[list[Interaction], str | None]:
        """Newest first across the customer and everyone merged into it; `cursor` continues a page."""
        before = _timeline_position(cursor) if cursor else None
        streams = []
        for customer_id in customer_ids:
            condition = "pk = :pk AND sk BETWEEN :lo AND :hi"
            values = {
                ":pk": _SERIALIZE(customer_pk(customer_id)),
                ":lo": _SERIALIZE("TL#"),
                ":hi": _SERIALIZE(before if before else "TL#\uffff"),
            }
            response = self.client.query(
                TableName=self.table,
                KeyConditionExpression=condition,
                ExpressionAttributeValues=values,
                ScanIndexForward=False,
                Limit=limit + 1,
            )
            streams.append([_plain(i) for i in response["Items"] if _plain(i)["sk"] != before])
        merged = list(heapq.merge(*streams, key=lambda i: i["sk"], reverse=True))[: limit + 1]
        page, more = merged[:limit], len(merged) > limit
        items = [Interaction.model_validate_json(i["doc"]) for i in page]
        next_cursor = base64.urlsafe_b64encode(page[-1]["sk"].encode()).decode() if more and page else None
        return items, next_cursor

    # -- anonymous visitors ---------------------------------------------------------------------
    def hold_anonymous(self, anonymous_id: str, interaction: Interaction, *, keep_days: int = 90) -> None:
        """Keep what an unknown visitor did until an identify or alias says who they are."""
        expires = int(interaction.recorded_at.timestamp()) + keep_days * 86400
        self.client.put_item(
            TableName=self.table,
            Item=_item(
                {
                    "pk": f"ANON#{anonymous_id}",
                    "sk": f"TL#{interaction.occurred_at.isoformat()}#{interaction.interaction_id}",
                    "doc": interaction.model_dump_json(),
                    "expires_at": expires,
                }
            ),
        )

    def held_anonymous(self, anonymous_id: str) -> list[tuple[str, Interaction]]:
        return [
            (i["sk"], Interaction.model_validate_json(i["doc"])) for i in self._query(f"ANON#{anonymous_id}", "TL#")
        ]

    def release_anonymous(self, anonymous_id: str, sort_keys: Sequence[str]) -> None:
        for start in range(0, len(sort_keys), 25):
            pending: dict[str, Any] = {
                self.table: [
                    {"DeleteRequest": {"Key": _item({"pk": f"ANON#{anonymous_id}", "sk": sk})}}
                    for sk in sort_keys[start : start + 25]
                ]
            }
            while pending:
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    # -- imports --------------------------------------------------------------------------------
    def create_import(self, status: ImportStatus, request_json: str, file_fingerprint: str | None = None) -> None:
        self.client.put_item(
            TableName=self.table,
            Item=_item(
                {
                    "pk": f"IMPORT#{status.import_id}",
                    "sk": "IMPORT",
                    "status": status.status,
                    "request": request_json,
                    "doc": status.model_dump_json(),
                    "processed_rows": 0,
                    "imported_rows": 0,
                    "unchanged_rows": 0,
                    "error_rows": 0,
                    "created_customers": 0,
                    "merged_customers": 0,
                }
            ),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def get_import(self, import_id: str) -> tuple[ImportStatus, dict[str, Any]] | None:
        raw = self.client.get_item(
            TableName=self.table, Key=_item({"pk": f"IMPORT#{import_id}", "sk": "IMPORT"}), ConsistentRead=True
        ).get("Item")
        if raw is None:
            return None
        item = _plain(raw)
        status = ImportStatus.model_validate_json(item["doc"])
        counters = {
            k: int(item[k])
            for k in (
                "processed_rows",
                "imported_rows",
                "unchanged_rows",
                "error_rows",
                "created_customers",
                "merged_customers",
            )
        }
        status = status.model_copy(
            update={
                **counters,
                "status": item["status"],
                "total_rows": int(item["total_rows"]) if "total_rows" in item else None,
                "error_report_key": item.get("error_report_key"),
                "updated_at": item.get("updated_at", status.updated_at),
                "duplicate_of": item.get("duplicate_of"),
                "failure": item.get("failure"),
            }
        )
        return status, json.loads(item["request"])

    def update_import(self, import_id: str, **fields: Any) -> None:
        names = {f"#{k}": k for k in fields}
        values = {f":{k}": _SERIALIZE(v.isoformat() if isinstance(v, datetime) else v) for k, v in fields.items()}
        self.client.update_item(
            TableName=self.table,
            Key=_item({"pk": f"IMPORT#{import_id}", "sk": "IMPORT"}),
            UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in fields),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def record_chunk(self, import_id: str, chunk: int, counts: dict[str, int], now: datetime) -> bool:
        """Add one chunk's counts exactly once (a retried chunk adds nothing)."""
        additions = ", ".join(f"#{k} :{k}" for k in counts)
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": _item(
                                {"pk": f"IMPORT#{import_id}", "sk": f"CHUNK#{chunk:06d}", "counts": json.dumps(counts)}
                            ),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": _item({"pk": f"IMPORT#{import_id}", "sk": "IMPORT"}),
                            "UpdateExpression": f"ADD {additions} SET #updated_at = :now",
                            "ExpressionAttributeNames": {**{f"#{k}": k for k in counts}, "#updated_at": "updated_at"},
                            "ExpressionAttributeValues": {
                                **{f":{k}": _SERIALIZE(v) for k, v in counts.items()},
                                ":now": _SERIALIZE(now.isoformat()),
                            },
                        }
                    },
                ]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                return False
            raise
        return True

    def chunk_progress(self, import_id: str, chunk: int) -> dict[str, Any] | None:
        """A chunk's progress as its last attempt left it (`ecrm.customers.import_jobs.ChunkProgress`)."""
        raw = self.client.get_item(
            TableName=self.table,
            Key=_item({"pk": f"IMPORT#{import_id}", "sk": f"PROGRESS#{chunk:06d}"}),
            ConsistentRead=True,
        ).get("Item")
        return None if raw is None else _plain(raw)

    def chunk_progress_item(
        self, import_id: str, chunk: int, *, position: int, merges: int, counts: str, errors: str, expires_at: int
    ) -> dict[str, Any]:
        """The progress item, to put alone or with a row's own write (`save`/`merge` `extra`)."""
        return {
            "pk": f"IMPORT#{import_id}",
            "sk": f"PROGRESS#{chunk:06d}",
            "position": position,
            "merges": merges,
            "counts": counts,
            "errors": errors,
            "expires_at": expires_at,
        }

    def put_chunk_progress(self, item: dict[str, Any]) -> None:
        self.client.put_item(TableName=self.table, Item=_item(item))

    def claim_file(self, fingerprint: str, import_id: str) -> str | None:
        """Remember a file's fingerprint; returns the earlier import's id if it was imported before."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item=_item({"pk": f"IMPORTFILE#{fingerprint}", "sk": "IMPORTFILE", "import_id": import_id}),
                ConditionExpression="attribute_not_exists(pk)",
            )
            return None
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        raw = self.client.get_item(
            TableName=self.table,
            Key=_item({"pk": f"IMPORTFILE#{fingerprint}", "sk": "IMPORTFILE"}),
            ConsistentRead=True,
        )["Item"]
        earlier = str(_plain(raw)["import_id"])
        return None if earlier == import_id else earlier

    # -- GDPR -----------------------------------------------------------------------------------
    def put_erasure(
        self,
        request: ErasureRequest,
        *,
        events: Sequence[DomainEvent],
        now: datetime,
        correlation_id: str | None = None,
        replacing: ErasureRequest | None = None,
    ) -> bool:
        """Save the request and put `events` in the customer's outbox, in one transaction.

        With `replacing`, only if the stored request is still that one; False if it is not.
        """
        put: dict[str, Any] = {
            "TableName": self.table,
            "Item": _item({"pk": f"ERASURE#{request.request_id}", "sk": "ERASURE", "doc": request.model_dump_json()}),
        }
        if replacing is not None:
            put["ConditionExpression"] = "#doc = :old"
            put["ExpressionAttributeNames"] = {"#doc": "doc"}
            put["ExpressionAttributeValues"] = {":old": _SERIALIZE(replacing.model_dump_json())}
        outbox = self.outbox.put(customer_pk(request.customer_id), events, correlation_id=correlation_id, now=now)
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                self.client.transact_write_items(TransactItems=[{"Put": put}, outbox])
                return True
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                codes = [r.get("Code") for r in exc.response.get("CancellationReasons") or []]
                if codes and codes[0] == "ConditionalCheckFailed":
                    return False
                # a parallel transaction on the customer's outbox: try again
        raise Conflict(f"erasure {request.request_id} is being updated concurrently")

    def get_erasure(self, request_id: str) -> ErasureRequest | None:
        raw = self.client.get_item(
            TableName=self.table, Key=_item({"pk": f"ERASURE#{request_id}", "sk": "ERASURE"}), ConsistentRead=True
        ).get("Item")
        return ErasureRequest.model_validate_json(_plain(raw)["doc"]) if raw else None

    def acknowledge_erasure(self, request_id: str, engine: str, at: datetime) -> ErasureRequest | None:
        """Record an engine's acknowledgement (idempotent); returns the updated request."""
        for _ in range(5):
            current = self.get_erasure(request_id)
            if current is None:
                return None
            if engine in current.acknowledged:
                return current
            updated = current.model_copy(update={"acknowledged": {**current.acknowledged, engine: at}})
            try:
                self.client.put_item(
                    TableName=self.table,
                    Item=_item({"pk": f"ERASURE#{request_id}", "sk": "ERASURE", "doc": updated.model_dump_json()}),
                    ConditionExpression="#doc = :old",
                    ExpressionAttributeNames={"#doc": "doc"},
                    ExpressionAttributeValues={":old": _SERIALIZE(current.model_dump_json())},
                )
                return updated
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
        raise Conflict(f"erasure {request_id} is being updated concurrently")

    def all_items(self, customer_id: str) -> list[dict[str, Any]]:
        return self._query(customer_pk(customer_id), "")

    def erase(self, customer_id: str, identity_keys: Iterable[str], tombstone: Customer) -> int:
        """Delete everything under the customer and its identity claims; leave a tombstone without PII."""
        keys = [(customer_pk(customer_id), i["sk"]) for i in self._query(customer_pk(customer_id), "")]
        keys += [(identity_pk(k), "IDENT") for k in identity_keys]
        for start in range(0, len(keys), 25):
            requests = [{"DeleteRequest": {"Key": _item({"pk": pk, "sk": sk})}} for pk, sk in keys[start : start + 25]]
            pending: dict[str, Any] = {self.table: requests}
            while pending:
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        self.client.put_item(
            TableName=self.table,
            Item=_item(
                {
                    "pk": customer_pk(customer_id),
                    "sk": "PROFILE",
                    "version": tombstone.version + 1,
                    "status": "erased",
                    "doc": tombstone.model_dump_json(exclude={"version"}),
                }
            ),
        )
        return len(keys)

    def _query(self, pk: str, prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)" if prefix else "pk = :pk",
            "ExpressionAttributeValues": {":pk": _SERIALIZE(pk), **({":p": _SERIALIZE(prefix)} if prefix else {})},
        }
        while True:
            response = self.client.query(**kwargs)
            items.extend(_plain(i) for i in response["Items"])
            if "LastEvaluatedKey" not in response:
                return items
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _timeline_position(cursor: str) -> str:
    """The sort key a cursor continues after; anything a client made up is a 400, not a decoding crash."""
    try:
        before = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("utf-8")
    except (UnicodeError, ValueError):  # not ASCII, not base64 (binascii.Error), not UTF-8 inside
        before = ""
    if not before.startswith("TL#"):
        raise InvalidInput("cursor is not a timeline cursor: pass back a next_cursor as it was given", field="cursor")
    return before
