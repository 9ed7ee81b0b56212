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
