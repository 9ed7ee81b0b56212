"""Persistence of the broadcast engine in one DynamoDB table (`pk`, `sk`, TTL `expires_at`).

Access patterns and keys:
- message (the request, its decision and history, JSON in `doc`, optimistic `version`): `MSG#<id>` / `MESSAGE`.
  Created with `attribute_not_exists(pk)`: the id is the key, so a replayed request finds its message.
  Every transition is a conditional put naming the version it read (which fixes the status it leaves).
  The doc leaves out what is at its default or held by the key and attributes, and the content and data
  (only rendering reads them) are their own item, `MSG#<id>` / `CONTENT` (zlib-compressed JSON in `packed`),
  written once with the message:
  each transition rewrites (and pays write units per KB for) the status and history only, not a campaign's
  HTML. An item from before keeps its content inline;
- a transition's events ride in the message item it writes (`outbox` attribute, ADR 11, "Events in the item they
  describe"), so a transition is one conditional put; the relay publishes them from the item's stream record. A
  write without events leaves the attribute out. Messages written before kept theirs in `MSG#<id>` / `OUTBOX`;
- a customer's messages, newest first: `CUST#<customer>` / `MSG#<requested at>#<id>`;
- marketing sends counted by the frequency caps: `CUST#<customer>` / `SENT#<at>#<id>` (channel; TTL 35 days),
  written just before the write that marks the message sent (never a sent message the caps miss);
- a provider's word on a message its sender still held (`feedback.SenderStillSending`): `MSG#<id>` / `EVIDENCE`
  (the provider's id; TTL 2 days), read by a retried send before it sends again;
- the message a provider's id names, for feedback that names only the provider's ids (a push's SNS
  `DeliveryFailure`): `PROVIDER#<provider message id>` / `MESSAGE` (`message_id`; TTL `reach_store.PROVIDER_RETENTION`),
  written just before the write that marks the message sent, so a sent push always has it. Written only for the
  channels in `sending.FOUND_BY_PROVIDER_ID`: every other channel's feedback carries our message id (SES tags,
  End User Messaging `Context`, WhatsApp's callback data), so an email pays no write for it;
- in-app inbox: `CUST#<customer>` / `INBOX#<message id>` (idempotent by message id; TTL 90 days);
- devices: `CUST#<customer>` / `DEVICE#<device id>`, and `PUSHEP#<endpoint arn>` / `DEVICE` to retire a device
  from a push feedback that names only its endpoint;
- webhook endpoints: `WEBHOOK#<endpoint id>` / `ENDPOINT` (secret, failures in a row, enabled), listed for
  their customer under `CUST#<customer>` / `WEBHOOK#<endpoint id>`;
- the suppression list and the owners of phone numbers: `suppression_store`;
- deferred messages due in an hour: `DEFER#<yyyy-mm-ddThh>` / `<until>#<id>`, read by the release job;
- the link signing keys, newest first: `LINKKEYS` / `LINKKEYS`;
- deliverability counters per configuration set and hour: `DELIV#<set>` / `H#<yyyy-mm-ddThh>` (ADD), and the
  pause `DELIV#<set>` / `PAUSE` (`until`).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from ecrm.broadcast.models import Message
from ecrm.broadcast.reach_store import (
    DEFAULT_FAILURES_TO_DISABLE,
    customer_pk,
    from_item,
    hour_of,
    key_of,
    to_item,
)
from ecrm.broadcast.suppression_store import SuppressionStore, decode_cursor, encode_cursor
from ecrm.core.events import DomainEvent
from ecrm.core.outbox import Outbox, events_attribute
from ecrm.core.packing import pack, unpack

CONTENT = "CONTENT"  # the sort key of a message's content and data, beside its `MESSAGE` item
EVIDENCE = "EVIDENCE"  # the sort key of a provider's word on a message its sender still held
EVIDENCE_RETENTION = timedelta(days=2)
KEPT_BESIDE_DOC = ("message_id", "customer_id", "status")  # the key and attributes hold them: not in `doc` again
SENT_RETENTION = timedelta(days=35)
TEST_RETENTION = timedelta(days=7)  # how long a test send's key makes a retry send nothing


class StaleMessage(Exception):
    """The message changed since it was read (another worker moved it): read it again and decide anew."""


def message_pk(message_id: str) -> str:
    return f"MSG#{message_id}"


class BroadcastStore(SuppressionStore):
    def __init__(self, client: Any, table_name: str, *, failures_to_disable: int = DEFAULT_FAILURES_TO_DISABLE) -> None:
        super().__init__(client, table_name, failures_to_disable=failures_to_disable)
        self.outbox = Outbox(table_name)

    # -- messages --------------------------------------------------------------------------------------
    def create_message(self, message: Message, events: Sequence[DomainEvent], *, correlation_id: str | None) -> bool:
        """Save a new message with its events; False when a message with this id exists (a replay).

        Three plain writes, in this order, rather than a transaction (which DynamoDB bills twice): the content
        (only if absent or written by a request with the same body: another body's request never overwrites
        it), the customer's index entry, then the message with its `MessageRequested` on the condition that it
        is new. A crash before the last write leaves no message and no event: the client, answered nothing,
        retries and the same writes land again; the index entry left behind by a client that never retried
        names no message, and listings skip it.
        """
        at = message.requested_at
        if not message._inline_content:
            content = json.dumps({"content": message.content, "data": message.data}, default=str).encode()
            # Compressed: HTML shrinks several times, and the write is billed per KB of the item.
            item = {
                "pk": message_pk(message.message_id),
                "sk": CONTENT,
                "packed": zlib.compress(content),
                "fingerprint": message.fingerprint,
            }
            if not self._put_if(to_item(item), "attribute_not_exists(pk) OR fingerprint = :fp", message.fingerprint):
                return False  # another body's request holds this id
        index = {
            "pk": customer_pk(message.customer_id),
            "sk": f"MSG#{at.isoformat()}#{message.message_id}",
            "message_id": message.message_id,
        }
        self.client.put_item(TableName=self.table, Item=to_item(index))
        item = self._message_item(message, events, correlation_id=correlation_id, now=at)
        return self._put_if(item, "attribute_not_exists(pk)")

    def _put_if(self, item: dict[str, Any], condition: str, fingerprint: str | None = None) -> bool:
        put: dict[str, Any] = {"TableName": self.table, "Item": item, "ConditionExpression": condition}
        if fingerprint is not None:
            put["ExpressionAttributeValues"] = {":fp": {"S": fingerprint}}
        try:
            self.client.put_item(**put)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get_message(self, message_id: str, *, with_content: bool = False) -> Message | None:
        """The message; its content and data too when asked (rendering), else left empty."""
        raw = self.client.get_item(
            TableName=self.table, Key=key_of(message_pk(message_id), "MESSAGE"), ConsistentRead=True
        ).get("Item")
        if raw is None:
            return None
        message = _message_of(from_item(raw))
        if with_content:
            self._with_content([message])
        return message

    def get_messages(self, message_ids: Iterable[str], *, with_content: bool = False) -> dict[str, Message]:
        found = {
            message.message_id: message
            for message in map(_message_of, self._get_all([key_of(message_pk(i), "MESSAGE") for i in message_ids]))
        }
        if with_content:
            self._with_content(list(found.values()))
        return found

    def _with_content(self, messages: Sequence[Message]) -> None:
        apart = {m.message_id: m for m in messages if not m._inline_content}
        for item in self._get_all([key_of(message_pk(i), CONTENT) for i in apart]):
            packed = item["packed"]
            stored = json.loads(unpack(bytes(packed)))  # boto3 reads it as a `Binary`
            message = apart[item["pk"].removeprefix("MSG#")]
            message.content, message.data = stored["content"], stored.get("data") or {}

    def _get_all(self, keys: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        pending = list({json.dumps(k, sort_keys=True): k for k in keys}.values())
        while pending:
            batch, pending = pending[:100], pending[100:]
            request: dict[str, Any] = {self.table: {"Keys": batch, "ConsistentRead": True}}
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                found.extend(from_item(raw) for raw in response["Responses"].get(self.table, []))
                request = response.get("UnprocessedKeys") or {}
        return found

    def forget_content(self, message_id: str) -> dict[str, Any]:
        """The write, in a transition, that deletes the message's content and data (an erasure)."""
        return {"Delete": {"TableName": self.table, "Key": key_of(message_pk(message_id), CONTENT)}}

    def save_transition(
        self,
        message: Message,
        events: Sequence[DomainEvent],
        *,
        correlation_id: str | None,
        now: datetime,
        extra: Sequence[dict[str, Any]] = (),
        written_before: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Write `message` (already moved) if nobody moved it since it was read, with its events.

        The events ride in the message item (`ecrm.core.outbox.events_attribute`): the transition is one
        conditional put, published by the relay from the item's stream record. `extra` writes go in one
        transaction with it (all or nothing); `written_before` are idempotent puts written first, outside it,
        for records that may exist without the transition but never the transition without them (a crash
        between leaves them to the retry, which writes them again).
        `message.version` is the version read; the write stores version + 1 and leaves the object at it.
        """
        if written_before:
            self.put_items(action["Put"]["Item"] for action in written_before)
        expected = message.version
        message.version = expected + 1
        put: dict[str, Any] = {
            "TableName": self.table,
            "Item": self._message_item(message, events, correlation_id=correlation_id, now=now),
            "ConditionExpression": "version = :v",
            "ExpressionAttributeValues": {":v": {"N": str(expected)}},
        }
        try:
            if extra:
                self.client.transact_write_items(TransactItems=[{"Put": put}, *extra])
            else:
                self.client.put_item(**put)
        except ClientError as exc:
            message.version = expected
            code = exc.response["Error"]["Code"]
            if code in {"ConditionalCheckFailedException", "TransactionCanceledException"}:
                raise StaleMessage(message.message_id) from exc
            raise

    def _message_item(
        self,
        message: Message,
        events: Sequence[DomainEvent] = (),
        *,
        correlation_id: str | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        left_out = {"version", *KEPT_BESIDE_DOC} | (set() if message._inline_content else {"content", "data"})
        item = to_item(
            {
                "pk": message_pk(message.message_id),
                "sk": "MESSAGE",
                "status": message.status,
                "customer_id": message.customer_id,
                "version": message.version,
                # Compressed: the status and history are rewritten by each transition, billed per KB.
                "doc": pack(message.model_dump_json(exclude=left_out, exclude_defaults=True).encode()),
            }
        )
        if events:
            now = now or message.updated_at
            item |= events_attribute(events, correlation_id=correlation_id, now=now, packed=True)
        return item

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
            query["ExclusiveStartKey"] = key_of(customer_pk(customer_id), decode_cursor(cursor))
        response = self.client.query(**query)
        ids = [from_item(i)["message_id"] for i in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return ids, (encode_cursor(last["sk"]["S"]) if last else None)

    def publish_for_customer(
        self, customer_id: str, events: Sequence[DomainEvent], *, correlation_id: str | None, now: datetime
    ) -> None:
        """Events about a customer rather than a message (an unsubscribe), through the customer's outbox item."""
        put = self.outbox.put(customer_pk(customer_id), events, correlation_id=correlation_id, now=now)["Put"]
        self.client.put_item(TableName=put["TableName"], Item=put["Item"])

    # -- frequency caps ---------------------------------------------------------------------------------
    def record_evidence(self, message_id: str, provider_message_id: str | None, at: datetime) -> None:
        """Keep that the provider took a message its sender still held (`MSG#<id>` / `EVIDENCE`): a sender that
        died after the call is then never retried into a second send, however late the event settles it."""
        item: dict[str, Any] = {"pk": message_pk(message_id), "sk": EVIDENCE, "at": at.isoformat()}
        item |= {"provider_message_id": provider_message_id} if provider_message_id else {}
        item["expires_at"] = int((at + EVIDENCE_RETENTION).timestamp())
        self.client.put_item(TableName=self.table, Item=to_item(item))

    def evidence(self, message_id: str) -> str | None:
        """The provider's id of the message from its evidence ("" when the event named none), None without any."""
        item = self.client.get_item(
            TableName=self.table, Key=key_of(message_pk(message_id), EVIDENCE), ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        return str(item.get("provider_message_id", {}).get("S", ""))

    def sent_marker(self, message: Message, at: datetime) -> dict[str, Any]:
        """The write, in the sent transition, that the caps count (marketing only)."""
        return {
            "Put": {
                "TableName": self.table,
                "Item": to_item(
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

    # -- test sends -------------------------------------------------------------------------------------
    def claim_test_send(self, key: str, at: datetime) -> bool:
        """Take a test send's key before the provider call: False when it was taken (a retry sends nothing)."""
        item = {
            "pk": f"TEST#{key}",
            "sk": "TEST",
            "at": at.isoformat(),
            "expires_at": int((at + TEST_RETENTION).timestamp()),
        }
        try:
            self.client.put_item(
                TableName=self.table, Item=to_item(item), ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release_test_send(self, key: str) -> None:
        """The provider refused or failed: the key is free again for a retry."""
        self.client.delete_item(TableName=self.table, Key=key_of(f"TEST#{key}", "TEST"))

    # -- deferrals --------------------------------------------------------------------------------------
    def deferral_marker(self, message: Message, until: datetime) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table,
                "Item": to_item(
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
        self.client.delete_item(TableName=self.table, Key=key_of(hour_key, sort_key))


def message_doc(item: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON document of a message item (deserialized): compressed since ADR 11's change, plain before."""
    doc = item["doc"]
    return dict(json.loads(doc if isinstance(doc, str) else unpack(bytes(doc))))


def _message_of(item: Mapping[str, Any]) -> Message:
    doc = message_doc(item)
    attributes = {"message_id": item["pk"].removeprefix("MSG#"), "customer_id": item["customer_id"]}
    message = Message.model_validate(attributes | {"status": item["status"]} | doc)
    message.version = int(item["version"])
    message._inline_content = "content" in doc  # written before the content was stored apart
    return message
