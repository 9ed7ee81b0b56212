"""What the analysis engine keeps in its DynamoDB table (`pk`, `sk`, TTL `expires_at`, index `gsi1`).

Keys:
- projection: `CUST#<id>` / `PROFILE` -> `doc` (the `Projection` JSON), optimistic `version`.
- behaviour: `CUST#<id>` / `EVT#<occurred_at ISO>#<event id>` -> `doc` (a `BehaviourEvent`),
  `expires_at` two years after it happened (rules look back at most 730 days). Writing the same
  event twice writes the same item: redeliveries count once.
- order rows: `CUST#<id>` / `ORD#<order id>#<event id>#<sku>` -> `doc` (an `OrderRow`, from the transactions
  engine's order events), `expires_at` two years after it happened. Redeliveries write the same item.
- membership: `CUST#<id>` / `SEG#<segment id>` -> `entered_at`, and `gsi1_pk = MEMBERS#<segment id>`,
  `gsi1_sk = <last character of the id>#<id>` so a build shard lists its members with one query
  per id ending.
- segment: `SEGMENTS` / `SEG#<id>` -> `doc` (the `Segment` JSON without its count), `member_count`
  (kept by ADD on every enter and exit), `version`.
- segment catalogue revision: `SEGMENTS#REVISION` / `REVISION` -> `revision`, added to in the transaction that
  creates a segment, so a consumer holding compiled segments knows with one read that it must reload them.
- audience build: `AUDIENCE#<id>` / `AUDIENCE` -> `doc` (the `AudienceBuild` JSON).
- erasure: `ERASURE#<request id>` / `PREPARED`, `expires_at` a week later: the projection consumer
  forgot the request's customers and its lake tombstones are written, so the lake eraser may run
  (it would otherwise miss a tombstone written after its rewrite).

Reading one customer for the real-time path is one query on `CUST#<id>` (projection, behaviour,
orders and memberships together).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from ecrm.analysis.models import AudienceBuild, Segment
from ecrm.analysis.predicate import BehaviourEvent, OrderRow
from ecrm.analysis.projection import Projection
from ecrm.analysis.rules import DEFAULT_CATALOG, FieldCatalog
from ecrm.core.errors import NotFound

_SERIALIZE = TypeSerializer().serialize
_SEGMENTS_REVISION = {"pk": {"S": "SEGMENTS#REVISION"}, "sk": {"S": "REVISION"}}
_DESERIALIZE = TypeDeserializer().deserialize
BEHAVIOUR_RETENTION = timedelta(days=731)
MEMBERS_INDEX = "gsi1"


class ProjectionConflict(Exception):
    """Someone else changed the projection since it was read: read and apply again."""


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def customer_pk(customer_id: str) -> str:
    return f"CUST#{customer_id}"


class CustomerState:
    """One customer as the real-time path reads it: projection, behaviour events, memberships."""

    def __init__(
        self,
        projection: Projection,
        events: list[BehaviourEvent],
        memberships: dict[str, str],
        exists: bool,
        orders: list[OrderRow] | None = None,
    ) -> None:
        self.projection = projection
        self.events = events
        self.memberships = memberships
        self.exists = exists
        self.orders = orders if orders is not None else []


ERASURE_MARKER_RETENTION = timedelta(days=7)


class AnalysisStore:
    def __init__(self, client: Any, table_name: str, catalog: FieldCatalog = DEFAULT_CATALOG) -> None:
        self.client = client
        self.table = table_name
        self.catalog = catalog

    # -- erasures -----------------------------------------------------------------------------------------------
    def mark_erasure_prepared(self, request_id: str, *, now: datetime) -> None:
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": f"ERASURE#{request_id}"},
                "sk": {"S": "PREPARED"},
                "expires_at": {"N": str(int((now + ERASURE_MARKER_RETENTION).timestamp()))},
            },
        )

    def erasure_prepared(self, request_id: str) -> bool:
        key = {"pk": {"S": f"ERASURE#{request_id}"}, "sk": {"S": "PREPARED"}}
        return "Item" in self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True)

    # -- customers ----------------------------------------------------------------------------------------------
    def load_customer(self, customer_id: str) -> CustomerState:
        projection: Projection | None = None
        events: list[BehaviourEvent] = []
        memberships: dict[str, str] = {}
        orders: list[OrderRow] = []
        for item in self._query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _s(customer_pk(customer_id))},
            ConsistentRead=True,  # what the last conditional save and the events written before it left
        ):
            sk = item["sk"]
            if sk == "PROFILE":
                projection = Projection.from_item(customer_id, json.loads(item["doc"]), self.catalog)
            elif sk.startswith("EVT#"):
                events.append(_event(json.loads(item["doc"])))
            elif sk.startswith("SEG#"):
                memberships[sk[4:]] = item["entered_at"]
            elif sk.startswith("ORD#"):
                orders.append(_order_row(json.loads(item["doc"])))
        exists = projection is not None
        return CustomerState(projection or Projection(customer_id), events, memberships, exists, orders)

    def save_projection(self, projection: Projection, *, expected_version: int | None) -> None:
        """Write the projection if nobody else did since `expected_version` (None: it must not exist)."""
        projection.version = (expected_version or 0) + 1
        condition = "attribute_not_exists(pk)" if expected_version is None else "version = :v"
        values = {} if expected_version is None else {":v": {"N": str(expected_version)}}
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": _s(customer_pk(projection.customer_id)),
                    "sk": _s("PROFILE"),
                    # A date field (a `date` attribute or trait) is kept as its ISO text; loading types it again.
                    "doc": _s(json.dumps(projection.to_item(), separators=(",", ":"), default=date.isoformat)),
                    "version": {"N": str(projection.version)},
                },
                ConditionExpression=condition,
                **({"ExpressionAttributeValues": values} if values else {}),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ProjectionConflict(projection.customer_id) from error
            raise

    def put_events(self, customer_id: str, events: Sequence[BehaviourEvent]) -> None:
        requests = [{"PutRequest": {"Item": self._event_item(customer_id, e)}} for e in events]
        self._batch_write(requests)

    def _event_item(self, customer_id: str, event: BehaviourEvent) -> dict[str, Any]:
        at = event.occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        doc = {
            "event_id": event.event_id,
            "type": event.type,
            "occurred_at": at,
            "amount": event.amount,
            "category": event.category,
            "channel": event.channel,
            "product_id": event.product_id,
            "segment_id": event.segment_id,
            "source": event.source,
        }
        return {
            "pk": _s(customer_pk(customer_id)),
            "sk": _s(f"EVT#{at}#{event.event_id}"),
            "doc": _s(json.dumps(doc, separators=(",", ":"))),
            "expires_at": {"N": str(int((event.occurred_at + BEHAVIOUR_RETENTION).timestamp()))},
        }

    def put_orders(self, customer_id: str, rows: Sequence[OrderRow]) -> None:
        self._batch_write([{"PutRequest": {"Item": self._order_item(customer_id, row)}} for row in rows])

    def _order_item(self, customer_id: str, row: OrderRow) -> dict[str, Any]:
        doc = {
            "event_id": row.event_id,
            "order_id": row.order_id,
            "kind": row.kind,
            "occurred_at": row.occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "amount": row.amount,
            "currency": row.currency,
            "sku": row.sku,
            "category": row.category,
            "channel": row.channel,
            "store": row.store,
        }
        return {
            "pk": _s(customer_pk(customer_id)),
            "sk": _s(order_row_key(row)),
            "doc": _s(json.dumps(doc, separators=(",", ":"))),
            "expires_at": {"N": str(int((row.occurred_at + BEHAVIOUR_RETENTION).timestamp()))},
        }

    def delete_customer(self, customer_id: str) -> list[str]:
        """Remove everything kept on a customer (erasure); returns the segments they were in."""
        keys, segments = [], []
        for item in self._query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _s(customer_pk(customer_id))},
            ProjectionExpression="pk, sk",
        ):
            keys.append({"DeleteRequest": {"Key": {"pk": _s(item["pk"]), "sk": _s(item["sk"])}}})
            if item["sk"].startswith("SEG#"):
                segments.append(item["sk"][4:])
        self._batch_write(keys)
        for segment_id in segments:
            self._count(segment_id, -1)
        return segments

    # -- memberships --------------------------------------------------------------------------------------------
    def enter(self, customer_id: str, segment_id: str, at: datetime) -> bool:
        """Record membership; False when the customer was already a member (nothing changes)."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": _s(customer_pk(customer_id)),
                    "sk": _s(f"SEG#{segment_id}"),
                    "entered_at": _s(at.isoformat()),
                    "gsi1_pk": _s(f"MEMBERS#{segment_id}"),
                    "gsi1_sk": _s(f"{customer_id[-1]}#{customer_id}"),
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        self._count(segment_id, 1)
        return True

    def exit(self, customer_id: str, segment_id: str) -> bool:
        try:
            self.client.delete_item(
                TableName=self.table,
                Key={"pk": _s(customer_pk(customer_id)), "sk": _s(f"SEG#{segment_id}")},
                ConditionExpression="attribute_exists(pk)",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        self._count(segment_id, -1)
        return True

    def members(self, segment_id: str, endings: Iterable[str]) -> Iterator[str]:
        """Current members whose id ends with one of `endings` (a build shard)."""
        for ending in endings:
            for item in self._query(
                IndexName=MEMBERS_INDEX,
                KeyConditionExpression="gsi1_pk = :pk AND begins_with(gsi1_sk, :ending)",
                ExpressionAttributeValues={":pk": _s(f"MEMBERS#{segment_id}"), ":ending": _s(f"{ending}#")},
                ProjectionExpression="gsi1_sk",
            ):
                yield item["gsi1_sk"].split("#", 1)[1]

    def _count(self, segment_id: str, delta: int) -> None:
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": _s("SEGMENTS"), "sk": _s(f"SEG#{segment_id}")},
                UpdateExpression="ADD member_count :d",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":d": {"N": str(delta)}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":  # segment deleted meanwhile
                raise

    # -- segments -----------------------------------------------------------------------------------------------
    def put_segment(self, segment: Segment) -> None:
        """A new segment and the catalogue's next revision, in one transaction."""
        self.client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": {
                            "pk": _s("SEGMENTS"),
                            "sk": _s(f"SEG#{segment.segment_id}"),
                            "doc": _s(segment.model_dump_json(exclude={"member_count"})),
                            "member_count": {"N": str(segment.member_count)},
                        },
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": _SEGMENTS_REVISION,
                        "UpdateExpression": "ADD revision :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
            ]
        )

    def segments_revision(self) -> int:
        """How many times the segment catalogue changed (0 before the first segment); a strongly consistent read."""
        item = self.client.get_item(
            TableName=self.table, Key=_SEGMENTS_REVISION, ConsistentRead=True, ProjectionExpression="revision"
        ).get("Item")
        return int(item["revision"]["N"]) if item else 0

    def update_segment(self, segment: Segment) -> None:
        self.client.update_item(
            TableName=self.table,
            Key={"pk": _s("SEGMENTS"), "sk": _s(f"SEG#{segment.segment_id}")},
            UpdateExpression="SET doc = :doc",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":doc": _s(segment.model_dump_json(exclude={"member_count"}))},
        )

    def get_segment(self, segment_id: str) -> Segment:
        item = self.client.get_item(
            TableName=self.table, Key={"pk": _s("SEGMENTS"), "sk": _s(f"SEG#{segment_id}")}, ConsistentRead=True
        ).get("Item")
        if item is None:
            raise NotFound(f"segment {segment_id} does not exist")
        return _segment({k: _DESERIALIZE(v) for k, v in item.items()})

    def list_segments(self) -> list[Segment]:
        items = self._query(KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": _s("SEGMENTS")})
        return [_segment(item) for item in items]

    # -- audience builds ----------------------------------------------------------------------------------------
    def put_build(self, build: AudienceBuild) -> None:
        self.client.put_item(
            TableName=self.table,
            Item={"pk": _s(f"AUDIENCE#{build.audience_id}"), "sk": _s("AUDIENCE"), "doc": _s(build.model_dump_json())},
        )

    def get_build(self, audience_id: str) -> AudienceBuild:
        item = self.client.get_item(
            TableName=self.table, Key={"pk": _s(f"AUDIENCE#{audience_id}"), "sk": _s("AUDIENCE")}, ConsistentRead=True
        ).get("Item")
        if item is None:
            raise NotFound(f"audience {audience_id} does not exist")
        return AudienceBuild.model_validate_json(item["doc"]["S"])

    # -- plumbing -----------------------------------------------------------------------------------------------
    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(TableName=self.table, **kwargs):
            for item in page.get("Items", []):
                yield {k: _DESERIALIZE(v) for k, v in item.items()}

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), 25):
            pending = {self.table: requests[start : start + 25]}
            for _ in range(8):
                response = self.client.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
                if not pending:
                    break
            if pending:
                raise RuntimeError("DynamoDB kept items unprocessed; the batch is retried")


def _event(doc: dict[str, Any]) -> BehaviourEvent:
    return BehaviourEvent(
        event_id=doc["event_id"],
        type=doc["type"],
        occurred_at=datetime.fromisoformat(doc["occurred_at"].replace("Z", "+00:00")),
        amount=doc.get("amount"),
        category=doc.get("category"),
        channel=doc.get("channel"),
        product_id=doc.get("product_id"),
        segment_id=doc.get("segment_id"),
        source=doc.get("source"),
    )


def order_row_key(row: OrderRow) -> str:
    return f"ORD#{row.order_id}#{row.event_id}#{row.sku or '-'}"


def _order_row(doc: dict[str, Any]) -> OrderRow:
    return OrderRow(
        event_id=doc["event_id"],
        order_id=doc["order_id"],
        kind=doc["kind"],
        occurred_at=datetime.fromisoformat(doc["occurred_at"].replace("Z", "+00:00")),
        amount=float(doc["amount"]),
        currency=doc["currency"],
        sku=doc.get("sku"),
        category=doc.get("category"),
        channel=doc.get("channel"),
        store=doc.get("store"),
    )


def _segment(item: dict[str, Any]) -> Segment:
    segment = Segment.model_validate_json(item["doc"])
    segment.member_count = int(item.get("member_count", 0))
    return segment
