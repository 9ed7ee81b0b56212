"""SQS's visibility timeouts and delays on the local clock (`infra.local.sqs_clock`), and the queue poller leaving
a failed record's return to the function that chose it, as the Lambda service does.

On moto's server in this process, as the local cloud runs it: a test of a wait moves the clock instead of
sleeping, and a record a function asked back in five minutes is not handed again a second later.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from moto.sqs.models import Message

from infra.local import sqs_clock
from infra.local.clock import LocalClock
from infra.local.in_process_clients import InProcessSqs, visibility_deadlines
from infra.local.pollers import QueuePoller

REGION = "us-east-1"


@pytest.fixture(scope="module")
def sqs() -> Iterator[Any]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield boto3.client(
            "sqs",
            endpoint_url=f"http://{host}:{port}",
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
    finally:
        server.stop()


@pytest.fixture
def clock() -> Iterator[LocalClock]:
    local = LocalClock()
    sqs_clock.install(local.now)
    try:
        yield local
    finally:
        sqs_clock.uninstall()


def queue(sqs: Any, name: str) -> str:
    return str(sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30"})["QueueUrl"])


def receive(sqs: Any, url: str) -> list[dict[str, Any]]:
    return list(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", []))


def test_a_record_asked_back_later_comes_when_the_clock_passes_that_time(sqs: Any, clock: LocalClock) -> None:
    # Given a record received, and its consumer asking for it back in five minutes (a backoff)
    url = queue(sqs, "backoff")
    sqs.send_message(QueueUrl=url, MessageBody="retry me")
    (record,) = receive(sqs, url)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=record["ReceiptHandle"], VisibilityTimeout=300)
    # When the clock moves four minutes, then past the five
    clock.advance(timedelta(minutes=4))
    early = receive(sqs, url)
    clock.advance(timedelta(minutes=1, seconds=1))
    # Then it is not handed before its time, and is at once after it, with no real wait
    assert early == []
    assert [(m["Body"], m["ReceiptHandle"] != record["ReceiptHandle"]) for m in receive(sqs, url)] == [
        ("retry me", True)
    ]


def test_a_delayed_message_arrives_when_the_clock_passes_its_delay(sqs: Any, clock: LocalClock) -> None:
    url = queue(sqs, "delayed")
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=600)
    before = receive(sqs, url)
    delayed = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    clock.advance(timedelta(minutes=10, seconds=1))
    assert (before, delayed["Attributes"]["ApproximateNumberOfMessagesDelayed"]) == ([], "1")
    assert [m["Body"] for m in receive(sqs, url)] == ["later"]


def test_a_batch_in_flight_stays_invisible_however_far_the_clock_moves(sqs: Any, clock: LocalClock) -> None:
    # Given a record a poller received (30 s visibility) and is handing to its function
    url = queue(sqs, "in-flight")
    sqs.send_message(QueueUrl=url, MessageBody="busy")
    (record,) = receive(sqs, url)
    with sqs_clock.in_flight([record["ReceiptHandle"]]):
        # When the clock moves a day meanwhile
        clock.advance(timedelta(days=1))
        # Then no other consumer is handed it
        during = receive(sqs, url)
    # And once the poller settled nothing of it, its visibility (long past) lets it go again
    assert during == []
    assert [m["Body"] for m in receive(sqs, url)] == ["busy"]


def test_uninstalled_the_queues_count_wall_time_again(sqs: Any) -> None:
    local = LocalClock()
    sqs_clock.install(local.now)
    sqs_clock.uninstall()
    assert {name: Message.__dict__[name] for name in sqs_clock.MOTO} == sqs_clock.MOTO
    url = queue(sqs, "wall")
    sqs.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=60)
    local.advance(timedelta(minutes=5))
    assert receive(sqs, url) == []


class BackingOffRuntime:
    """A function failing its whole batch, which asks for its first record back in five minutes itself."""

    def __init__(self, sqs: Any, url: str) -> None:
        self.sqs, self.url = sqs, url

    def invoke(self, name: str, event: dict[str, Any]) -> dict[str, Any]:
        first = event["Records"][0]
        self.sqs.change_message_visibility(
            QueueUrl=self.url, ReceiptHandle=first["receiptHandle"], VisibilityTimeout=300
        )
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "over-http"])
def test_the_poller_leaves_a_failed_records_return_to_the_function_that_chose_it(
    sqs: Any, clock: LocalClock, in_process: bool
) -> None:
    # Given two records, a function that fails both and asks for the first back in five minutes
    name = f"polled-{in_process}"
    url = queue(sqs, name)
    for n in range(2):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": n}))
    mapping = {
        "source_arn": f"arn:aws:sqs:{REGION}:123456789012:{name}",
        "function": "consumer",
        "batch_size": 10,
        "report_batch_item_failures": True,
    }
    client = InProcessSqs(sqs, region=REGION) if in_process else sqs
    poller = QueuePoller(mapping, sqs=client, runtime=BackingOffRuntime(sqs, url), region=REGION, retry_delay=0)  # type: ignore[arg-type]
    # When the poller hands them over once
    assert poller.poll_once(wait_seconds=0) == 2
    # Then the other record is retried at once (the local cloud's short retry), the first only in five minutes
    assert [json.loads(m["Body"])["n"] for m in receive(sqs, url)] == [1]
    clock.advance(timedelta(minutes=5, seconds=1))
    assert 0 in [json.loads(m["Body"])["n"] for m in receive(sqs, url)]


def test_visibility_deadlines_of_unknown_queues_and_handles_are_empty(sqs: Any) -> None:
    url = queue(sqs, "deadlines")
    assert visibility_deadlines(url, REGION, ["no-such-handle"]) == {}
    assert visibility_deadlines(url.replace("deadlines", "gone"), REGION, ["h"]) == {}
