"""The loyalty ledger in the engine's table: every change with its cause, its statement line and its event
in one transaction.

Key design (the engine's table; `order_store` has the orders' part):
- `MEMBER#<customer id>` / `ACCOUNT`: balance, consumed, qualifying points, tier, lots (JSON: expiry day ->
  points) and `version`. Earnings, reversals and expiries replace it conditional on the version they read;
  a redemption is an arithmetic update conditional on `balance >= points` (and bumps the version), so
  parallel redemptions serialize in DynamoDB and the balance never goes negative.
  `by_expiry_pk = EXPIRY#<shard 0..7>`, `by_expiry_sk = <earliest lot's expiry day>#<customer id>`
  (absent with no lots): the expiry job finds the accounts with something due without a scan.
  `merged_into` names the survivor once the customer store merged the customer: the account is then empty,
  the points live on the survivor's account, and every later change addressed to it lands there.
- `MEMBER#<customer id>` / `CAUSE#<cause>`: one per cause (`order:<id>`, `return:<id>`, `cancel:<id>`,
  `redemption:<key>`), put with `attribute_not_exists`: a redelivered event or a retried request finds
  its cause taken and changes nothing. The order's cause keeps the points per line, for reversals.
  A cause stays under the customer its event names, also when it changed a survivor's account (`loyalty_merge`).
- `MEMBER#<customer id>` / `ENTRY#<ISO time>#<entry id>`: the statement, oldest first.
- `MEMBER#<customer id>` / `OUTBOX`: the events of the account's last transaction (ADR 11).
- `MEMBER#<customer id>` / `BIRTHDAY`: the customer's birthday (month-day) as the customer store's profile
  events last said it, with that profile's version; `BIRTHDAY#<MM-DD>` / `<customer id>`: the index the
  birthday job reads, one partition per day of the year (written together, moved when the birthday changes).
- `LOYALTY` / `RULES`: the programme's rules.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from ecrm.core.events import DomainEvent
from ecrm.core.outbox import Outbox
from ecrm.transactions.ledger import Account
from ecrm.transactions.loyalty_birthday_index import BIRTHDAY_SK, BirthdayIndex, birthday_key
from ecrm.transactions.models import LoyaltyRules, StatementLine

ACCOUNT_SK = "ACCOUNT"
RULES_KEY = {"pk": {"S": "LOYALTY"}, "sk": {"S": "RULES"}}
EXPIRY_INDEX = "by_expiry"
EXPIRY_SHARDS = 8


def member_pk(customer_id: str) -> str:
    return f"MEMBER#{customer_id}"


def expiry_shard(customer_id: str) -> int:
    return hashlib.sha256(customer_id.encode()).digest()[0] % EXPIRY_SHARDS


@dataclass
class LedgerWrite:
    """One transaction on an account: its new state and what it leaves behind."""

    account: Account
    expected_version: int
    entries: list[StatementLine] = field(default_factory=list)
    new_causes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # cause -> (record, version it was read at)
    updated_causes: dict[str, tuple[dict[str, Any], int]] = field(default_factory=dict)
    events: list[DomainEvent] = field(default_factory=list)
    causes_of: str | None = None  # whose partition holds the causes: the account's own unless it is a survivor's


class StaleAccount(Exception):
    """The account or a cause changed since it was read: read again and retry."""


class CauseTaken(Exception):
    """A new cause of the write is already recorded: this change was made before."""


class InsufficientBalance(Exception):
    pass


class LoyaltyStore(BirthdayIndex):
    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name
        self.outbox = Outbox(table_name)

    # -- rules -----------------------------------------------------------------------------------------------
    def rules(self) -> LoyaltyRules | None:
        item = self.client.get_item(TableName=self.table, Key=RULES_KEY, ConsistentRead=True).get("Item")
        return LoyaltyRules.model_validate_json(item["rules"]["S"]) if item else None

    def save_rules(self, rules: LoyaltyRules) -> None:
        condition = "attribute_not_exists(pk)" if rules.version == 1 else "#version = :previous"
        values = {} if rules.version == 1 else {":previous": {"N": str(rules.version - 1)}}
        try:
            self.client.put_item(
                TableName=self.table,
                Item={**RULES_KEY, "rules": {"S": rules.model_dump_json()}, "version": {"N": str(rules.version)}},
                ConditionExpression=condition,
                **(
                    {"ExpressionAttributeValues": values, "ExpressionAttributeNames": {"#version": "version"}}
                    if values
                    else {}
                ),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise StaleAccount("rules") from exc
            raise

    # -- reads -----------------------------------------------------------------------------------------------
    def account(self, customer_id: str) -> Account | None:
        item = self.client.get_item(
            TableName=self.table,
            Key={"pk": {"S": member_pk(customer_id)}, "sk": {"S": ACCOUNT_SK}},
            ConsistentRead=True,
        ).get("Item")
        if not item:
            return None
        return Account(
            customer_id=customer_id,
            balance=int(item["balance"]["N"]),
            consumed=int(item["consumed"]["N"]),
            qualifying=int(item["qualifying"]["N"]),
            tier=item["tier"]["S"],
            lots=json.loads(item["lots"]["S"]),
            version=int(item["version"]["N"]),
            erased=bool(item.get("erased", {}).get("BOOL", False)),
            merged_into=item.get("merged_into", {}).get("S"),
        )

    def cause(self, customer_id: str, cause: str) -> tuple[dict[str, Any], int] | None:
        item = self.client.get_item(
            TableName=self.table,
            Key={"pk": {"S": member_pk(customer_id)}, "sk": {"S": f"CAUSE#{cause}"}},
            ConsistentRead=True,
        ).get("Item")
        return (json.loads(item["record"]["S"]), int(item["version"]["N"])) if item else None

    def statement(self, customer_id: str, limit: int) -> list[StatementLine]:
        """The latest `limit` lines, oldest first."""
        response = self.client.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :entry)",
            ExpressionAttributeValues={":pk": {"S": member_pk(customer_id)}, ":entry": {"S": "ENTRY#"}},
            ScanIndexForward=False,
            Limit=limit,
        )
        lines = [StatementLine.model_validate_json(item["line"]["S"]) for item in response.get("Items", [])]
        return list(reversed(lines))

    def accounts_due(self, today: date) -> list[str]:
        """Customers whose earliest lot expires by `today`."""
        before = (today + timedelta(days=1)).isoformat()  # the days sort as text, before any `<day>#...`
        due: list[str] = []
        for shard in range(EXPIRY_SHARDS):
            paginator = self.client.get_paginator("query")
            for page in paginator.paginate(
                TableName=self.table,
                IndexName=EXPIRY_INDEX,
                KeyConditionExpression="by_expiry_pk = :shard AND by_expiry_sk < :before",
                ExpressionAttributeValues={":shard": {"S": f"EXPIRY#{shard}"}, ":before": {"S": before}},
            ):
                due += [item["by_expiry_sk"]["S"].split("#", 1)[1] for item in page.get("Items", [])]
        return due

    # -- writes ----------------------------------------------------------------------------------------------
    def write(self, change: LedgerWrite, *, correlation_id: str | None, now: datetime) -> None:
        """The account, its causes, statement lines and events together, or `StaleAccount` / `CauseTaken`."""
        actions = self._actions(change, correlation_id=correlation_id, now=now)
        new_cause_slots = range(1, 1 + len(change.new_causes))
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            failed = _failed_conditions(exc)
            if failed is None:
                raise
            if any(slot in failed for slot in new_cause_slots):
                raise CauseTaken(change.account.customer_id) from exc
            raise StaleAccount(change.account.customer_id) from exc

    def merge(
        self, survivor: LedgerWrite | None, merged: LedgerWrite, *, correlation_id: str | None, now: datetime
    ) -> None:
        """Both accounts of a merge in one transaction, each on the version it was read at (no survivor's write:
        the merged customer had nothing to move): the points leave one and arrive on the other together or not
        at all, and the merged customer's birthday leaves the birthday index (the survivor's is the one that
        counts now). `StaleAccount` when either account changed meanwhile."""
        actions = self._actions(survivor, correlation_id=correlation_id, now=now) if survivor else []
        actions += self._actions(merged, correlation_id=correlation_id, now=now)
        actions += self.birthday_removal(merged.account.customer_id)
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if _failed_conditions(exc) is None:
                raise
            raise StaleAccount(merged.account.customer_id) from exc

    def _actions(self, change: LedgerWrite, *, correlation_id: str | None, now: datetime) -> list[dict[str, Any]]:
        """The account put on its version (first), its new causes (next, in order), updated causes, lines, outbox."""
        account = change.account
        pk = member_pk(account.customer_id)
        causes_pk = member_pk(change.causes_of or account.customer_id)
        account_put: dict[str, Any] = {"TableName": self.table, "Item": self._account_item(account)}
        if change.expected_version == 0:
            account_put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            account_put["ConditionExpression"] = "#version = :expected"
            account_put["ExpressionAttributeNames"] = {"#version": "version"}
            account_put["ExpressionAttributeValues"] = {":expected": {"N": str(change.expected_version)}}
        actions: list[dict[str, Any]] = [{"Put": account_put}]
        for cause, record in change.new_causes.items():
            actions.append({"Put": self._cause_put(causes_pk, cause, record, 1, "attribute_not_exists(pk)", None)})
        for cause, (record, version) in change.updated_causes.items():
            actions.append({"Put": self._cause_put(causes_pk, cause, record, version + 1, "#version = :v", version)})
        actions += [{"Put": self._entry_item(pk, line)} for line in change.entries]
        if change.events:
            actions.append(self.outbox.put(pk, change.events, correlation_id=correlation_id, now=now))
        return actions

    def redeem(
        self,
        customer_id: str,
        *,
        points: int,
        line: StatementLine,
        cause: str,
        record: dict[str, Any],
        event: DomainEvent,
        correlation_id: str | None,
        now: datetime,
        causes_of: str | None = None,
    ) -> None:
        """Take `points` off the balance if it holds them, with the redemption's cause, line and event."""
        pk = member_pk(customer_id)
        causes_pk = member_pk(causes_of or customer_id)
        actions: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": {"pk": {"S": pk}, "sk": {"S": ACCOUNT_SK}},
                    "UpdateExpression": "SET #balance = #balance - :p, #consumed = #consumed + :p ADD #version :one",
                    "ConditionExpression": "attribute_exists(pk) AND #balance >= :p",
                    "ExpressionAttributeNames": {"#balance": "balance", "#consumed": "consumed", "#version": "version"},
                    "ExpressionAttributeValues": {":p": {"N": str(points)}, ":one": {"N": "1"}},
                }
            },
            {"Put": self._cause_put(causes_pk, cause, record, 1, "attribute_not_exists(pk)", None)},
            {"Put": self._entry_item(pk, line)},
            self.outbox.put(pk, [event], correlation_id=correlation_id, now=now),
        ]
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            failed = _failed_conditions(exc)
            if failed is None:
                raise
            if 1 in failed:
                raise CauseTaken(customer_id) from exc
            if 0 in failed:
                raise InsufficientBalance(customer_id) from exc
            raise StaleAccount(customer_id) from exc

    def erase_member(self, customer_id: str) -> int:
        """Delete the member's partition (account, causes, statement, outbox) and leave an erased account.

        The erased account (balance 0, no lots, `erased`) is what a late order event finds: it changes
        nothing, so no history grows back. Returns the items deleted.
        """
        pk = member_pk(customer_id)
        birthday = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": BIRTHDAY_SK}}, ConsistentRead=True
        ).get("Item")
        if birthday and "day" in birthday:
            self.client.delete_item(TableName=self.table, Key=birthday_key(birthday["day"]["S"], customer_id))
        keys = [
            {"pk": item["pk"], "sk": item["sk"]}
            for page in self.client.get_paginator("query").paginate(
                TableName=self.table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": pk}},
                ProjectionExpression="pk, sk",
            )
            for item in page.get("Items", [])
            if item["sk"]["S"] != ACCOUNT_SK
        ]
        for start in range(0, len(keys), 25):
            requests = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
            pending: dict[str, Any] = {self.table: requests}
            while pending:
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        tombstone = Account(customer_id, tier="", erased=True, version=1)
        self.client.put_item(TableName=self.table, Item=self._account_item(tombstone))
        return len(keys)

    def _account_item(self, account: Account) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": {"S": member_pk(account.customer_id)},
            "sk": {"S": ACCOUNT_SK},
            "balance": {"N": str(account.balance)},
            "consumed": {"N": str(account.consumed)},
            "qualifying": {"N": str(account.qualifying)},
            "tier": {"S": account.tier},
            "lots": {"S": json.dumps(account.lots, sort_keys=True)},
            "version": {"N": str(account.version)},
        }
        if account.erased:
            item["erased"] = {"BOOL": True}
        if account.merged_into:
            item["merged_into"] = {"S": account.merged_into}
        if account.earliest_expiry:
            item["by_expiry_pk"] = {"S": f"EXPIRY#{expiry_shard(account.customer_id)}"}
            item["by_expiry_sk"] = {"S": f"{account.earliest_expiry}#{account.customer_id}"}
        return item

    def _cause_put(
        self, pk: str, cause: str, record: dict[str, Any], version: int, condition: str, expected: int | None
    ) -> dict[str, Any]:
        put: dict[str, Any] = {
            "TableName": self.table,
            "Item": {
                "pk": {"S": pk},
                "sk": {"S": f"CAUSE#{cause}"},
                "record": {"S": json.dumps(record, sort_keys=True, default=str)},
                "version": {"N": str(version)},
            },
            "ConditionExpression": condition,
        }
        if expected is not None:
            put["ExpressionAttributeNames"] = {"#version": "version"}
            put["ExpressionAttributeValues"] = {":v": {"N": str(expected)}}
        return put

    def _entry_item(self, pk: str, line: StatementLine) -> dict[str, Any]:
        return {
            "TableName": self.table,
            "Item": {
                "pk": {"S": pk},
                "sk": {"S": f"ENTRY#{line.at.isoformat()}#{line.entry_id}"},
                "line": {"S": line.model_dump_json()},
            },
        }


def _failed_conditions(exc: ClientError) -> set[int] | None:
    """The indexes of the actions whose condition failed, or None when something else cancelled it.

    A transaction conflict (another transaction on the same items) is reported as no failed condition:
    the caller retries it like a stale read.
    """
    if exc.response["Error"]["Code"] != "TransactionCanceledException":
        return None
    reasons = exc.response.get("CancellationReasons") or []
    codes = [reason.get("Code") for reason in reasons]
    if "TransactionConflict" in codes:
        return set()
    failed = {index for index, code in enumerate(codes) if code == "ConditionalCheckFailed"}
    return failed or None
