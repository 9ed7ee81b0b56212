"""Persistence of the broadcast engine in one DynamoDB table (`pk`, `sk`, TTL `expires_at`).

Access patterns and keys:
- message (the request, its decision and history, JSON in `doc`, optimistic `version`): `MSG#<id>` / `MESSAGE`.
  Created with `attribute_not_exists(pk)`: the id is the key, so a replayed request finds its message.
  Every transition is a conditional put naming the version it read (which fixes the status it leaves);
- outbox (`ecrm.core.outbox`, ADR 11): `MSG#<id>` / `OUTBOX`, the transition's events, in the same transaction;
- a customer's messages, newest first: `CUST#<customer>` / `MSG#<requested at>#<id>`;
- marketing sends counted by the frequency caps: `CUST#<customer>` / `SENT#<at>#<id>` (channel; TTL 35 days),
  written in the transaction that marks the message sent;
- in-app inbox: `CUST#<customer>` / `INBOX#<message id>` (idempotent by message id; TTL 90 days);
- devices: `CUST#<customer>` / `DEVICE#<device id>`, and `PUSHEP#<endpoint arn>` / `DEVICE` to retire a device
  from a push feedback that names only its endpoint;
- webhook endpoints: `WEBHOOK#<endpoint id>` / `ENDPOINT` (secret, failures in a row, enabled), listed for
  their customer under `CUST#<customer>` / `WEBHOOK#<endpoint id>`;
- suppression list: `SUPP#<normalised address>` / `SUPPRESSION` (one read per address at send time) and
  `SUPPLIST` / `<address>` for staff listing (suppressions are rare writes, so one partition lists them);
- who an address belongs to, for inbound STOPs that name only a phone number: `ADDR#<address>` / `OWNER`;
- deferred messages due in an hour: `DEFER#<yyyy-mm-ddThh>` / `<until>#<id>`, read by the release job;
- the link signing keys, newest first: `LINKKEYS` / `LINKKEYS`;
- deliverability counters per configuration set and hour: `DELIV#<set>` / `H#<yyyy-mm-ddThh>` (ADD), and the
  pause `DELIV#<set>` / `PAUSE` (`until`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from ecrm.broadcast.keys import normalise_address
from ecrm.broadcast.models import Device, InboxItem, Message, Suppression
from ecrm.core.errors import InvalidInput
from ecrm.core.events import DomainEvent
from ecrm.core.outbox import Outbox

_SERIALIZE = TypeSerializer().serialize
_DESERIALIZE = TypeDeserializer().deserialize
SENT_RETENTION = timedelta(days=35)
INBOX_RETENTION = timedelta(days=90)
DEFAULT_FAILURES_TO_DISABLE = 5


class StaleMessage(Exception):
    """The message changed since it was read (another worker moved it): read it again and decide anew."""


def _item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _SERIALIZE(v) for k, v in values.items() if v is not None}


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _DESERIALIZE(v) for k, v in item.items()}


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def message_pk(message_id: str) -> str:
    return f"MSG#{message_id}"


def customer_pk(customer_id: str) -> str:
    return f"CUST#{customer_id}"


def hour_of(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H")


class BroadcastStore:
    def __init__(self, client: Any, table_name: str, *, failures_to_disable: int = DEFAULT_FAILURES_TO_DISABLE) -> None:
        self.client = client
        self.table = table_name
        self.outbox = Outbox(table_name)
        self.failures_to_disable = failures_to_disable

    # -- messages --------------------------------------------------------------------------------------
    def create_message(self, message: Message, events: Sequence[DomainEvent], *, correlation_id: str | None) -> bool:
        """Save a new message with its events; False when a message with this id exists (a replay)."""
        at = message.requested_at
        actions = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": self._message_item(message),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Put": {
                    "TableName": self.table,
                    "Item": _item(
                        {
                            "pk": customer_pk(message.customer_id),
                            "sk": f"MSG#{at.isoformat()}#{message.message_id}",
                            "message_id": message.message_id,
                        }
                    ),
                }
            },
            self.outbox.put(message_pk(message.message_id), events, correlation_id=correlation_id, now=at),
        ]
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons") or []]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return False
            raise
        return True

    def get_message(self, message_id: str) -> Message | None:
        raw = self.client.get_item(
            TableName=self.table, Key=_key(message_pk(message_id), "MESSAGE"), ConsistentRead=True
        ).get("Item")
        if raw is None:
            return None
        item = _plain(raw)
        message = Message.model_validate_json(item["doc"])
        message.version = int(item["version"])
        return message

    def get_messages(self, message_ids: Iterable[str]) -> dict[str, Message]:
        found: dict[str, Message] = {}
        pending = [_key(message_pk(i), "MESSAGE") for i in dict.fromkeys(message_ids)]
        while pending:
            batch, pending = pending[:100], pending[100:]
            request: dict[str, Any] = {self.table: {"Keys": batch, "ConsistentRead": True}}
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                for raw in response["Responses"].get(self.table, []):
                    item = _plain(raw)
                    message = Message.model_validate_json(item["doc"])
                    message.version = int(item["version"])
                    found[message.message_id] = message
                request = response.get("UnprocessedKeys") or {}
        return found

    def save_transition(
        self,
        message: Message,
        events: Sequence[DomainEvent],
        *,
        correlation_id: str | None,
        now: datetime,
        extra: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Write `message` (already moved) if nobody moved it since it was read, with its events and `extra` writes.

        `message.version` is the version read; the write stores version + 1 and leaves the object at it.
        """
        expected = message.version
        message.version = expected + 1
        put: dict[str, Any] = {
            "TableName": self.table,
            "Item": self._message_item(message),
            "ConditionExpression": "version = :v",
            "ExpressionAttributeValues": {":v": {"N": str(expected)}},
        }
        actions: list[dict[str, Any]] = [{"Put": put}, *extra]
        if events:
            actions.append(
                self.outbox.put(message_pk(message.message_id), events, correlation_id=correlation_id, now=now)
            )
        try:
            if len(actions) == 1:
                self.client.put_item(**put)
            else:
                self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            message.version = expected
            code = exc.response["Error"]["Code"]
            if code in {"ConditionalCheckFailedException", "TransactionCanceledException"}:
                raise StaleMessage(message.message_id) from exc
            raise

    def _message_item(self, message: Message) -> dict[str, Any]:
        return _item(
            {
                "pk": message_pk(message.message_id),
                "sk": "MESSAGE",
                "status": message.status,
                "customer_id": message.customer_id,
                "version": message.version,
                "doc": message.model_dump_json(exclude={"version"}),
            }
        )

    def customer_messages(self, customer_id: str, *, limit: int, cursor: str | None) -> tuple[list[str], str | None]:
        """The customer's message ids, newest first, and the cursor of the next page."""
        query: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
            "ExpressionAttributeValues": {":pk": {"S": customer_pk(customer_id)}, ":p": {"S": "MSG#"}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            query["ExclusiveStartKey"] = _key(customer_pk(customer_id), _decode_cursor(cursor))
        response = self.client.query(**query)
        ids = [_plain(i)["message_id"] for i in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return ids, (_encode_cursor(last["sk"]["S"]) if last else None)

    def publish_for_customer(
        self, customer_id: str, events: Sequence[DomainEvent], *, correlation_id: str | None, now: datetime
    ) -> None:
        """Events about a customer rather than a message (an unsubscribe), through the customer's outbox item."""
        put = self.outbox.put(customer_pk(customer_id), events, correlation_id=correlation_id, now=now)["Put"]
        self.client.put_item(TableName=put["TableName"], Item=put["Item"])

    # -- frequency caps ---------------------------------------------------------------------------------
    def sent_marker(self, message: Message, at: datetime) -> dict[str, Any]:
        """The write, in the sent transition, that the caps count (marketing only)."""
        return {
            "Put": {
                "TableName": self.table,
                "Item": _item(
                    {
                        "pk": customer_pk(message.customer_id),
                        "sk": f"SENT#{at.isoformat()}#{message.message_id}",
                        "channel": message.channel,
                        "expires_at": int((at + SENT_RETENTION).timestamp()),
                    }
                ),
            }
        }

    def recent_sends(self, customer_id: str, since: datetime) -> list[tuple[str, datetime]]:
        items = self._query(customer_pk(customer_id), "SENT#", start=f"SENT#{since.isoformat()}")
        return [(i["channel"], datetime.fromisoformat(i["sk"].split("#")[1])) for i in items]

    # -- deferrals --------------------------------------------------------------------------------------
    def deferral_marker(self, message: Message, until: datetime) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table,
                "Item": _item(
                    {
                        "pk": f"DEFER#{hour_of(until)}",
                        "sk": f"{until.isoformat()}#{message.message_id}",
                        "message_id": message.message_id,
                        "expires_at": int((until + timedelta(days=7)).timestamp()),
                    }
                ),
            }
        }

    def due_deferrals(self, now: datetime, *, hours_back: int = 48) -> list[tuple[str, str]]:
        """(hour key, sort key) of deferrals due by `now`, from the last `hours_back` hours."""
        due: list[tuple[str, str]] = []
        for back in range(hours_back, -1, -1):
            hour = f"DEFER#{hour_of(now - timedelta(hours=back))}"
            for item in self._query(hour, "", end=f"{now.isoformat()}~"):
                due.append((hour, item["sk"]))
        return due

    def forget_deferral(self, hour_key: str, sort_key: str) -> None:
        self.client.delete_item(TableName=self.table, Key=_key(hour_key, sort_key))

    # -- suppression list -----------------------------------------------------------------------------
    def suppressed(self, addresses: Iterable[str]) -> dict[str, str]:
        """Normalised address -> reason, for the given addresses on the list."""
        keys = [_key(f"SUPP#{normalise_address(a)}", "SUPPRESSION") for a in dict.fromkeys(addresses)]
        found: dict[str, str] = {}
        while keys:
            batch, keys = keys[:100], keys[100:]
            request: dict[str, Any] = {self.table: {"Keys": batch}}
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                for raw in response["Responses"].get(self.table, []):
                    item = _plain(raw)
                    found[item["pk"].removeprefix("SUPP#")] = item["reason"]
                request = response.get("UnprocessedKeys") or {}
        return found

    def suppress(self, entry: Suppression) -> None:
        address = normalise_address(entry.address)
        doc = entry.model_copy(update={"address": address}).model_dump_json()
        self.client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": _item(
                            {"pk": f"SUPP#{address}", "sk": "SUPPRESSION", "reason": entry.reason, "doc": doc}
                        ),
                    }
                },
                {"Put": {"TableName": self.table, "Item": _item({"pk": "SUPPLIST", "sk": address, "doc": doc})}},
            ]
        )

    def unsuppress(self, address: str) -> bool:
        address = normalise_address(address)
        existing = self.client.get_item(TableName=self.table, Key=_key(f"SUPP#{address}", "SUPPRESSION")).get("Item")
        self.client.transact_write_items(
            TransactItems=[
                {"Delete": {"TableName": self.table, "Key": _key(f"SUPP#{address}", "SUPPRESSION")}},
                {"Delete": {"TableName": self.table, "Key": _key("SUPPLIST", address)}},
            ]
        )
        return existing is not None

    def suppressions(self, *, limit: int, cursor: str | None) -> tuple[list[Suppression], str | None]:
        query: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": "SUPPLIST"}},
            "Limit": limit,
        }
        if cursor:
            query["ExclusiveStartKey"] = _key("SUPPLIST", _decode_cursor(cursor))
        response = self.client.query(**query)
        items = [Suppression.model_validate_json(_plain(i)["doc"]) for i in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return items, (_encode_cursor(last["sk"]["S"]) if last else None)

    # -- addresses' owners ----------------------------------------------------------------------------
    def owner_marker(self, address: str, customer_id: str) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table,
                "Item": _item({"pk": f"ADDR#{normalise_address(address)}", "sk": "OWNER", "customer_id": customer_id}),
            }
        }

    def owner_of(self, address: str) -> str | None:
        raw = self.client.get_item(TableName=self.table, Key=_key(f"ADDR#{normalise_address(address)}", "OWNER")).get(
            "Item"
        )
        return _plain(raw)["customer_id"] if raw else None

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
                Item=_item(
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
        key = _key(customer_pk(customer_id), f"INBOX#{item_id}")
        raw = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        if raw is None:
            return None
        item = InboxItem.model_validate_json(_plain(raw)["doc"])
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
                        "Item": _item(
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
                        "Item": _item(
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
                    {"Delete": {"TableName": self.table, "Key": _key(customer_pk(customer_id), f"DEVICE#{device_id}")}},
                    {"Delete": {"TableName": self.table, "Key": _key(f"PUSHEP#{device.endpoint_arn}", "DEVICE")}},
                ]
            )
        return device

    def retire_endpoint(self, endpoint_arn: str) -> bool:
        """A push endpoint the provider disabled: its device stops being reachable."""
        raw = self.client.get_item(TableName=self.table, Key=_key(f"PUSHEP#{endpoint_arn}", "DEVICE")).get("Item")
        if raw is None:
            return False
        owner = _plain(raw)
        device = next((d for d in self.devices(owner["customer_id"]) if d.device_id == owner["device_id"]), None)
        if device is None or not device.enabled:
            return False
        device.enabled = False
        self.client.put_item(
            TableName=self.table,
            Item=_item(
                {
                    "pk": customer_pk(owner["customer_id"]),
                    "sk": f"DEVICE#{device.device_id}",
                    "doc": device.model_dump_json(),
                }
            ),
        )
        return True

    # -- webhook endpoints (the webhook adapter's port) ------------------------------------------------
    def put_endpoint(self, endpoint_id: str, *, url: str, secret: str, customer_id: str | None) -> None:
        actions: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": _item(
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
                        "Item": _item(
                            {"pk": customer_pk(customer_id), "sk": f"WEBHOOK#{endpoint_id}", "endpoint_id": endpoint_id}
                        ),
                    }
                }
            )
        self.client.transact_write_items(TransactItems=actions)

    def endpoint(self, endpoint_id: str) -> Any:
        from ecrm.broadcast.channels.base import WebhookEndpoint

        raw = self.client.get_item(TableName=self.table, Key=_key(f"WEBHOOK#{endpoint_id}", "ENDPOINT")).get("Item")
        if raw is None:
            return None
        item = _plain(raw)
        return WebhookEndpoint(endpoint_id, item.get("customer_id"), item["url"], item["secret"], bool(item["enabled"]))

    def record_outcome(self, endpoint_id: str, *, ok: bool) -> None:
        """Failures in a row count up; `failures_to_disable` of them disable the endpoint; a success resets."""
        key = _key(f"WEBHOOK#{endpoint_id}", "ENDPOINT")
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
    def count_outcome(self, configuration_set: str, kind: str, at: datetime) -> None:
        self.client.update_item(
            TableName=self.table,
            Key=_key(f"DELIV#{configuration_set}", f"H#{hour_of(at)}"),
            UpdateExpression="ADD #k :one SET expires_at = :x",
            ExpressionAttributeNames={"#k": kind},
            ExpressionAttributeValues={":one": {"N": "1"}, ":x": {"N": str(int((at + timedelta(days=3)).timestamp()))}},
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
            Item=_item({"pk": f"DELIV#{configuration_set}", "sk": "PAUSE", "until": until.isoformat()}),
        )

    def paused_until(self, configuration_set: str) -> datetime | None:
        raw = self.client.get_item(TableName=self.table, Key=_key(f"DELIV#{configuration_set}", "PAUSE")).get("Item")
        return datetime.fromisoformat(_plain(raw)["until"]) if raw else None

    # -- link signing keys -----------------------------------------------------------------------------
    def link_keys(self, new_key: bytes) -> tuple[bytes, ...]:
        """The keys that sign unsubscribe and preference links, newest first; `new_key` becomes the first if none.

        Kept in this table (encrypted with the engine's key, readable by its functions only) rather than in
        a secret store: the first function to need one writes it, conditionally, and every other reads it.
        A rotation puts a new key first and keeps the old ones, so links already sent still open.
        """
        key = _key("LINKKEYS", "LINKKEYS")
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

    # -- erasure ---------------------------------------------------------------------------------------------
    def erase_customer(self, customer_id: str) -> int:
        items = self._query(customer_pk(customer_id), "")
        for item in items:
            self.client.delete_item(TableName=self.table, Key=_key(item["pk"], item["sk"]))
        return len(items)

    def _query(self, pk: str, prefix: str, *, start: str | None = None, end: str | None = None) -> list[dict[str, Any]]:
        if start is not None:
            condition, values = "pk = :pk AND sk >= :s", {":pk": {"S": pk}, ":s": {"S": start}}
        elif end is not None:
            condition, values = "pk = :pk AND sk <= :e", {":pk": {"S": pk}, ":e": {"S": end}}
        else:
            condition, values = "pk = :pk AND begins_with(sk, :p)", {":pk": {"S": pk}, ":p": {"S": prefix}}
        query: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        while True:
            response = self.client.query(**query)
            items += [_plain(i) for i in response.get("Items", [])]
            if not response.get("LastEvaluatedKey"):
                return [i for i in items if i["sk"].startswith(prefix)] if start is not None and prefix else items
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _encode_cursor(sort_key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(sort_key).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError as exc:
        raise InvalidInput("the cursor is not one this API gave", field="cursor") from exc
    if not isinstance(value, str):
        raise InvalidInput("the cursor is not one this API gave", field="cursor")
    return value


def _now_of(message: Any) -> datetime:
    """The inbox item's time: the one the sender stamped in the message's tags, else now."""
    from ecrm.core.clock import utc_now

    stamped = message.tags.get("requested_at") if hasattr(message, "tags") else None
    return datetime.fromisoformat(stamped) if stamped else utc_now()
