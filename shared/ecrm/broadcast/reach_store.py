"""The broadcast table's records about reaching customers: the in-app inbox, devices, webhook endpoints, the
deliverability counters and the link signing keys (keys in `ecrm.broadcast.store`'s docstring).

`BroadcastStore` inherits them: one table, one object the channel adapters' ports (`Inbox`, `EndpointDirectory`)
are handed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from ecrm.broadcast.keys import normalise_address
from ecrm.broadcast.models import Device, InboxItem

_SERIALIZE = TypeSerializer().serialize
_DESERIALIZE = TypeDeserializer().deserialize
INBOX_RETENTION = timedelta(days=90)
# SNS reports a refused push within its delivery retries (hours at most); two weeks leave a late report its message.
PROVIDER_RETENTION = timedelta(days=14)
DEFAULT_FAILURES_TO_DISABLE = 5


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _SERIALIZE(v) for k, v in values.items() if v is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _DESERIALIZE(v) for k, v in item.items()}


def key_of(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def customer_pk(customer_id: str) -> str:
    return f"CUST#{customer_id}"


def hour_of(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H")


class ReachStore:
    def __init__(self, client: Any, table_name: str, *, failures_to_disable: int = DEFAULT_FAILURES_TO_DISABLE) -> None:
        self.client = client
        self.table = table_name
        self.failures_to_disable = failures_to_disable

    # -- in-app inbox (the in_app adapter's port) ------------------------------------------------------
    def deliver(self, message: Any) -> str:
        """Keep an in-app message for its customer; the item id is the message id, so a retry writes the same."""
        content = message.content
        item = InboxItem(
            item_id=message.message_id,
            message_id=message.message_id,
            title=str(content.get("title", "")),
            body=str(content.get("body", "")),
            image_url=content.get("image_url"),
            cta_label=content.get("cta_label"),
            cta_url=content.get("cta_url"),
            created_at=_now_of(message),
        )
        try:
            self.client.put_item(
                TableName=self.table,
                Item=to_item(
                    {
                        "pk": customer_pk(message.customer_id),
                        "sk": f"INBOX#{message.message_id}",
                        "doc": item.model_dump_json(),
                        "expires_at": int((item.created_at + INBOX_RETENTION).timestamp()),
                    }
                ),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        return message.message_id

    def inbox(self, customer_id: str) -> list[InboxItem]:
        items = [InboxItem.model_validate_json(i["doc"]) for i in self._query(customer_pk(customer_id), "INBOX#")]
        return sorted(items, key=lambda i: i.created_at, reverse=True)

    def mark_read(self, customer_id: str, item_id: str, at: datetime) -> InboxItem | None:
        key = key_of(customer_pk(customer_id), f"INBOX#{item_id}")
        raw = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        if raw is None:
            return None
        item = InboxItem.model_validate_json(from_item(raw)["doc"])
        if item.read_at is None:
            item.read_at = at
            self.client.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="SET doc = :d",
                ExpressionAttributeValues={":d": {"S": item.model_dump_json()}},
            )
        return item

    # -- devices ----------------------------------------------------------------------------------------------
    def put_device(self, customer_id: str, device: Device) -> None:
        self.client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": to_item(
                            {
                                "pk": customer_pk(customer_id),
                                "sk": f"DEVICE#{device.device_id}",
                                "doc": device.model_dump_json(),
                            }
                        ),
                    }
                },
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": to_item(
                            {
                                "pk": f"PUSHEP#{device.endpoint_arn}",
                                "sk": "DEVICE",
                                "customer_id": customer_id,
                                "device_id": device.device_id,
                            }
                        ),
                    }
                },
            ]
        )

    def devices(self, customer_id: str) -> list[Device]:
        return [Device.model_validate_json(i["doc"]) for i in self._query(customer_pk(customer_id), "DEVICE#")]

    def delete_device(self, customer_id: str, device_id: str) -> Device | None:
        device = next((d for d in self.devices(customer_id) if d.device_id == device_id), None)
        if device is not None:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Delete": {
                            "TableName": self.table,
                            "Key": key_of(customer_pk(customer_id), f"DEVICE#{device_id}"),
                        }
                    },
                    {"Delete": {"TableName": self.table, "Key": key_of(f"PUSHEP#{device.endpoint_arn}", "DEVICE")}},
                ]
            )
        return device

    def retire_endpoint(self, endpoint_arn: str) -> bool:
        """A push endpoint the provider disabled: its device stops being reachable."""
        raw = self.client.get_item(TableName=self.table, Key=key_of(f"PUSHEP#{endpoint_arn}", "DEVICE")).get("Item")
        if raw is None:
            return False
        owner = from_item(raw)
        device = next((d for d in self.devices(owner["customer_id"]) if d.device_id == owner["device_id"]), None)
        if device is None or not device.enabled:
            return False
        device.enabled = False
        self.client.put_item(
            TableName=self.table,
            Item=to_item(
                {
                    "pk": customer_pk(owner["customer_id"]),
                    "sk": f"DEVICE#{device.device_id}",
                    "doc": device.model_dump_json(),
                }
            ),
        )
        return True

    # -- provider ids -----------------------------------------------------------------------------------
    def provider_marker(self, provider_message_id: str, message_id: str, at: datetime) -> dict[str, Any]:
        """The write, in the sent transition, that lets feedback naming only the provider's id find the message."""
        item = {
            "pk": f"PROVIDER#{provider_message_id}",
            "sk": "MESSAGE",
            "message_id": message_id,
            "expires_at": int((at + PROVIDER_RETENTION).timestamp()),
        }
        return {"Put": {"TableName": self.table, "Item": to_item(item)}}

    def message_of_provider_id(self, provider_message_id: str) -> str | None:
        raw = self.client.get_item(TableName=self.table, Key=key_of(f"PROVIDER#{provider_message_id}", "MESSAGE")).get(
            "Item"
        )
        return str(from_item(raw)["message_id"]) if raw else None

    # -- webhook endpoints (the webhook adapter's port) ------------------------------------------------
    def put_endpoint(self, endpoint_id: str, *, url: str, secret: str, customer_id: str | None) -> None:
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": to_item(
                        {
                            "pk": f"WEBHOOK#{endpoint_id}",
                            "sk": "ENDPOINT",
                            "url": url,
                            "secret": secret,
                            "customer_id": customer_id,
                            "enabled": True,
                            "failures": 0,
                        }
                    ),
                }
            }
        ]
        if customer_id:
            actions.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": to_item(
                            {"pk": customer_pk(customer_id), "sk": f"WEBHOOK#{endpoint_id}", "endpoint_id": endpoint_id}
                        ),
                    }
                }
            )
        self.client.transact_write_items(TransactItems=actions)

    def endpoint(self, endpoint_id: str) -> Any:
        from ecrm.broadcast.channels.base import WebhookEndpoint

        raw = self.client.get_item(TableName=self.table, Key=key_of(f"WEBHOOK#{endpoint_id}", "ENDPOINT")).get("Item")
        if raw is None:
            return None
        item = from_item(raw)
        return WebhookEndpoint(endpoint_id, item.get("customer_id"), item["url"], item["secret"], bool(item["enabled"]))

    def record_outcome(self, endpoint_id: str, *, ok: bool) -> None:
        """Failures in a row count up; `failures_to_disable` of them disable the endpoint; a success resets."""
        key = key_of(f"WEBHOOK#{endpoint_id}", "ENDPOINT")
        if ok:
            self.client.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="SET failures = :z",
                ExpressionAttributeValues={":z": {"N": "0"}},
            )
            return
        response = self.client.update_item(
            TableName=self.table,
            Key=key,
            UpdateExpression="ADD failures :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        if int(response["Attributes"]["failures"]["N"]) >= self.failures_to_disable:
            self.client.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="SET enabled = :f",
                ExpressionAttributeValues={":f": {"BOOL": False}},
            )

    def customer_endpoints(self, customer_id: str) -> list[str]:
        ids = [i["endpoint_id"] for i in self._query(customer_pk(customer_id), "WEBHOOK#")]
        return [i for i in ids if (endpoint := self.endpoint(i)) is not None and endpoint.enabled]

    # -- deliverability ------------------------------------------------------------------------------
    def count_outcome(self, configuration_set: str, kind: str, at: datetime, *, count: int = 1) -> None:
        self.client.update_item(
            TableName=self.table,
            Key=key_of(f"DELIV#{configuration_set}", f"H#{hour_of(at)}"),
            UpdateExpression="ADD #k :n SET expires_at = :x",
            ExpressionAttributeNames={"#k": kind},
            ExpressionAttributeValues={
                ":n": {"N": str(count)},
                ":x": {"N": str(int((at + timedelta(days=3)).timestamp()))},
            },
        )

    def outcome_counts(self, configuration_set: str, now: datetime, hours: int) -> dict[str, int]:
        totals: dict[str, int] = {}
        for item in self._query(f"DELIV#{configuration_set}", "H#", start=f"H#{hour_of(now - timedelta(hours=hours))}"):
            for kind in ("sent", "bounced", "complained"):
                totals[kind] = totals.get(kind, 0) + int(item.get(kind, 0))
        return totals

    def pause(self, configuration_set: str, until: datetime) -> None:
        self.client.put_item(
            TableName=self.table,
            Item=to_item({"pk": f"DELIV#{configuration_set}", "sk": "PAUSE", "until": until.isoformat()}),
        )

    def paused_until(self, configuration_set: str) -> datetime | None:
        raw = self.client.get_item(TableName=self.table, Key=key_of(f"DELIV#{configuration_set}", "PAUSE")).get("Item")
        return datetime.fromisoformat(from_item(raw)["until"]) if raw else None

    # -- erasure ----------------------------------------------------------------------------------------
    def customer_items(self, customer_id: str) -> list[dict[str, Any]]:
        """Everything under the customer's partition: message index, sends counted, inbox, devices, webhooks, outbox."""
        return self._query(customer_pk(customer_id), "")

    def delete_items(self, keys: Iterable[tuple[str, str]]) -> None:
        """Delete by (pk, sk), 25 a request, what DynamoDB left unprocessed sent again."""
        self._write_all([{"DeleteRequest": {"Key": key_of(pk, sk)}} for pk, sk in dict.fromkeys(keys)])

    def put_items(self, items: Iterable[dict[str, Any]]) -> None:
        """Unconditional puts of items (DynamoDB JSON), 25 a request, what DynamoDB left unprocessed sent again."""
        self._write_all([{"PutRequest": {"Item": item}} for item in items])

    def _write_all(self, pending: list[dict[str, Any]]) -> None:
        while pending:
            batch, pending = pending[:25], pending[25:]
            request: dict[str, Any] = {self.table: batch}
            while request:
                request = self.client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}

    def forget_owner(self, address: str, customer_id: str) -> None:
        """The address stops naming the customer (left alone if it names someone else since)."""
        try:
            self.client.delete_item(
                TableName=self.table,
                Key=key_of(f"ADDR#{normalise_address(address)}", "OWNER"),
                ConditionExpression="customer_id = :c",
                ExpressionAttributeValues={":c": {"S": customer_id}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    # -- link signing keys -----------------------------------------------------------------------------
    def link_keys(self, new_key: bytes) -> tuple[bytes, ...]:
        """The keys that sign unsubscribe and preference links, newest first; `new_key` becomes the first if none.

        Kept in this table (encrypted with the engine's key, readable by its functions only) rather than in
        a secret store: the first function to need one writes it, conditionally, and every other reads it.
        A rotation puts a new key first and keeps the old ones, so links already sent still open.
        """
        key = key_of("LINKKEYS", "LINKKEYS")
        raw = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        if raw is None:
            try:
                self.client.put_item(
                    TableName=self.table,
                    Item={**key, "keys": {"L": [{"B": new_key}]}},
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
            raw = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True)["Item"]
        return tuple(bytes(k["B"]) for k in raw["keys"]["L"])

    def _query(self, pk: str, prefix: str, *, start: str | None = None, end: str | None = None) -> list[dict[str, Any]]:
        if start is not None:
            condition, values = "pk = :pk AND sk >= :s", {":pk": {"S": pk}, ":s": {"S": start}}
        elif end is not None:
            condition, values = "pk = :pk AND sk <= :e", {":pk": {"S": pk}, ":e": {"S": end}}
        elif prefix:
            condition, values = "pk = :pk AND begins_with(sk, :p)", {":pk": {"S": pk}, ":p": {"S": prefix}}
        else:
            condition, values = "pk = :pk", {":pk": {"S": pk}}
        query: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        while True:
            response = self.client.query(**query)
            items += [from_item(i) for i in response.get("Items", [])]
            if not response.get("LastEvaluatedKey"):
                return [i for i in items if i["sk"].startswith(prefix)] if start is not None and prefix else items
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _now_of(message: Any) -> datetime:
    """The inbox item's time: the one the sender stamped in the message's tags, else now."""
    from ecrm.core.clock import utc_now

    stamped = message.tags.get("requested_at") if hasattr(message, "tags") else None
    return datetime.fromisoformat(stamped) if stamped else utc_now()
