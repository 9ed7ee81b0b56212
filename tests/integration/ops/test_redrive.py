"""`ecrm redrive` against SQS in process (moto): it moves dead letters back, and names what it cannot do.

The explicit `--aws` path runs here, on moto's AWS; without it and without a local cloud the command
refuses (tests/unit/ops/test_cli_mistakes.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result
from ecrm_ops.cli import main
from moto import mock_aws

import infra.local.state

REGION = "us-east-1"


@pytest.fixture
def sqs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setattr(infra.local.state, "STATE_FILE", tmp_path / "no-cloud" / "state.json")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        client = boto3.client("sqs", region_name=REGION)
        dlq = client.create_queue(QueueName="orders-dlq")["QueueUrl"]
        arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        client.create_queue(
            QueueName="orders",
            Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "3"})},
        )
        client.create_queue(QueueName="plain")
        client.create_queue(QueueName="returns-dlq")
        for n in range(3):
            client.send_message(QueueUrl=dlq, MessageBody=json.dumps({"n": n}))
        yield client


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["redrive", *args], prog_name="ecrm")


def test_redrive_on_aws_moves_the_dead_letters_back_when_asked_explicitly(sqs: Any) -> None:
    result = run("orders-dlq", "--aws")

    assert result.exit_code == 0, result.output
    assert "moved 3 record(s)" in result.output
    assert f"(AWS, {REGION})" in result.output
    source = sqs.get_queue_url(QueueName="orders")["QueueUrl"]
    bodies = {m["Body"] for m in sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10)["Messages"]}
    assert bodies == {json.dumps({"n": n}) for n in range(3)}


def test_a_part_of_the_name_finds_the_queue_and_its_dead_letter_queue(sqs: Any) -> None:
    # CDK names queues `<Stack>-<Id>-<hash>`: a part of the name is what an operator knows
    result = run("ORDERS", "--aws", "--max-messages", "2")

    assert result.exit_code == 0, result.output
    assert "moved 2 record(s)" in result.output


def test_a_part_that_matches_several_queues_names_them(sqs: Any) -> None:
    result = run("dlq", "--aws")

    assert result.exit_code == 1
    assert "Error: 2 queues match 'dlq': orders-dlq, returns-dlq" in result.stderr


def test_an_unknown_queue_is_named_with_the_dead_letter_queues_there_are(sqs: Any) -> None:
    result = run("order-dlq", "--aws")

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert f"Error: no queue named 'order-dlq'; dead-letter queues: orders-dlq (AWS, {REGION})" in result.stderr


def test_a_queue_without_dead_letters_is_refused_in_one_line(sqs: Any) -> None:
    result = run("plain", "--aws")

    assert result.exit_code == 1
    assert "plain is neither a dead-letter queue nor a queue with one" in result.stderr
