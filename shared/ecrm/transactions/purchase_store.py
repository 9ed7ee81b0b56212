"""Brokered purchases in the engine's table, the vendors they go to, and the saga's Step Functions calls.

Key design (the transactions table, `pk`/`sk`, TTL `expires_at`):
- `PURCHASE#<purchase id>` / `PURCHASE`: the purchase as JSON, its `version` and `status`, and while it
  awaits the vendor's answer the saga's `task_token` (kept beside the model: never shown to anyone). Every
  change is conditional on the version read.
- `PURCHASE#<purchase id>` / `OUTBOX`: the events of its last transaction (`ecrm.core.outbox`).
- `PKEY#<sha-256 of customer and Idempotency-Key>` / `PURCHASE_KEY`: the purchase a key created and the
  fingerprint of its body, written in the purchase's own transaction; kept `KEY_RETENTION`.
- `VENDOR#<vendor id>` / `VENDOR`: where the vendor is reached and the secret both sides sign with
  (encrypted at rest with the table's key; never returned by the API).
- `PAYDOUBLE#<purchase id>` / `CHARGE`: the payment double's charges (a real provider keeps its own).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from ecrm.core.events import DomainEvent
from ecrm.core.outbox import Outbox
from ecrm.transactions.models import Purchase, Vendor
from ecrm.transactions.payments import RecordedCharge
from ecrm.transactions.vendors import VendorEndpoint, key_id

PURCHASE_SK = "PURCHASE"
KEY_SK = "PURCHASE_KEY"
VENDOR_SK = "VENDOR"
CHARGE_SK = "CHARGE"
KEY_RETENTION = timedelta(days=30)


def purchase_pk(purchase_id: str) -> str:
    return f"PURCHASE#{purchase_id}"


def key_pk(customer_id: str, key: str) -> str:
    return "PKEY#" + hashlib.sha256(f"{customer_id}\n{key}".encode()).hexdigest()


@dataclass(frozen=True)
class StoredPurchase:
    purchase: Purchase
    task_token: str | None = None


@dataclass(frozen=True)
class KeyRecord:
    purchase_id: str
    fingerprint: str


class KeyAlreadyUsed(Exception):
    """The Idempotency-Key was taken by another transaction (a retry, or a concurrent twin)."""


class StalePurchase(Exception):
    """The purchase changed since it was read; the step re-reads (the saga retries it by this name)."""


class PurchaseStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name
        self.outbox = Outbox(table_name)

    # -- purchases -----------------------------------------------------------------------------------------
    def get(self, purchase_id: str) -> StoredPurchase | None:
        item = self._get(purchase_pk(purchase_id), PURCHASE_SK)
        if item is None:
            return None
        token = item.get("task_token", {}).get("S")
        return StoredPurchase(Purchase.model_validate_json(item["purchase"]["S"]), token)

    def key_record(self, pk: str) -> KeyRecord | None:
        item = self._get(pk, KEY_SK)
        return KeyRecord(item["purchase_id"]["S"], item["fingerprint"]["S"]) if item else None

    def create(self, purchase: Purchase, *, key: str, fingerprint: str, now: datetime) -> None:
        """The new purchase and its key together; `KeyAlreadyUsed` if the key is taken."""
        key_item = {
            "pk": {"S": key},
            "sk": {"S": KEY_SK},
            "purchase_id": {"S": purchase.purchase_id},
            "fingerprint": {"S": fingerprint},
            "expires_at": {"N": str(int((now + KEY_RETENTION).timestamp()))},
        }
        new = "attribute_not_exists(pk)"
        actions = [
            {"Put": {"TableName": self.table, "Item": key_item, "ConditionExpression": new}},
            {"Put": {"TableName": self.table, "Item": self._item(purchase, None), "ConditionExpression": new}},
        ]
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            if _condition_failed(exc):
                raise KeyAlreadyUsed(key) from exc
            raise

    def save(
        self,
        purchase: Purchase,
        *,
        expected_version: int,
        task_token: str | None = None,
        event: DomainEvent | None = None,
        correlation_id: str | None = None,
        now: datetime,
    ) -> None:
        """Replace the purchase if it is still at `expected_version` (with its event); `StalePurchase` if not."""
        put = {
            "TableName": self.table,
            "Item": self._item(purchase, task_token),
            "ConditionExpression": "#version = :expected",
            "ExpressionAttributeNames": {"#version": "version"},
            "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
        }
        try:
            if event is None:
                self.client.put_item(**put)
            else:
                outbox = self.outbox.put(
                    purchase_pk(purchase.purchase_id), [event], correlation_id=correlation_id, now=now
                )
                self.client.transact_write_items(TransactItems=[{"Put": put}, outbox])
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code == "ConditionalCheckFailedException" or _condition_failed(exc):
                raise StalePurchase(purchase.purchase_id) from exc
            raise

    def _item(self, purchase: Purchase, task_token: str | None) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": {"S": purchase_pk(purchase.purchase_id)},
            "sk": {"S": PURCHASE_SK},
            "purchase": {"S": purchase.model_dump_json()},
            "status": {"S": purchase.status},
            "version": {"N": str(purchase.version)},
        }
        if task_token:
            item["task_token"] = {"S": task_token}
        return item

    # -- vendors -------------------------------------------------------------------------------------------
    def put_vendor(self, vendor_id: str, *, name: str, endpoint: str, secret: str, now: datetime) -> Vendor:
        vendor = Vendor(vendor_id=vendor_id, name=name, endpoint=endpoint, key_id=key_id(secret), updated_at=now)
        self.client.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": f"VENDOR#{vendor_id}"},
                "sk": {"S": VENDOR_SK},
                "vendor": {"S": vendor.model_dump_json()},
                "secret": {"S": secret},
            },
        )
        return vendor

    def vendor(self, vendor_id: str) -> tuple[Vendor, VendorEndpoint] | None:
        item = self._get(f"VENDOR#{vendor_id}", VENDOR_SK)
        if item is None:
            return None
        vendor = Vendor.model_validate_json(item["vendor"]["S"])
        return vendor, VendorEndpoint(vendor_id, vendor.endpoint, item["secret"]["S"])

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
        ).get("Item")
        return item


class TableChargeBook:
    """The payment double's charges in the engine's table, so every invocation sees the same ones."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name

    def find(self, key: str) -> RecordedCharge | None:
        item = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": f"PAYDOUBLE#{key}"}, "sk": {"S": CHARGE_SK}}, ConsistentRead=True
        ).get("Item")
        return RecordedCharge(**json.loads(item["charge"]["S"])) if item else None

    def record(self, charge: RecordedCharge) -> RecordedCharge:
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": f"PAYDOUBLE#{charge.key}"},
                    "sk": {"S": CHARGE_SK},
                    "charge": {"S": _charge_json(charge)},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
            return charge
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        known = self.find(charge.key)
        assert known is not None
        return known

    def mark_refunded(self, key: str) -> None:
        known = self.find(key)
        if known is not None and not known.refunded:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "pk": {"S": f"PAYDOUBLE#{key}"},
                    "sk": {"S": CHARGE_SK},
                    "charge": {"S": _charge_json(RecordedCharge(**{**known.__dict__, "refunded": True}))},
                },
            )


class TokenClosed(Exception):
    """The saga no longer waits on this token (it timed out, or was answered already)."""


class StepFunctionsSaga:
    """Starts a purchase's execution (named by the purchase, so a second start is the same execution) and
    resumes it by its task token."""

    CLOSED = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})

    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self.client = client
        self.state_machine_arn = state_machine_arn

    def start(self, purchase_id: str) -> None:
        try:
            self.client.start_execution(
                stateMachineArn=self.state_machine_arn,
                name=purchase_id,
                input=json.dumps({"purchase_id": purchase_id}),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise

    def succeed(self, token: str, output: dict[str, Any]) -> None:
        self._resume(lambda: self.client.send_task_success(taskToken=token, output=json.dumps(output)))

    def fail(self, token: str, error: str, cause: str) -> None:
        self._resume(lambda: self.client.send_task_failure(taskToken=token, error=error, cause=cause[:32000]))

    def _resume(self, call: Any) -> None:
        try:
            call()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in self.CLOSED:
                raise TokenClosed(exc.response["Error"]["Code"]) from exc
            raise


def _charge_json(charge: RecordedCharge) -> str:
    return json.dumps(charge.__dict__, sort_keys=True)


def _condition_failed(exc: ClientError) -> bool:
    if exc.response["Error"]["Code"] != "TransactionCanceledException":
        return False
    return "ConditionalCheckFailed" in [r.get("Code") for r in exc.response.get("CancellationReasons") or []]
