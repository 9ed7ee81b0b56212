"""The event source pollers' SQS and DynamoDB Streams calls, made on moto's backends in this process.

Lambda's pollers run inside AWS; locally they run in the local cloud's process, beside moto's
server. Through boto3 and HTTP each of their calls cost the process (whose one GIL every request
shares) a signed request, a new connection and a thread on the server (werkzeug closes every
connection), moto's generic response serializer and botocore's parser: measured on a campaign of
100 messages, the pollers' ReceiveMessage, DeleteMessageBatch and GetRecords calls and their
server side were about half of the cloud process's CPU, which is what bounds the local cloud's
throughput. These clients answer the same calls by calling the backend methods moto's own HTTP
handlers call (`SQSBackend.receive_message`, `delete_message_batch`,
`change_message_visibility`, `DynamoDBStreamsBackend.get_records`), with the same parameters
and the same validation, and shape the answers as boto3 returns them:
tests/integration/test_local_in_process_clients.py compares every answer with boto3's for the
same queue contents and stream records.

What the pollers call rarely (a queue's URL, a stream's shard and first iterator, a give-up
message) goes through boto3 as before. While the cloud's fault plan holds a rule for SQS or
DynamoDB, every call goes through boto3 too, so the fault layer in front of the server sees the
pollers' calls exactly as before.
"""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime
from typing import Any

from infra.local.faults import FaultPlan

# moto's ReceiveMessage handler answers these system attributes (moto/sqs/responses.py)
SYSTEM_ATTRIBUTES = (
    "AWSTraceHeader",
    "ApproximateFirstReceiveTimestamp",
    "ApproximateReceiveCount",
    "MessageDeduplicationId",
    "MessageGroupId",
    "SenderId",
    "SentTimestamp",
    "SequenceNumber",
)


def _faulty(faults: FaultPlan | None, *services: str) -> bool:
    return bool(faults) and any(s in faults.services for s in services)  # type: ignore[union-attr]


def _account_region_of_queue(url: str) -> tuple[str, str, str]:
    """(account, region, name) of a moto queue URL: http://HOST/ACCOUNT/NAME (the region is the client's)."""
    parts = url.rstrip("/").split("/")
    return parts[-2], "", parts[-1]


class InProcessSqs:
    """The SQS calls of a queue poller, on moto's SQS backend in this process (boto3's answers' shape)."""

    def __init__(self, http: Any, *, region: str, faults: FaultPlan | None = None) -> None:
        self.http = http
        self.region = region
        self.faults = faults
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def _receiving(self, url: str) -> threading.Lock:
        """One receive of a queue at a time: moto's receive checks a message's visibility and marks it received
        without a lock, so two pollers receiving at once can both take one message (each with its own
        handle; when one deletes it, the other's visibility change is refused). Each batch still runs at once."""
        with self._locks_lock:
            return self._locks.setdefault(url, threading.Lock())

    def _backend_and_queue(self, url: str) -> tuple[Any, str]:
        from moto.sqs.models import sqs_backends

        account, _, name = _account_region_of_queue(url)
        return sqs_backends[account][self.region], name

    def get_queue_url(self, **kwargs: Any) -> Any:
        return self.http.get_queue_url(**kwargs)

    def send_message(self, **kwargs: Any) -> Any:
        return self.http.send_message(**kwargs)

    def receive_message(
        self,
        *,
        QueueUrl: str,
        MaxNumberOfMessages: int = 1,
        WaitTimeSeconds: int | None = None,
        AttributeNames: list[str] | None = None,
        MessageAttributeNames: list[str] | None = None,
    ) -> dict[str, Any]:
        if _faulty(self.faults, "sqs"):
            return dict(
                self.http.receive_message(
                    QueueUrl=QueueUrl,
                    MaxNumberOfMessages=MaxNumberOfMessages,
                    WaitTimeSeconds=WaitTimeSeconds,
                    AttributeNames=AttributeNames or [],
                    MessageAttributeNames=MessageAttributeNames or [],
                )
            )
        from moto.sqs.exceptions import SQSException

        backend, name = self._backend_and_queue(QueueUrl)
        queue = backend.get_queue(name)
        if not 1 <= MaxNumberOfMessages <= 10:
            raise SQSException("InvalidParameterValue", f"MaxNumberOfMessages {MaxNumberOfMessages} is invalid")
        wait = int(queue.receive_message_wait_time_seconds) if WaitTimeSeconds is None else int(WaitTimeSeconds)
        if not 0 <= wait <= 20:
            raise SQSException("InvalidParameterValue", f"WaitTimeSeconds {wait} is invalid")
        with self._receiving(QueueUrl):
            messages = backend.receive_message(
                name, MaxNumberOfMessages, wait, queue.visibility_timeout, list(MessageAttributeNames or [])
            )
        wanted = set(AttributeNames or [])
        included = [a for a in SYSTEM_ATTRIBUTES if "All" in wanted or a in wanted]
        if not messages:
            return {}
        return {"Messages": [_message(m, included) for m in messages]}

    def delete_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        if _faulty(self.faults, "sqs"):
            return dict(self.http.delete_message_batch(QueueUrl=QueueUrl, Entries=Entries))
        from moto.sqs.exceptions import BatchEntryIdsNotDistinct, EmptyBatchRequest

        if not Entries:
            raise EmptyBatchRequest(action="Delete")
        seen: set[str] = set()
        for entry in Entries:
            if entry["ReceiptHandle"] in seen:
                raise BatchEntryIdsNotDistinct(entry["Id"])
            seen.add(entry["ReceiptHandle"])
        backend, name = self._backend_and_queue(QueueUrl)
        success, failed = backend.delete_message_batch(name, Entries)
        return {"Successful": [{"Id": i} for i in success], "Failed": failed}

    def change_message_visibility(self, *, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> dict[str, Any]:
        if _faulty(self.faults, "sqs"):
            return dict(
                self.http.change_message_visibility(
                    QueueUrl=QueueUrl, ReceiptHandle=ReceiptHandle, VisibilityTimeout=VisibilityTimeout
                )
            )
        from moto.sqs.exceptions import MaxVisibilityTimeout
        from moto.sqs.models import MAXIMUM_VISIBILITY_TIMEOUT

        if int(VisibilityTimeout) > MAXIMUM_VISIBILITY_TIMEOUT:
            raise MaxVisibilityTimeout()
        backend, name = self._backend_and_queue(QueueUrl)
        backend.change_message_visibility(
            queue_name=name, receipt_handle=ReceiptHandle, visibility_timeout=int(VisibilityTimeout)
        )
        return {}


def visibility_deadlines(url: str, region: str, handles: list[str]) -> dict[str, float]:
    """When each message holding one of these receipt handles becomes visible again (moto's `visible_at`, in
    milliseconds): what the queue poller reads before and after an invocation, to see whether the function
    chose its records' return itself (`ChangeMessageVisibility`). Read on moto's backend in this process,
    whichever way the poller calls SQS: nothing of it is an SQS call."""
    from moto.sqs.models import sqs_backends

    account, _, name = _account_region_of_queue(url)
    wanted = set(handles)
    try:
        queue = sqs_backends[account][region].get_queue(name)
    except Exception:  # a queue deleted meanwhile: its records are gone with it
        return {}
    return {m.receipt_handle: float(m.visible_at) for m in list(queue._messages) if m.receipt_handle in wanted}


def _message(message: Any, included: list[str]) -> dict[str, Any]:
    """One received message as moto's ReceiveMessage handler answers it and boto3 parses it."""
    shaped: dict[str, Any] = {
        "MessageId": message.id,
        "ReceiptHandle": message.receipt_handle,
        "MD5OfBody": message.body_md5,
        "Body": message.body,
    }
    attributes: dict[str, str] = {}
    values = {
        "SenderId": lambda: message.sender_id,
        "SentTimestamp": lambda: str(message.sent_timestamp),
        "ApproximateReceiveCount": lambda: str(message.approximate_receive_count),
        "ApproximateFirstReceiveTimestamp": lambda: str(message.approximate_first_receive_timestamp),
        "MessageDeduplicationId": lambda: message.deduplication_id,
        "MessageGroupId": lambda: message.group_id,
        "AWSTraceHeader": lambda: ((message.system_attributes or {}).get("AWSTraceHeader") or {}).get("StringValue"),
        "SequenceNumber": lambda: message.sequence_number,
    }
    for name in included:
        value = values[name]()
        if value is not None:
            attributes[name] = value
    if attributes:
        shaped["Attributes"] = attributes
    if len(message.message_attributes):
        shaped["MD5OfMessageAttributes"] = message.attribute_md5
        shaped["MessageAttributes"] = {k: _message_attribute(v) for k, v in message.message_attributes.items()}
    return shaped


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """A message attribute as boto3 parses it: binary values as bytes."""
    shaped = dict(value)
    if isinstance(shaped.get("BinaryValue"), str):
        shaped["BinaryValue"] = base64.b64decode(shaped["BinaryValue"])
    return shaped


class InProcessStreams:
    """The GetRecords calls of a stream poller, on moto's DynamoDB Streams backend in this process."""

    def __init__(self, http: Any, *, faults: FaultPlan | None = None) -> None:
        self.http = http
        self.faults = faults

    def describe_stream(self, **kwargs: Any) -> Any:
        return self.http.describe_stream(**kwargs)

    def get_shard_iterator(self, **kwargs: Any) -> Any:
        return self.http.get_shard_iterator(**kwargs)

    def get_records(self, *, ShardIterator: str, Limit: int = 1000) -> dict[str, Any]:
        if _faulty(self.faults, "dynamodb", "dynamodbstreams"):
            return dict(self.http.get_records(ShardIterator=ShardIterator, Limit=Limit))
        from moto.dynamodbstreams.models import dynamodbstreams_backends

        _, _, _, region, account = ShardIterator.split(":", 5)[:5]
        answer = dynamodbstreams_backends[account][region].get_records(ShardIterator, Limit)
        return {"NextShardIterator": answer["NextShardIterator"], "Records": [_record(r) for r in answer["Records"]]}


def _record(record: dict[str, Any]) -> dict[str, Any]:
    """A stream record as boto3 parses it (moto keeps one dict per record: copied, never changed)."""
    stream = dict(record["dynamodb"])
    created = stream.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):  # moto's naive UTC; boto3 answers an aware datetime
        stream["ApproximateCreationDateTime"] = created.replace(tzinfo=UTC) if created.tzinfo is None else created
    for image in ("Keys", "NewImage", "OldImage"):
        if image in stream:
            stream[image] = {k: _attribute(v) for k, v in stream[image].items()}
    return {**record, "dynamodb": stream}


def _attribute(value: dict[str, Any]) -> dict[str, Any]:
    """An attribute value as boto3 parses it: binary as bytes, maps and lists walked."""
    (kind, inner), *_ = value.items()
    if kind == "B":
        return {"B": _bytes(inner)}
    if kind == "BS":
        return {"BS": [_bytes(b) for b in inner]}
    if kind == "M":
        return {"M": {k: _attribute(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [_attribute(v) for v in inner]}
    return value


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else base64.b64decode(value)
