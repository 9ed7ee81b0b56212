"""The local cloud's faster moto paths keep SQS retention and EventBridge transformation semantics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.utils import unix_time
from moto.events.utils import EventTemplateParser
from moto.sqs.models import Queue, sqs_backends

from infra.local import moto_hot_paths

REGION = "us-east-1"


@pytest.fixture
def sqs() -> Iterator[Any]:
    moto_hot_paths.install()
    with mock_aws():
        yield boto3.client("sqs", region_name=REGION)


def test_receiving_never_computes_every_queue_attribute(sqs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    for n in range(20):
        sqs.send_message(QueueUrl=url, MessageBody=str(n))

    def refuse(self: Queue) -> dict[str, Any]:
        raise AssertionError("a receive computed every attribute of the queue")

    monkeypatch.setattr(Queue, "attributes", property(refuse))
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(received) == 10


def test_queue_attributes_are_moto_s_own_in_every_state(sqs: Any) -> None:
    fifo = sqs.create_queue(QueueName="f.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})[
        "QueueUrl"
    ]
    url = sqs.create_queue(QueueName="mixed", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    for n in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=f"ready {n}")
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=120)
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2)
    sqs.send_message(QueueUrl=fifo, MessageBody="one", MessageGroupId="g")
    backend = sqs_backends["123456789012"][REGION]
    for name in ("mixed", "f.fifo"):
        queue = backend.get_queue(name)
        ours = moto_hot_paths.queue_attributes(queue)
        assert ours == moto_hot_paths.MOTO_QUEUE_ATTRIBUTES.fget(queue)  # type: ignore[misc]
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesDelayed"]) == ("3", "1")
    assert counts["ApproximateNumberOfMessagesNotVisible"] == "2"


def test_a_message_past_the_retention_period_is_not_received(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="short", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="old")
    backend = sqs_backends["123456789012"][REGION]
    (message,) = backend.get_queue("short")._messages
    message.sent_timestamp = int((unix_time() - 50) * 1000)
    assert backend.is_message_valid_based_on_retention_period("short", message)
    message.sent_timestamp = int((unix_time() - 61) * 1000)
    assert not backend.is_message_valid_based_on_retention_period("short", message)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)


def test_input_transformation_selects_the_same_values_from_cached_paths() -> None:
    moto_hot_paths.install()
    paths = {"kind": "$.detail-type", "who": "$.detail.customer_id"}
    template = '{"kind": "<kind>", "who": "<who>"}'
    for customer in ("cus_1", "cus_2"):
        event: Any = {
            "detail-type": "CustomerCreated",
            "detail": {"customer_id": customer},
            "ingestion-time": "2026-12-01T00:00:00Z",
        }
        assert EventTemplateParser.parse(template, paths, event) == {"kind": "CustomerCreated", "who": customer}


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    moto_hot_paths.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName="t",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "g")],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "gsi1",
                    "KeySchema": [
                        {"AttributeName": "g", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
        for pk in ("a", "b", "c"):
            for n in range(7):
                item = {"pk": {"S": pk}, "sk": {"S": f"{'X' if n % 2 else 'Y'}#{n}"}, "n": {"N": str(n)}}
                client.put_item(TableName="t", Item=item | ({"g": {"S": "even"}} if n % 2 == 0 else {}))
        yield client


def _all_pages(client: Any, **kwargs: Any) -> list[tuple[str, str]]:
    keys = []
    for page in client.get_paginator("query").paginate(TableName="t", **kwargs):
        keys += [(item["pk"]["S"], item["sk"]["S"]) for item in page["Items"]]
    return keys


def test_a_key_query_reads_its_partition_with_moto_s_semantics(dynamodb: Any) -> None:
    b = {":p": {"S": "b"}}
    assert _all_pages(dynamodb, KeyConditionExpression="pk = :p", ExpressionAttributeValues=b) == [
        ("b", f"X#{n}") for n in (1, 3, 5)
    ] + [("b", f"Y#{n}") for n in (0, 2, 4, 6)]
    assert _all_pages(
        dynamodb,
        KeyConditionExpression="pk = :p AND begins_with(sk, :x)",
        ExpressionAttributeValues=b | {":x": {"S": "Y#"}},
        ScanIndexForward=False,
        PaginationConfig={"PageSize": 2},
    ) == [("b", f"Y#{n}") for n in (6, 4, 2, 0)]
    assert _all_pages(
        dynamodb,
        KeyConditionExpression="pk = :p",
        FilterExpression="n > :n",
        ExpressionAttributeValues=b | {":n": {"N": "4"}},
    ) == [("b", "X#5"), ("b", "Y#6")]
    assert _all_pages(dynamodb, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "zz"}}) == []
    on_index = _all_pages(
        dynamodb, IndexName="gsi1", KeyConditionExpression="g = :g", ExpressionAttributeValues={":g": {"S": "even"}}
    )
    assert sorted(on_index) == sorted((pk, f"Y#{n}") for pk in "abc" for n in (0, 2, 4, 6))
    assert len(dynamodb.scan(TableName="t")["Items"]) == 21


# -- request dispatch ---------------------------------------------------------------------------
def test_dispatch_answers_as_moto_does_with_its_work_done_once() -> None:
    import inspect

    import moto.backends
    import moto.core.responses
    from moto.core.utils import method_names_from_class
    from moto.dynamodb.responses import DynamoHandler
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.utils import boto_client

    # Given what moto itself answers (read before the patches go in)
    modules = list(moto_hot_paths._moto_list_of_moto_modules())
    hosts = [
        "dynamodb.us-east-1.amazonaws.com",
        "sqs.us-east-1.amazonaws.com",
        "events.eu-west-1.amazonaws.com",
        "states.us-east-1.amazonaws.com",
        "s3.amazonaws.com",
        "unknown.example.com",
    ]
    dispatcher = DomainDispatcherApplication(create_app=lambda backend: None)  # type: ignore[arg-type,return-value]
    backends = {host: moto_hot_paths._moto_backend_for_host(dispatcher, host) for host in hosts}
    # (the patched functions keep moto's signatures: a moto upgrade that changes them fails here)
    assert list(inspect.signature(moto_hot_paths._moto_boto_client_for).parameters) == [
        "region",
        "service",
        "state_credentials",
    ]

    # When the patches are installed
    moto_hot_paths.install()

    # Then every answer is moto's, and kept
    assert list(moto.backends.list_of_moto_modules()) == modules
    assert {host: dispatcher.get_backend_for_host(host) for host in hosts} == backends
    assert moto.core.responses.method_names_from_class(DynamoHandler) == method_names_from_class(DynamoHandler)
    assert lambda_eval_utils.boto_client_for is moto_hot_paths.boto_client_for  # type: ignore[attr-defined]
    assert boto_client.boto_client_for is moto_hot_paths._moto_boto_client_for
    first = moto_hot_paths.boto_client_for("us-east-1", "lambda")
    assert moto_hot_paths.boto_client_for("us-east-1", "lambda") is first
    assert moto_hot_paths.boto_client_for("eu-west-1", "lambda") is not first
    assert moto_hot_paths.boto_client_for("us-east-1", "lambda", {"AccessKeyId": "x"}) is not first
