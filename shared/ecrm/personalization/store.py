"""What the personalization engine keeps in its DynamoDB table (`pk`, `sk`, TTL `expires_at`).

Keys and what reads them:
- customer projection: `CUST#<id>` / `PROFILE` -> `doc` (a `CustomerProjection`), optimistic `version`.
- precomputed "for you" list: `CUST#<id>` / `FORYOU` -> `items` (JSON list of item ids, best first), `model_version`;
  rewritten by every training, expires with the model retention.
- offer usage: `CUST#<id>` / `USAGE#<offer id>` -> `presented`, `accepted` (kept by ADD).
- next-best-offer decision: `CUST#<id>` / `DECISION` -> `doc` (an `OfferDecision`), `decided_at`; replaced only
  by whoever saw the one it replaces (a conditional put), so every channel walks the same decision.
- presentation marker: `CUST#<id>` / `SHOWN#<decided_at>#<channel>#<offer id>` (TTL): a conditional put before
  the counters are added, so a repeated request counts once.
- acceptance marker: `CUST#<id>` / `ACCEPTED#<offer id>#<acceptance id>` -> `doc`: in one transaction with the
  customer's usage (the cap as its condition) and the offer's counters (the budget as theirs).
  Reading a customer for any request is one query on `CUST#<id>` (projection, list, usage, decision together);
  erasing one is deleting that partition.
- active model: `MODEL` / `ACTIVE` -> `version` (moves forward only, unless forced); each trained version:
  `MODEL` / `VERSION#<version>` -> `doc` (algorithm, stats, held-out metrics, artifact location).
- a version's lists: `MODEL#<version>` / `POPULAR` -> `popular`, `trending`; `MODEL#<version>` /
  `CATEGORY#<category>` -> `popular` within the category; `ITEM#<id>` / `NEIGHBOURS#<version>` ->
  `neighbours`, `together`: one item's lists in one read. Written by the training job with BatchWriteItem
  before the version is activated, so a request never sees half a version; they expire with the retention.
- item catalogue: `ITEM#<id>` / `DETAILS` -> `doc` (a `CatalogueItem`).
- offers: `OFFERS` / `OFFER#<id>` -> `doc` (the `Offer` without counters), `status`; the catalogue is one query.
  Counters: `OFFER#<id>` / `COUNTERS` -> `presented`, `accepted`, `cost_spent`, and per trait bucket `p:<bucket>`,
  `a:<bucket>` (ADD; the budget is a condition of the acceptance's transaction). One item per offer, so counting
  spreads over partitions.
- templates: `TPL#<id>` / `LATEST` -> `latest_version`, `name`, `channel`; `TPL#<id>` / `V#<000001>` -> `doc`
  (the template JSON, zlib-compressed: an e-mail's HTML may be up to 500k characters), `created_at`, `created_by`.

One module for the one table, past the usual length on purpose: every key of the table is written here and only
here, so the layout above can be checked against the code in one read.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from ecrm.core.errors import Conflict, InvalidInput, ServiceUnavailable
from ecrm.personalization.offers import Offer, OfferCounters, OfferDecision, OfferOutcomes, OutcomeCounts
from ecrm.personalization.projection import CustomerProjection
from ecrm.personalization.recommenders import Neighbours
from ecrm.personalization.service_models import CatalogueItem, StoredTemplate

_DESERIALIZE = TypeDeserializer().deserialize
MAX_TEMPLATE_BYTES = 350_000  # compressed; DynamoDB items stop at 400 KB
AcceptanceOutcome = Literal["counted", "repeated", "cap reached", "budget exhausted"]


class ProjectionConflict(Exception):
    """Someone else changed the projection since it was read: read and apply again."""


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: float) -> dict[str, str]:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _DESERIALIZE(v) for k, v in item.items()}


def _pairs(neighbours: Neighbours) -> str:
    return json.dumps([[item, score] for item, score in neighbours], separators=(",", ":"))


def _neighbours(text: str | None) -> Neighbours:
    return [(str(item), float(score)) for item, score in json.loads(text)] if text else []


def customer_pk(customer_id: str) -> str:
    return f"CUST#{customer_id}"


@dataclass
class CustomerRecord:
    """Everything the engine keeps on one customer, from one query."""

    customer_id: str
    projection: CustomerProjection | None = None
    for_you: list[str] = field(default_factory=list)
    for_you_version: str | None = None
    usage: dict[str, OutcomeCounts] = field(default_factory=dict)
    decision: OfferDecision | None = None


@dataclass(frozen=True)
class ItemLists:
    neighbours: Neighbours
    together: Neighbours


@dataclass(frozen=True)
class PopularLists:
    popular: Neighbours
    trending: Neighbours


@dataclass(frozen=True)
class OfferEvidence:
    """An offer's counters: what the budget and the propensity estimate read."""

    counters: OfferCounters
    outcomes: OfferOutcomes


class PersonalizationStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name

    # -- customers ----------------------------------------------------------------------------------------------
    def load_customer(self, customer_id: str) -> CustomerRecord:
        record = CustomerRecord(customer_id)
        for item in self._query("pk = :pk", {":pk": _s(customer_pk(customer_id))}):
            sk = item["sk"]
            if sk == "PROFILE":
                record.projection = CustomerProjection.model_validate_json(item["doc"])
                record.projection.version = int(item["version"])
            elif sk == "FORYOU":
                record.for_you = [str(i) for i in json.loads(item.get("items") or "[]")]
                record.for_you_version = item.get("model_version")
            elif sk.startswith("USAGE#"):
                record.usage[sk[6:]] = OutcomeCounts(
                    presented=int(item.get("presented", 0)), accepted=int(item.get("accepted", 0))
                )
            elif sk == "DECISION":
                record.decision = OfferDecision.model_validate_json(item["doc"])
        return record

    def projection(self, customer_id: str) -> CustomerProjection | None:
        """The projection alone, read consistently: what a consumer applies an event to."""
        raw = self.client.get_item(
            TableName=self.table, Key={"pk": _s(customer_pk(customer_id)), "sk": _s("PROFILE")}, ConsistentRead=True
        ).get("Item")
        if raw is None:
            return None
        item = _plain(raw)
        projection = CustomerProjection.model_validate_json(item["doc"])
        projection.version = int(item["version"])
        return projection

    def save_projection(self, projection: CustomerProjection, *, expected_version: int | None) -> None:
        """Write the projection if nobody else did since `expected_version` (None: it must not exist yet)."""
        version = (expected_version or 0) + 1
        condition = "attribute_not_exists(pk)" if expected_version is None else "version = :v"
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": _s(customer_pk(projection.customer_id)),
                    "sk": _s("PROFILE"),
                    "doc": _s(projection.model_dump_json(exclude={"version"})),
                    "version": _n(version),
                },
                ConditionExpression=condition,
                **({} if expected_version is None else {"ExpressionAttributeValues": {":v": _n(expected_version)}}),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ProjectionConflict(projection.customer_id) from error
            raise
        projection.version = version

    def add_usage(self, customer_id: str, usage: Mapping[str, OutcomeCounts]) -> None:
        """Add counts to a customer's offer usage (a merge carries the merged customer's over)."""
        for offer_id, counts in usage.items():
            self.client.update_item(
                TableName=self.table,
                Key={"pk": _s(customer_pk(customer_id)), "sk": _s(f"USAGE#{offer_id}")},
                UpdateExpression="ADD #p :p, #a :a",
                ExpressionAttributeNames={"#p": "presented", "#a": "accepted"},
                ExpressionAttributeValues={":p": _n(counts.presented), ":a": _n(counts.accepted)},
            )

    def delete_customer(self, customer_id: str) -> int:
        """Everything under the customer (erasure, or a customer merged into another); returns how many items."""
        keys = [
            {"DeleteRequest": {"Key": {"pk": _s(item["pk"]), "sk": _s(item["sk"])}}}
            for item in self._query("pk = :pk", {":pk": _s(customer_pk(customer_id))}, ProjectionExpression="pk, sk")
        ]
        self._batch_write(keys)
        return len(keys)

    # -- model ----------------------------------------------------------------------------------------------------
    def active_model(self) -> str | None:
        item = self._get("MODEL", "ACTIVE")
        return str(item["version"]) if item else None

    def activate_model(self, version: str, *, at: datetime, force: bool = False) -> bool:
        """Point requests at `version`; without `force`, only a newer version than the active one."""
        kwargs: dict[str, Any] = {}
        if not force:
            kwargs = {
                "ConditionExpression": "attribute_not_exists(version) OR version < :v",
                "ExpressionAttributeValues": {":v": _s(version)},
            }
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": _s("MODEL"),
                    "sk": _s("ACTIVE"),
                    "version": _s(version),
                    "activated_at": _s(at.isoformat()),
                },
                **kwargs,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def put_model_version(self, version: str, meta: Mapping[str, Any]) -> None:
        self.client.put_item(
            TableName=self.table,
            Item={"pk": _s("MODEL"), "sk": _s(f"VERSION#{version}"), "doc": _s(json.dumps(meta, default=str))},
        )

    def model_version(self, version: str) -> dict[str, Any] | None:
        item = self._get("MODEL", f"VERSION#{version}")
        return json.loads(item["doc"]) if item else None

    def model_versions(self) -> list[dict[str, Any]]:
        items = self._query("pk = :pk AND begins_with(sk, :p)", {":pk": _s("MODEL"), ":p": _s("VERSION#")})
        return [json.loads(item["doc"]) for item in items]

    def popular(self, version: str) -> PopularLists:
        item = self._get(f"MODEL#{version}", "POPULAR") or {}
        return PopularLists(_neighbours(item.get("popular")), _neighbours(item.get("trending")))

    def category_popular(self, version: str, category: str) -> Neighbours:
        item = self._get(f"MODEL#{version}", f"CATEGORY#{category}") or {}
        return _neighbours(item.get("popular"))

    def item_lists(self, version: str, items: Sequence[str]) -> dict[str, ItemLists]:
        """The neighbour and bought-together lists of `items` (at most 100) in one BatchGetItem."""
        found = self._batch_get([(f"ITEM#{item}", f"NEIGHBOURS#{version}") for item in items])
        return {
            raw["pk"][5:]: ItemLists(_neighbours(raw.get("neighbours")), _neighbours(raw.get("together")))
            for raw in found
        }

    def write_model_lists(
        self,
        version: str,
        *,
        neighbours: Mapping[str, Neighbours],
        together: Mapping[str, Neighbours],
        popular: Neighbours,
        trending: Neighbours,
        by_category: Mapping[str, Neighbours],
        expires_at: int,
    ) -> int:
        """Every list of a version, 25 items per BatchWriteItem call; returns how many items."""
        expiry = _n(expires_at)
        requests: list[dict[str, Any]] = [
            {
                "PutRequest": {
                    "Item": {
                        "pk": _s(f"MODEL#{version}"),
                        "sk": _s("POPULAR"),
                        "popular": _s(_pairs(popular)),
                        "trending": _s(_pairs(trending)),
                    }
                }
            }
        ]
        for category, ranked in by_category.items():
            item = {"pk": _s(f"MODEL#{version}"), "sk": _s(f"CATEGORY#{category}"), "popular": _s(_pairs(ranked))}
            requests.append({"PutRequest": {"Item": {**item, "expires_at": expiry}}})
        for item_id in sorted(set(neighbours) | set(together)):
            item = {
                "pk": _s(f"ITEM#{item_id}"),
                "sk": _s(f"NEIGHBOURS#{version}"),
                "neighbours": _s(_pairs(neighbours.get(item_id, []))),
                "together": _s(_pairs(together.get(item_id, []))),
                "expires_at": expiry,
            }
            requests.append({"PutRequest": {"Item": item}})
        self._batch_write(requests)
        return len(requests)

    def write_for_you(self, version: str, lists: Mapping[str, Sequence[str]], *, expires_at: int) -> int:
        requests = [
            {
                "PutRequest": {
                    "Item": {
                        "pk": _s(customer_pk(customer_id)),
                        "sk": _s("FORYOU"),
                        "items": _s(json.dumps(list(ranked), separators=(",", ":"))),
                        "model_version": _s(version),
                        "expires_at": _n(expires_at),
                    }
                }
            }
            for customer_id, ranked in lists.items()
            if ranked
        ]
        self._batch_write(requests)
        return len(requests)

    # -- item catalogue -------------------------------------------------------------------------------------------
    def put_items(self, items: Sequence[CatalogueItem]) -> None:
        self._batch_write(
            [
                {
                    "PutRequest": {
                        "Item": {
                            "pk": _s(f"ITEM#{item.item_id}"),
                            "sk": _s("DETAILS"),
                            "doc": _s(item.model_dump_json(exclude_none=True)),
                        }
                    }
                }
                for item in items
            ]
        )

    def items(self, item_ids: Iterable[str]) -> dict[str, CatalogueItem]:
        found = self._batch_get([(f"ITEM#{item}", "DETAILS") for item in dict.fromkeys(item_ids)])
        return {raw["pk"][5:]: CatalogueItem.model_validate_json(raw["doc"]) for raw in found}

    # -- offers ---------------------------------------------------------------------------------------------------
    def put_offer(self, offer: Offer) -> None:
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": _s("OFFERS"),
                "sk": _s(f"OFFER#{offer.offer_id}"),
                "doc": _s(offer.model_dump_json(exclude={"counters", "status"})),
                "status": _s(offer.status),
            },
            ConditionExpression="attribute_not_exists(pk)",
        )

    def offers(self) -> list[Offer]:
        """The catalogue with each offer's status; counters come from `offer_evidence`."""
        items = self._query("pk = :pk AND begins_with(sk, :p)", {":pk": _s("OFFERS"), ":p": _s("OFFER#")})
        return [_offer(item) for item in items]

    def offer(self, offer_id: str) -> Offer | None:
        item = self._get("OFFERS", f"OFFER#{offer_id}")
        return _offer(item) if item else None

    def set_offer_status(self, offer_id: str, status: str, *, expected: str, at: datetime) -> bool:
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": _s("OFFERS"), "sk": _s(f"OFFER#{offer_id}")},
                UpdateExpression="SET #status = :new, updated_at = :at",
                ConditionExpression="#status = :expected",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":new": _s(status), ":expected": _s(expected), ":at": _s(at.isoformat())},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def offer_evidence(self, offer_ids: Iterable[str]) -> dict[str, OfferEvidence]:
        found = self._batch_get([(f"OFFER#{offer_id}", "COUNTERS") for offer_id in dict.fromkeys(offer_ids)])
        return {raw["pk"][6:]: _evidence(raw) for raw in found}

    def save_decision(self, decision: OfferDecision, *, replacing: OfferDecision | None) -> bool:
        """Remember a decision unless another request decided first (False: read theirs)."""
        if replacing is None:
            condition, values = "attribute_not_exists(pk)", {}
        else:
            condition, values = "decided_at = :previous", {":previous": _s(replacing.decided_at.isoformat())}
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": _s(customer_pk(decision.customer_id)),
                    "sk": _s("DECISION"),
                    "doc": _s(decision.model_dump_json()),
                    "decided_at": _s(decision.decided_at.isoformat()),
                    "expires_at": _n(int(decision.expires_at.timestamp()) + 86_400),
                },
                ConditionExpression=condition,
                **({"ExpressionAttributeValues": values} if values else {}),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def decision(self, customer_id: str) -> OfferDecision | None:
        item = self._get(customer_pk(customer_id), "DECISION", consistent=True)
        return OfferDecision.model_validate_json(item["doc"]) if item else None

    def record_presentation(
        self,
        customer_id: str,
        offer_id: str,
        *,
        channel: str,
        decision: OfferDecision,
        buckets: Sequence[str],
    ) -> bool:
        """Count one presentation per (decision, channel, offer); False when it was already counted.

        The marker is a conditional put and the counters plain ADDs, not one transaction: a popular offer's
        counters item takes many presentations a second, which transactions on one item would turn into
        conflicts. A crash between the two loses one presentation from the statistics, never counts one twice.
        """
        marker = f"SHOWN#{decision.decided_at.isoformat()}#{channel}#{offer_id}"
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": _s(customer_pk(customer_id)),
                    "sk": _s(marker),
                    "expires_at": _n(int(decision.expires_at.timestamp()) + 86_400),
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        updates = [
            _add(self.table, customer_pk(customer_id), f"USAGE#{offer_id}", {"presented": 1}),
            _add(self.table, f"OFFER#{offer_id}", "COUNTERS", {"presented": 1, **{f"p:{b}": 1 for b in buckets}}),
        ]
        for update in updates:
            self.client.update_item(**update["Update"])
        return True

    def record_acceptance(
        self,
        customer_id: str,
        offer: Offer,
        *,
        acceptance_id: str,
        cost: float,
        buckets: Sequence[str],
        record: Mapping[str, Any],
    ) -> AcceptanceOutcome:
        """Count an acceptance once per `acceptance_id`, within the customer's cap and the offer's budget."""
        usage = _add(self.table, customer_pk(customer_id), f"USAGE#{offer.offer_id}", {"accepted": 1})
        if offer.cap is not None and offer.cap.max_acceptances is not None:
            condition = "(attribute_not_exists({accepted}) OR {accepted} < :cap)"
            _require(usage, condition, {":cap": _n(offer.cap.max_acceptances)})
        amounts = {"accepted": 1, "cost_spent": float(cost), **{f"a:{b}": 1 for b in buckets}}
        counters = _add(self.table, f"OFFER#{offer.offer_id}", "COUNTERS", amounts)
        budget = offer.budget
        if budget is not None and budget.max_acceptances is not None:
            condition = "(attribute_not_exists({accepted}) OR {accepted} < :max_accepted)"
            _require(counters, condition, {":max_accepted": _n(budget.max_acceptances)})
        if budget is not None and budget.max_total_cost is not None:
            room = budget.max_total_cost - (budget.unit_cost or 0.0) + 1e-9
            if room < 0:
                return "budget exhausted"
            condition = "(attribute_not_exists({cost_spent}) OR {cost_spent} <= :room)"
            _require(counters, condition, {":room": _n(room)})
        marker = {
            "Put": {
                "TableName": self.table,
                "Item": {
                    "pk": _s(customer_pk(customer_id)),
                    "sk": _s(f"ACCEPTED#{offer.offer_id}#{acceptance_id}"),
                    "doc": _s(json.dumps(record, default=str, separators=(",", ":"))),
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        failed = self._transact([marker, usage, counters])
        outcomes: dict[int | None, AcceptanceOutcome] = {
            None: "counted",
            0: "repeated",
            1: "cap reached",
            2: "budget exhausted",
        }
        return outcomes[failed]

    # -- templates ------------------------------------------------------------------------------------------------
    def put_template_version(
        self,
        template_id: str,
        version: int,
        *,
        name: str,
        channel: str,
        body: Mapping[str, Any],
        created_at: datetime,
        created_by: str,
    ) -> None:
        """Store version `version`; it must be the next one (a concurrent save of the same version loses)."""
        doc = zlib.compress(json.dumps(body, separators=(",", ":")).encode(), 9)
        if len(doc) > MAX_TEMPLATE_BYTES:
            raise InvalidInput(f"the template is too large to store: {len(doc)} bytes compressed, at most 350 000")
        latest: dict[str, Any] = {
            "Put": {
                "TableName": self.table,
                "Item": {
                    "pk": _s(f"TPL#{template_id}"),
                    "sk": _s("LATEST"),
                    "latest_version": _n(version),
                    "name": _s(name),
                    "channel": _s(channel),
                },
                "ConditionExpression": "attribute_not_exists(pk)" if version == 1 else "latest_version = :previous",
            }
        }
        if version > 1:
            latest["Put"]["ExpressionAttributeValues"] = {":previous": _n(version - 1)}
        stored = {
            "Put": {
                "TableName": self.table,
                "Item": {
                    "pk": _s(f"TPL#{template_id}"),
                    "sk": _s(f"V#{version:06d}"),
                    "doc": {"B": doc},
                    "name": _s(name),
                    "channel": _s(channel),
                    "created_at": _s(created_at.isoformat()),
                    "created_by": _s(created_by),
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        if self._transact([latest, stored]) is not None:
            raise Conflict(f"template {template_id} was saved concurrently; version {version} exists, retry")

    def latest_template_version(self, template_id: str) -> int | None:
        item = self._get(f"TPL#{template_id}", "LATEST", consistent=True)
        return int(item["latest_version"]) if item else None

    def template(self, template_id: str, version: int | None = None) -> StoredTemplate | None:
        latest = self.latest_template_version(template_id)
        if latest is None:
            return None
        item = self._get(f"TPL#{template_id}", f"V#{version or latest:06d}")
        if item is None:
            return None
        return StoredTemplate(
            template_id=template_id,
            version=version or latest,
            latest_version=latest,
            name=item["name"],
            channel=item["channel"],
            created_at=datetime.fromisoformat(item["created_at"]),
            created_by=item["created_by"],
            template=json.loads(zlib.decompress(bytes(item["doc"]))),
        )

    # -- plumbing -------------------------------------------------------------------------------------------------
    def _get(self, pk: str, sk: str, *, consistent: bool = False) -> dict[str, Any] | None:
        raw = self.client.get_item(
            TableName=self.table, Key={"pk": _s(pk), "sk": _s(sk)}, ConsistentRead=consistent
        ).get("Item")
        return _plain(raw) if raw else None

    def _query(self, condition: str, values: dict[str, Any], **kwargs: Any) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table, KeyConditionExpression=condition, ExpressionAttributeValues=values, **kwargs
        )
        for page in pages:
            for item in page.get("Items", []):
                yield _plain(item)

    def _batch_get(self, keys: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {
                self.table: {"Keys": [{"pk": _s(pk), "sk": _s(sk)} for pk, sk in keys[start : start + 100]]}
            }
            for attempt in range(8):
                response = self.client.batch_get_item(RequestItems=request)
                found.extend(_plain(item) for item in response.get("Responses", {}).get(self.table, []))
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(0.02 * 2**attempt)
            if request:
                raise RuntimeError("DynamoDB kept keys unprocessed; retry the request")
        return found

    def _batch_write(self, requests: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(requests), 25):
            pending: dict[str, Any] = {self.table: list(requests[start : start + 25])}
            for attempt in range(8):
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(0.02 * 2**attempt)
            if pending:
                raise RuntimeError("DynamoDB kept items unprocessed; the batch is retried")

    def _transact(self, actions: list[dict[str, Any]], attempts: int = 5) -> int | None:
        """Run the transaction; the index of the action whose condition failed, or None when it succeeded.

        A transaction cancelled by a concurrent one on the same items changed nothing and is run again.
        """
        for attempt in range(attempts):
            try:
                self.client.transact_write_items(TransactItems=actions)
                return None
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                codes = [reason.get("Code") for reason in error.response.get("CancellationReasons") or []]
                if "ConditionalCheckFailed" in codes:
                    return codes.index("ConditionalCheckFailed")
                if "TransactionConflict" not in codes or attempt == attempts - 1:
                    raise ServiceUnavailable("the change conflicted with concurrent ones; retry the request") from error
                time.sleep(0.02 * 2**attempt)
        return None


def _add(table: str, pk: str, sk: str, amounts: Mapping[str, float]) -> dict[str, Any]:
    """An Update that ADDs each amount to its attribute (names as placeholders: `a:<bucket>` is no plain name)."""
    names = {f"#n{n}": attribute for n, attribute in enumerate(amounts)}
    values = {f":v{n}": _n(amount) for n, amount in enumerate(amounts.values())}
    return {
        "Update": {
            "TableName": table,
            "Key": {"pk": _s(pk), "sk": _s(sk)},
            "UpdateExpression": "ADD " + ", ".join(f"#n{n} :v{n}" for n in range(len(amounts))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }


def _require(action: dict[str, Any], condition: str, values: Mapping[str, Any]) -> None:
    """Add a condition to an `_add` action; `{name}` in it stands for that attribute's placeholder."""
    update = action["Update"]
    placeholders = {attribute: name for name, attribute in update["ExpressionAttributeNames"].items()}
    text = condition.format_map(placeholders)
    current = update.get("ConditionExpression")
    update["ConditionExpression"] = f"{current} AND {text}" if current else text
    update["ExpressionAttributeValues"].update(values)


def _offer(item: Mapping[str, Any]) -> Offer:
    offer = Offer.model_validate_json(item["doc"])
    return offer.model_copy(update={"status": item.get("status", offer.status)})


def _evidence(item: Mapping[str, Any]) -> OfferEvidence:
    presented, accepted = int(item.get("presented", 0)), int(item.get("accepted", 0))
    buckets: dict[str, dict[str, int]] = {}
    for name, value in item.items():
        if name[:2] in ("p:", "a:"):
            counts = buckets.setdefault(name[2:], {"presented": 0, "accepted": 0})
            counts["presented" if name[0] == "p" else "accepted"] = int(value)
    return OfferEvidence(
        counters=OfferCounters(presented=presented, accepted=accepted, cost_spent=float(item.get("cost_spent", 0))),
        outcomes=OfferOutcomes(
            presented=presented,
            accepted=accepted,
            by_bucket={key: OutcomeCounts(**counts) for key, counts in buckets.items()},
        ),
    )
