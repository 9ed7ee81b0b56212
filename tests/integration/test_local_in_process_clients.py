"""The pollers' in-process SQS and DynamoDB Streams clients answer as boto3 does through the server.

Each test puts the same content behind both paths (two identical queues, or one stream read twice
from the same iterator) and compares the answers: what the pollers hand to a function is the same
whichever path they take. A fault plan with a rule for the service sends the calls through boto3,
where the fault layer sees them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from infra.local.faults import FaultPlan
from infra.local.in_process_clients import InProcessSqs, InProcessStreams
from infra.local.pollers import QueuePoller, StreamPoller

REGION = "us-east-1"
VARYING = {"MessageId", "ReceiptHandle"}  # minted per queue
TIMES = {"SentTimestamp", "ApproximateFirstReceiveTimestamp", "SequenceNumber"}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def comparable(message: dict[str, Any]) -> dict[str, Any]:
    shaped = {k: v for k, v in message.items() if k not in VARYING}
    attributes = dict(shaped.get("Attributes", {}))
    for name in TIMES & set(attributes):
        attributes[name] = attributes[name].isdigit()  # present, a number as text
    shaped["Attributes"] = attributes
    return shaped


def fill(sqs: Any, name: str, *, fifo: bool = False) -> str:
    attributes = {"FifoQueue": "true", "ContentBasedDeduplication": "false"} if fifo else {}
    url = sqs.create_queue(QueueName=name + (".fifo" if fifo else ""), Attributes=attributes)["QueueUrl"]
    for n in range(3):
        extra: dict[str, Any] = {"MessageGroupId": "g", "MessageDeduplicationId": f"d{n}"} if fifo else {}
        sqs.send_message(
            QueueUrl=url,
            MessageBody=f'{{"n": {n}, "text": "é"}}',
            MessageAttributes={
                "kind": {"DataType": "String", "StringValue": f"k{n}"},
                "size": {"DataType": "Number", "StringValue": str(n)},
                "blob": {"DataType": "Binary", "BinaryValue": bytes([n, 255, 0])},
            }
            if n
            else {},
            **extra,
        )
    return str(url)


@pytest.mark.parametrize("fifo", [False, True])
def test_received_messages_are_boto3s(endpoint: str, fifo: bool) -> None:
    # Given two queues holding the same three messages (with and without message attributes)
    sqs = client("sqs", endpoint)
    suffix = "fifo" if fifo else "std"
    through_http, in_process = fill(sqs, f"http-{suffix}", fifo=fifo), fill(sqs, f"direct-{suffix}", fifo=fifo)
    direct = InProcessSqs(sqs, region=REGION)
    ask: dict[str, Any] = {
        "MaxNumberOfMessages": 10,
        "WaitTimeSeconds": 0,
        "AttributeNames": ["All"],
        "MessageAttributeNames": ["All"],
    }
    # When each is received, one through boto3, one in process
    expected = sqs.receive_message(QueueUrl=through_http, **ask)["Messages"]
    received = direct.receive_message(QueueUrl=in_process, **ask)["Messages"]
    # Then the answers are the same but for the ids and handles each queue minted
    assert [comparable(m) for m in received] == [comparable(m) for m in expected]
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in received} == {"1"}
    # and an empty queue answers as boto3 does, without messages
    assert "Messages" not in sqs.receive_message(QueueUrl=through_http, **ask)
    assert "Messages" not in direct.receive_message(QueueUrl=in_process, **ask)


def test_deletes_and_visibility_changes_act_on_the_queue(endpoint: str) -> None:
    sqs = client("sqs", endpoint)
    url = fill(sqs, "settle")
    direct = InProcessSqs(sqs, region=REGION)
    ask: dict[str, Any] = {
        "MaxNumberOfMessages": 10,
        "WaitTimeSeconds": 0,
        "AttributeNames": ["All"],
        "MessageAttributeNames": ["All"],
    }
    first, second, third = direct.receive_message(QueueUrl=url, **ask)["Messages"]
    # A batch delete answers per entry as boto3 does; a repeated handle is refused as SQS refuses it
    deleted = direct.delete_message_batch(
        QueueUrl=url,
        Entries=[{"Id": "0", "ReceiptHandle": first["ReceiptHandle"]}, {"Id": "1", "ReceiptHandle": "not-a-handle"}],
    )
    assert deleted["Successful"] == [{"Id": "0"}]
    assert [f["Code"] for f in deleted["Failed"]] == ["ReceiptHandleIsInvalid"]
    with pytest.raises(Exception, match="repeated"):
        direct.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": "a", "ReceiptHandle": second["ReceiptHandle"]},
                {"Id": "b", "ReceiptHandle": second["ReceiptHandle"]},
            ],
        )
    # A visibility timeout of 0 gives a message back at once, received a second time
    direct.change_message_visibility(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"], VisibilityTimeout=0)
    again = direct.receive_message(QueueUrl=url, **ask)["Messages"]
    assert [(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in again] == [(second["Body"], "2")]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == (
        "0",
        "2",
    )
    assert third["Body"] != second["Body"]


class CountingRuntime:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def invoke(self, name: str, event: Any) -> Any:
        self.events.append(event)
        return {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}


def test_a_queue_poller_on_the_in_process_client_settles_batches_as_before(endpoint: str) -> None:
    # Given a poller whose function fails the first record of every batch
    sqs = client("sqs", endpoint)
    url = fill(sqs, "polled")
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "30"})
    runtime = CountingRuntime()
    mapping = {
        "source_arn": "arn:aws:sqs:us-east-1:123456789012:polled",
        "function": "consumer",
        "batch_size": 10,
        "report_batch_item_failures": True,
    }
    poller = QueuePoller(mapping, sqs=InProcessSqs(sqs, region=REGION), runtime=runtime, region=REGION)  # type: ignore[arg-type]
    # When it polls once
    assert poller.poll_once(wait_seconds=0) == 3
    # Then the records are Lambda's, the two others deleted and the failed one waits to be retried
    records = runtime.events[0]["Records"]
    assert [r["eventSource"] for r in records] == ["aws:sqs"] * 3
    assert records[1]["messageAttributes"]["kind"] == {"DataType": "String", "StringValue": "k1"}
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) in {
        ("0", "1"),
        ("1", "0"),  # the retry delay (1 s) already passed
    }


class RecordingHttp:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        def call(**kwargs: Any) -> dict[str, Any]:
            self.calls.append(name)
            return {}

        return call


def test_with_a_fault_rule_for_the_service_the_calls_go_through_the_server() -> None:
    plan = FaultPlan("sqs:DeleteMessageBatch=error#1,dynamodbstreams:GetRecords=throttle#1")
    http = RecordingHttp()
    sqs, streams = InProcessSqs(http, region=REGION, faults=plan), InProcessStreams(http, faults=plan)
    sqs.receive_message(QueueUrl="http://127.0.0.1/123456789012/q", WaitTimeSeconds=0)
    sqs.delete_message_batch(QueueUrl="http://127.0.0.1/123456789012/q", Entries=[])
    sqs.change_message_visibility(QueueUrl="http://127.0.0.1/123456789012/q", ReceiptHandle="h", VisibilityTimeout=0)
    streams.get_records(ShardIterator="arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x|1|i", Limit=1)
    assert http.calls == ["receive_message", "delete_message_batch", "change_message_visibility", "get_records"]


def test_stream_records_are_boto3s_and_reach_the_function_the_same(endpoint: str) -> None:
    # Given a table whose stream holds an insert, a change and a removal of items of every attribute type
    # (string keys, as the platform's tables have: moto's HTTP answer encodes a binary key's base64 text
    # again, where the in-process client gives the key's bytes, as DynamoDB does)
    dynamodb, streams = client("dynamodb", endpoint), client("dynamodbstreams", endpoint)
    created = dynamodb.create_table(
        TableName="streamed",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    stream_arn = created["TableDescription"]["LatestStreamArn"]
    item = {
        "pk": {"S": "CUST#1"},
        "sk": {"S": "PROFILE"},
        "n": {"N": "12.5"},
        "ok": {"BOOL": True},
        "none": {"NULL": True},
        "doc": {"M": {"b": {"B": b"\x01"}, "l": {"L": [{"S": "x"}, {"B": b"\x02"}, {"N": "3"}]}}},
        "tags": {"SS": ["a", "b"]},
        "nums": {"NS": ["1", "2"]},
        "blobs": {"BS": [b"\x03", b"\x04"]},
    }
    dynamodb.put_item(TableName="streamed", Item=item)
    dynamodb.put_item(TableName="streamed", Item={**item, "n": {"N": "13"}})
    dynamodb.delete_item(TableName="streamed", Key={"pk": item["pk"], "sk": item["sk"]})
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    # When the shard is read from the same iterator through boto3 and in process
    expected = streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)
    direct = InProcessStreams(streams).get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)
    # Then the records are boto3's (the creation time to the second: the wire carries it in seconds)
    assert len(direct["Records"]) == len(expected["Records"]) == 3
    for ours, theirs in zip(direct["Records"], expected["Records"], strict=True):
        ours_time = ours["dynamodb"].pop("ApproximateCreationDateTime")
        theirs_time = theirs["dynamodb"].pop("ApproximateCreationDateTime")
        assert abs((ours_time - theirs_time).total_seconds()) < 1
        assert ours == theirs
    # and a stream poller hands the function the same Lambda records from either
    mapping = {"source_arn": stream_arn, "function": "relay", "batch_size": 10, "report_batch_item_failures": True}
    shape = StreamPoller(mapping, streams=streams, sqs=None, runtime=None, region=REGION)  # type: ignore[arg-type]
    assert [shape._lambda_record(r) for r in direct["Records"]] == [
        shape._lambda_record(r) for r in expected["Records"]
    ]
    assert direct["NextShardIterator"].startswith(stream_arn)


class RefusingFirstHandle:
    """An SQS client whose first visibility change is refused (that message was deleted meanwhile)."""

    def __init__(self) -> None:
        self.changed: list[str] = []

    def get_queue_url(self, **_: Any) -> dict[str, str]:
        return {"QueueUrl": "http://127.0.0.1/123456789012/q"}

    def receive_message(self, **_: Any) -> dict[str, Any]:
        return {"Messages": [{"MessageId": f"m{n}", "ReceiptHandle": f"h{n}", "Body": "{}"} for n in range(3)]}

    def delete_message_batch(self, **_: Any) -> dict[str, Any]:
        return {"Successful": [], "Failed": []}

    def change_message_visibility(self, *, ReceiptHandle: str, **_: Any) -> dict[str, Any]:
        if ReceiptHandle == "h0":
            raise RuntimeError("ReceiptHandleIsInvalid")
        self.changed.append(ReceiptHandle)
        return {}


class FailingRuntime:
    def invoke(self, name: str, event: Any) -> Any:
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}


def test_a_refused_visibility_change_leaves_the_batch_s_other_failures_to_retry_soon() -> None:
    sqs, errors = RefusingFirstHandle(), list[Exception]()
    mapping = {
        "source_arn": "arn:aws:sqs:us-east-1:123456789012:q",
        "function": "consumer",
        "batch_size": 10,
        "report_batch_item_failures": True,
    }
    runtime: Any = FailingRuntime()
    poller = QueuePoller(mapping, sqs=sqs, runtime=runtime, region=REGION, on_error=lambda f, e: errors.append(e))
    assert poller.poll_once(wait_seconds=0) == 3
    assert sqs.changed == ["h1", "h2"]
    assert [str(e) for e in errors] == ["ReceiptHandleIsInvalid"]
