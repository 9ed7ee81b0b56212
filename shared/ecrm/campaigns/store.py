"""Campaigns and journeys in the engine's table; each change written with its event through the outbox (ADR 11).

Key design (table `pk`/`sk`, TTL `expires_at`, GSI `by_kind`):
- `CAMPAIGN#<id>` / `CAMPAIGN`: the campaign as JSON plus its `version`; every change is conditional on the
  version it read. `by_kind_pk = CAMPAIGN`, `by_kind_sk = <created_at ISO>#<id>`: the list, newest first.
- `CAMPAIGN#<id>` / `OUTBOX`: the events of the campaign's last transaction (`ecrm.core.outbox`).
- `CAMPAIGN#<id>` / `RUN#<run>#CHUNK#<n>`: a chunk of a run handed to broadcast. Written in one transaction
  with the ADDs to the arm counters, on the condition that it does not exist: a re-run or a resumed run
  counts each chunk once, and a chunk marked done is not handed over again.
- `CAMPAIGN#<id>` / `ARM#<arm>`: counters of the arm (targeted, requested; broadcast's events add the rest).
- `CAMPAIGN#<id>` / `SEEN#<count id>`: a window of broadcast's counts counted (TTL `expires_at`), written with
  the arms' increments on the condition that it does not exist: each window counts once (`SEEN#<message id>#<counter>`
  markers of single message events, from before broadcast counted its events, expire).
- `CAMPAIGN#<id>` / `ORDER#<order id>` and `CONVERTED#<customer>`: an attributed order (its revenue added
  once) and a converted recipient (counted once), each written with its increment.
- `SEGMENT#<id>` / `AUDIENCE`: the segment's last audience build as the analysis engine announced it
  (`AudienceBuilt`): `manifest` (s3:// location), `count`, `built_at`; replaced only by a later build.
- `JOURNEY#<id>` / `JOURNEY`: the journey as JSON plus `version`; `by_kind_pk = JOURNEY`.
- `JOURNEY#<id>` / `STATS`: entered, active, exits per reason and customers per step (counters).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

from ecrm.campaigns.models import Campaign, Journey
from ecrm.core.counted_once import MAX_ITEMS_PER_TRANSACTION, count_once
from ecrm.core.events import DomainEvent
from ecrm.core.outbox import Outbox

CAMPAIGN_SK = "CAMPAIGN"
JOURNEY_SK = "JOURNEY"
KIND_INDEX = "by_kind"
COUNTERS = (
    "targeted",
    "requested",
    "sent",
    "delivered",
    "bounced",
    "complained",
    "opened",
    "clicked",
    "converted",
    "suppressed",
    "deferred",
    "failed",
    "revenue_minor",
)
OUTCOME_RETENTION_DAYS = 90


def campaign_pk(campaign_id: str) -> str:
    return f"CAMPAIGN#{campaign_id}"


def journey_pk(journey_id: str) -> str:
    return f"JOURNEY#{journey_id}"


class StaleRecord(Exception):
    """The campaign or journey changed since it was read (or, for a new one, already exists)."""


class CampaignStore:
    def __init__(self, client: Any, table_name: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.table = table_name
        self.outbox = Outbox(table_name)
        self.sleep = sleep  # between attempts of a transaction another consumer's cancelled

    # -- campaigns -------------------------------------------------------------------------------------------
    def campaign(self, campaign_id: str) -> Campaign | None:
        item = self._get(campaign_pk(campaign_id), CAMPAIGN_SK)
        return Campaign.model_validate_json(item["doc"]["S"]) if item else None

    def campaigns(self, limit: int, after: str | None = None) -> tuple[list[Campaign], str | None]:
        items, last = self._kind("CAMPAIGN", limit, after)
        return [Campaign.model_validate_json(i["doc"]["S"]) for i in items], last

    def save_campaign(
        self,
        campaign: Campaign,
        *,
        expected_version: int | None,
        events: list[DomainEvent],
        correlation_id: str | None,
        now: datetime,
    ) -> None:
        """Create (`expected_version=None`) or replace the campaign with its events; `StaleRecord` if it moved."""
        item = self._doc_item(
            campaign_pk(campaign.campaign_id), CAMPAIGN_SK, "CAMPAIGN", campaign, campaign.campaign_id
        )
        self._save(item, expected_version, events, correlation_id, now)

    def arm_counts(self, campaign_id: str) -> dict[str, dict[str, int]]:
        response = self.client.query(
            TableName=self.table,
            KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
            ExpressionAttributeValues={":p": {"S": campaign_pk(campaign_id)}, ":s": {"S": "ARM#"}},
            ConsistentRead=True,
        )
        return {
            item["sk"]["S"].removeprefix("ARM#"): {c: int(item[c]["N"]) for c in COUNTERS if c in item}
            for item in response.get("Items", [])
        }

    def chunk_done(self, campaign_id: str, run: int, chunk: int) -> bool:
        return self._get(campaign_pk(campaign_id), _chunk_sk(run, chunk)) is not None

    def record_chunk(
        self, campaign_id: str, run: int, chunk: int, counts: dict[str, dict[str, int]], now: datetime
    ) -> bool:
        """Mark the chunk done and add its counts, once; False when it was already recorded."""
        pk = campaign_pk(campaign_id)
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": {"pk": {"S": pk}, "sk": {"S": _chunk_sk(run, chunk)}, "at": {"S": now.isoformat()}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        ]
        for arm, values in counts.items():
            names = {f"#c{i}": name for i, name in enumerate(values)}
            actions.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": {"pk": {"S": pk}, "sk": {"S": f"ARM#{arm}"}},
                        "UpdateExpression": "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(values))),
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": {f":c{i}": {"N": str(v)} for i, v in enumerate(values.values())},
                    }
                }
            )
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def record_recipients(self, campaign_id: str, run: int, arms: dict[str, str]) -> None:
        """Each recipient's arm as the chunk hands them over (the holdout's too, an auto-winner's rest on the winner):
        a conversion is attributed by it, whatever the audience was made of. Writing it again is harmless."""
        pk = campaign_pk(campaign_id)
        puts = [
            {
                "PutRequest": {
                    "Item": {"pk": {"S": pk}, "sk": {"S": f"RCPT#{c}"}, "arm": {"S": a}, "run": {"N": str(run)}}
                }
            }
            for c, a in arms.items()
        ]
        self._batch_write(puts, f"the recipients of {campaign_id} were not all written: the chunk is retried")

    def forget_recipients(self, campaign_id: str, customer_ids: list[str]) -> None:
        """An erasure's part in a campaign: the customers' arms and conversion markers go; the arms' counters,
        which name nobody, stay as they were counted."""
        pk = campaign_pk(campaign_id)
        deletes = [
            {"DeleteRequest": {"Key": {"pk": {"S": pk}, "sk": {"S": f"{kind}#{c}"}}}}
            for c in customer_ids
            for kind in ("RCPT", "CONVERTED")
        ]
        self._batch_write(deletes, f"the erased recipients of {campaign_id} were not all deleted: retried")

    def _batch_write(self, requests: list[dict[str, Any]], failure: str) -> None:
        for start in range(0, len(requests), 25):
            pending: dict[str, Any] = {self.table: requests[start : start + 25]}
            for _ in range(8):
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
            else:
                raise RuntimeError(failure)

    def recipient_arm(self, campaign_id: str, customer_id: str) -> str | None:
        item = self._get(campaign_pk(campaign_id), f"RCPT#{customer_id}")
        return str(item["arm"]["S"]) if item else None

    def record_counts(
        self, count_id: str, campaign_id: str, arms: Mapping[str, Mapping[str, int]], now: datetime
    ) -> bool:
        """Add a window's counts to the campaign's arms, once (one transaction: the window's marker,
        `SEEN#<count id>`, and an ADD per arm); False when they were counted before."""
        expires = int(now.timestamp()) + OUTCOME_RETENTION_DAYS * 86400
        marker = {
            "Put": {
                "TableName": self.table,
                "Item": {
                    "pk": {"S": campaign_pk(campaign_id)},
                    "sk": {"S": f"SEEN#{count_id}"},
                    "expires_at": {"N": str(expires)},
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        adds = [self._add_to_arm(campaign_id, arm, dict(counts)) for arm, counts in sorted(arms.items()) if counts]
        if len(adds) >= MAX_ITEMS_PER_TRANSACTION:
            raise ValueError(f"{len(adds)} arms are over one transaction's {MAX_ITEMS_PER_TRANSACTION - 1}")
        counted = count_once(
            self.client,
            [count_id],
            marker=lambda _: marker,
            increments=lambda chunk: adds if chunk else [],
            sleep=self.sleep,
        )
        return bool(counted)

    def _add_to_arm(self, campaign_id: str, arm: str, counts: dict[str, int]) -> dict[str, Any]:
        names = {f"#c{i}": counter for i, counter in enumerate(counts)}
        values = {f":n{i}": {"N": str(n)} for i, n in enumerate(counts.values())}
        return {
            "Update": {
                "TableName": self.table,
                "Key": {"pk": {"S": campaign_pk(campaign_id)}, "sk": {"S": f"ARM#{arm}"}},
                "UpdateExpression": "ADD " + ", ".join(f"#c{i} :n{i}" for i in range(len(counts))),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    def record_conversion(
        self, campaign_id: str, arm: str, customer_id: str, order_id: str, total_minor: int
    ) -> Literal["converted", "revenue"] | None:
        """Add the order's revenue to the arm, and count the customer converted on their first order; each
        once, in one transaction. `converted` for the customer's first order, `revenue` for a later one, None
        when the order was counted before."""
        pk = campaign_pk(campaign_id)
        for _ in range(3):  # a concurrent first order of the same customer makes the second read again
            first = self._get(pk, f"CONVERTED#{customer_id}") is None
            actions: list[dict[str, Any]] = [
                self._marker(pk, f"ORDER#{order_id}"),
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": {"pk": {"S": pk}, "sk": {"S": f"ARM#{arm}"}},
                        "UpdateExpression": "ADD revenue_minor :r" + (", converted :one" if first else ""),
                        "ExpressionAttributeValues": {
                            ":r": {"N": str(total_minor)},
                            **({":one": {"N": "1"}} if first else {}),
                        },
                    }
                },
            ]
            if first:
                actions.append(self._marker(pk, f"CONVERTED#{customer_id}"))
            try:
                self.client.transact_write_items(TransactItems=actions)
                return "converted" if first else "revenue"
            except ClientError as exc:
                if not condition_failed(exc):
                    raise
                if self._get(pk, f"ORDER#{order_id}") is not None:
                    return None  # this order was counted before
        raise RuntimeError(f"the conversion of {customer_id} on {campaign_id} kept conflicting")

    def _marker(self, pk: str, sk: str) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table,
                "Item": {"pk": {"S": pk}, "sk": {"S": sk}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    # -- segment audiences ------------------------------------------------------------------------------------
    def record_audience(self, segment_id: str, audience_id: str, manifest: str, count: int, built_at: datetime) -> bool:
        """Keep the segment's latest build; False when a later one is kept already (a late or repeated event)."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": f"SEGMENT#{segment_id}"},
                    "sk": {"S": "AUDIENCE"},
                    "audience_id": {"S": audience_id},
                    "manifest": {"S": manifest},
                    "count": {"N": str(count)},
                    "built_at": {"S": built_at.isoformat()},
                },
                ConditionExpression="attribute_not_exists(pk) OR built_at < :at",
                ExpressionAttributeValues={":at": {"S": built_at.isoformat()}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def segment_manifest(self, segment_id: str) -> str | None:
        item = self._get(f"SEGMENT#{segment_id}", "AUDIENCE")
        return str(item["manifest"]["S"]) if item else None

    # -- journeys --------------------------------------------------------------------------------------------
    def journey(self, journey_id: str) -> Journey | None:
        item = self._get(journey_pk(journey_id), JOURNEY_SK)
        return Journey.model_validate_json(item["doc"]["S"]) if item else None

    def journeys(self, limit: int, after: str | None = None) -> tuple[list[Journey], str | None]:
        items, last = self._kind("JOURNEY", limit, after)
        return [Journey.model_validate_json(i["doc"]["S"]) for i in items], last

    def save_journey(
        self,
        journey: Journey,
        *,
        expected_version: int | None,
        events: list[DomainEvent],
        correlation_id: str | None,
        now: datetime,
    ) -> None:
        item = self._doc_item(journey_pk(journey.journey_id), JOURNEY_SK, "JOURNEY", journey, journey.journey_id)
        self._save(item, expected_version, events, correlation_id, now)

    def journey_stats(self, journey_id: str) -> dict[str, int]:
        item = self._get(journey_pk(journey_id), "STATS") or {}
        return {name: int(value["N"]) for name, value in item.items() if "N" in value}

    # -- plumbing --------------------------------------------------------------------------------------------
    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
        ).get("Item")
        return item

    def _kind(self, kind: str, limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        query: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": KIND_INDEX,
            "KeyConditionExpression": "by_kind_pk = :k",
            "ExpressionAttributeValues": {":k": {"S": kind}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if after:
            query["KeyConditionExpression"] += " AND by_kind_sk < :after"
            query["ExpressionAttributeValues"][":after"] = {"S": after}
        response = self.client.query(**query)
        items = response.get("Items", [])
        last = items[-1]["by_kind_sk"]["S"] if items and "LastEvaluatedKey" in response else None
        return items, last

    def _doc_item(self, pk: str, sk: str, kind: str, doc: Campaign | Journey, doc_id: str) -> dict[str, Any]:
        return {
            "pk": {"S": pk},
            "sk": {"S": sk},
            "doc": {"S": doc.model_dump_json()},
            "status": {"S": doc.status},
            "version": {"N": str(doc.version)},
            "by_kind_pk": {"S": kind},
            "by_kind_sk": {"S": f"{doc.created_at.isoformat()}#{doc_id}"},
        }

    def _save(
        self,
        item: dict[str, Any],
        expected_version: int | None,
        events: list[DomainEvent],
        correlation_id: str | None,
        now: datetime,
    ) -> None:
        put: dict[str, Any] = {"TableName": self.table, "Item": item}
        if expected_version is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "#version = :expected"
            put["ExpressionAttributeNames"] = {"#version": "version"}
            put["ExpressionAttributeValues"] = {":expected": {"N": str(expected_version)}}
        actions: list[dict[str, Any]] = [{"Put": put}]
        if events:
            actions.append(self.outbox.put(item["pk"]["S"], events, correlation_id=correlation_id, now=now))
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if condition_failed(exc):
                raise StaleRecord(item["pk"]["S"]) from exc
            raise


def _chunk_sk(run: int, chunk: int) -> str:
    return f"RUN#{run:06d}#CHUNK#{chunk:06d}"


def condition_failed(exc: ClientError) -> bool:
    """A transaction cancelled by a failed condition (not by a conflict or a throttle)."""
    if exc.response["Error"]["Code"] != "TransactionCanceledException":
        return False
    codes = [reason.get("Code") for reason in exc.response.get("CancellationReasons") or []]
    return "ConditionalCheckFailed" in codes
