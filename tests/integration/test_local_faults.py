"""Faults on demand (infra/local/faults.py) in front of a moto server in this process, on 127.0.0.1."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError
from botocore.retries.standard import ThrottledRetryableChecker
from ecrm.core.clock import FixedClock
from ecrm.customers.logic import MergePolicy
from ecrm.customers.models import CustomerUpsert, IdentityIn
from ecrm.customers.service import CustomerService
from ecrm.customers.store import CustomerStore
from moto.server import ThreadedMotoServer

from infra.local import faults
from infra.local.faults import FaultPlan, FaultSpecError
from infra.local.pollers import QueuePoller

THROTTLED = set(getattr(ThrottledRetryableChecker, "_THROTTLED_ERROR_CODES", ()))


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ThreadedMotoServer, str]]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    yield moto, f"http://{host}:{port}"
    moto.stop()


@pytest.fixture
def plan(server: tuple[ThreadedMotoServer, str], tmp_path: Path) -> Iterator[FaultPlan]:
    """The fixture a test injects faults with: `plan.load(SPEC)`; what they hit is in `plan.records`."""
    fault_plan = FaultPlan(log_path=tmp_path / "faults.jsonl")
    faults.install(server[0], fault_plan)
    yield fault_plan
    fault_plan.clear()


def client(endpoint: str, service: str, *, attempts: int = 1) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"total_max_attempts": attempts, "mode": "standard"}, read_timeout=5),
    )


def test_a_third_of_ses_sends_are_throttled_over_a_thousand_calls(
    server: tuple[ThreadedMotoServer, str], plan: FaultPlan
) -> None:
    # Given SES v2 sends throttled on a third of calls, seeded
    _, endpoint = server
    ses = client(endpoint, "sesv2")
    ses.create_email_identity(EmailIdentity="shop@example.com")
    plan.load("sesv2:SendEmail=throttle@0.33,seed=7")
    raw = b"From: shop@example.com\r\nTo: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n"
    # When 1,000 Raw sends are made, with no client retry
    codes: list[str] = []
    for _ in range(1000):
        try:
            ses.send_email(
                FromEmailAddress="shop@example.com",
                Destination={"ToAddresses": ["a@example.com"]},
                Content={"Raw": {"Data": raw}},
            )
            codes.append("sent")
        except ClientError as exc:
            codes.append(f"{exc.response['Error']['Code']} {exc.response['ResponseMetadata']['HTTPStatusCode']}")
    # Then 33% of them were throttled, within 3 points, each in SES's own shape, and each logged
    throttled = codes.count("TooManyRequestsException 429")
    assert abs(throttled / 1000 - 0.33) <= 0.03
    assert throttled + codes.count("sent") == 1000
    assert len(plan.hits("sesv2", "SendEmail")) == throttled
    logged = [json.loads(line) for line in plan.log_path.read_text().splitlines()]  # type: ignore[union-attr]
    assert {(r["service"], r["operation"], r["fault"]) for r in logged} == {("sesv2", "SendEmail", "throttle")}
    assert sorted(r["call"] for r in logged) == sorted(r.call for r in plan.records)


def test_the_same_seed_hits_the_same_calls(server: tuple[ThreadedMotoServer, str], plan: FaultPlan) -> None:
    calls = []
    for _ in range(2):
        plan.load("sqs:ListQueues=error@0.2,seed=3")
        for _ in range(50):
            plan.decide("sqs", "ListQueues")
        calls.append([r.call for r in plan.records[-10:]])
    assert calls[0] == calls[1]
    assert len(calls[0]) == 10


@pytest.mark.parametrize(
    ("service", "call", "expected", "status"),
    [
        ("sesv2", "list_email_identities", "TooManyRequestsException", 429),
        ("dynamodb", "list_tables", "ProvisionedThroughputExceededException", 400),
        ("sqs", "list_queues", "RequestThrottled", 400),
        ("events", "list_event_buses", "ThrottlingException", 400),
        ("sns", "list_topics", "Throttling", 400),
        ("lambda", "list_functions", "TooManyRequestsException", 429),
        ("s3", "list_buckets", "SlowDown", 503),
        ("stepfunctions", "list_state_machines", "ThrottlingException", 400),
    ],
)
def test_a_throttle_is_the_services_own_and_botocore_retries_it(
    server: tuple[ThreadedMotoServer, str], plan: FaultPlan, service: str, call: str, expected: str, status: int
) -> None:
    _, endpoint = server
    operation = client(endpoint, service).meta.method_to_api_mapping[call]
    plan.load(f"{service}:{operation}=throttle#1")
    # Without retries the caller sees the service's throttling error, one botocore counts as throttling
    with pytest.raises(ClientError) as raised:
        getattr(client(endpoint, service), call)()
    error = raised.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (expected, status)
    assert expected in THROTTLED
    # With botocore's retries, the next attempt goes through
    plan.load(f"{service}:{operation}=throttle#1")
    answer = getattr(client(endpoint, service, attempts=3), call)()
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    assert [(r.service, r.operation, r.call, r.fault) for r in plan.records[-1:]] == [
        (service, operation, 1, "throttle")
    ]


@pytest.mark.parametrize(("kind", "status"), [("error", 500), ("unavailable", 503)])
def test_server_errors_are_5xx_that_botocore_retries(
    server: tuple[ThreadedMotoServer, str], plan: FaultPlan, kind: str, status: int
) -> None:
    _, endpoint = server
    plan.load(f"dynamodb:ListTables={kind}#1,sesv2:ListEmailIdentities={kind}#1")
    with pytest.raises(ClientError) as raised:
        client(endpoint, "dynamodb").list_tables()
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert client(endpoint, "sesv2", attempts=2).list_email_identities()["ResponseMetadata"]["RetryAttempts"] == 1


def test_a_timeout_holds_the_answer_past_the_clients_read_timeout(
    server: tuple[ThreadedMotoServer, str], plan: FaultPlan
) -> None:
    _, endpoint = server
    sqs = client(endpoint, "sqs", attempts=2)
    sqs_fast = boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"total_max_attempts": 2, "mode": "standard"}, read_timeout=1),
    )
    plan.load("sqs:CreateQueue=timeout:2#1")
    answer = sqs_fast.create_queue(QueueName="held")  # the first attempt timed out, the retry answered
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    assert [r.fault for r in plan.records] == ["timeout:2"]
    assert sqs.get_queue_url(QueueName="held")["QueueUrl"].endswith("/held")


def test_a_dropped_answer_was_applied(server: tuple[ThreadedMotoServer, str], plan: FaultPlan) -> None:
    _, endpoint = server
    plan.load("sqs:CreateQueue=drop#1")
    with pytest.raises(ConnectionClosedError):
        client(endpoint, "sqs").create_queue(QueueName="dropped")
    assert client(endpoint, "sqs").get_queue_url(QueueName="dropped")["QueueUrl"].endswith("/dropped")


class CountingRuntime:
    def __init__(self) -> None:
        self.bodies: list[str] = []

    def invoke(self, name: str, event: Any) -> Any:
        self.bodies += [record["body"] for record in event["Records"]]
        return {"batchItemFailures": []}


def test_a_delete_message_batch_failing_once_loses_nothing_and_processes_nothing_twice(
    server: tuple[ThreadedMotoServer, str], plan: FaultPlan
) -> None:
    # Given a queue of 25 messages drained by the local cloud's poller (its client retries as the cloud's does)
    _, endpoint = server
    sqs = client(endpoint, "sqs", attempts=2)
    url = sqs.create_queue(QueueName="deletes", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    for n in range(25):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
    runtime = CountingRuntime()
    mapping = {
        "source_arn": "arn:aws:sqs:us-east-1:123456789012:deletes",
        "function": "consumer",
        "batch_size": 10,
        "report_batch_item_failures": True,
    }
    poller = QueuePoller(mapping, sqs=sqs, runtime=runtime, region="us-east-1")  # type: ignore[arg-type]
    # When the first DeleteMessageBatch fails with a 500
    plan.load("sqs:DeleteMessageBatch=error#1")
    while poller.poll_once(wait_seconds=0):
        pass
    # Then botocore's retry deleted the batch: every message processed once, none left in the queue
    assert sorted(runtime.bodies) == sorted(f"m{n}" for n in range(25))
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == (
        "0",
        "0",
    )
    assert [(r.operation, r.call, r.fault) for r in plan.records] == [("DeleteMessageBatch", 1, "error")]


def test_a_dropped_dynamodb_transaction_creates_the_customer_once(
    server: tuple[ThreadedMotoServer, str], plan: FaultPlan
) -> None:
    # Given the customer store on the faulty server, its client retrying as boto3 does by default
    _, endpoint = server
    dynamodb = client(endpoint, "dynamodb", attempts=3)
    dynamodb.create_table(
        TableName="customers-drop",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
    )

    class Nowhere:
        def publish_all(self, events: Any, *, correlation_id: str | None = None) -> None:
            raise AssertionError("the customer store publishes through its outbox")

    service = CustomerService(
        CustomerStore(dynamodb, "customers-drop"),
        Nowhere(),
        FixedClock(datetime(2026, 11, 23, tzinfo=UTC)),
        MergePolicy(),
    )
    # When the transaction that creates a new person is applied but its answer never arrives
    plan.load("dynamodb:TransactWriteItems=drop#1")
    result = service.upsert(CustomerUpsert(source="shop", identities=[IdentityIn(type="email", value="x@example.com")]))
    # Then the retry's conditional writes found the person, and resolution attached to them: one customer
    assert [(r.operation, r.fault) for r in plan.records] == [("TransactWriteItems", "drop")]
    owners = service.store.owners_of(["email:x@example.com"])
    assert owners == {"email:x@example.com": result.customer_id}
    profiles = dynamodb.scan(
        TableName="customers-drop",
        FilterExpression="sk = :p",
        ExpressionAttributeValues={":p": {"S": "PROFILE"}},
    )["Items"]
    assert len(profiles) == 1


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("sesv2:SendEmail", "expected SERVICE:OPERATION=FAULT"),
        ("sesv2:SendEmail=explode", "unknown fault 'explode'"),
        ("sesv2:SendMail=throttle", "sesv2 has no operation 'SendMail'"),
        ("nosuch:Thing=throttle", "'nosuch' is not a boto3 service name"),
        ("sesv2:SendEmail=throttle@1.5", "above 0 and at most 1"),
        ("sqs:DeleteMessageBatch=error#0", "counted from 1"),
        ("sqs:SendMessage=crash", "crash takes lambda:"),
        ("sqs:SendMessage=drop:3", "only timeout takes"),
        ("seed=x", "whole number"),
    ],
)
def test_a_bad_spec_says_what_is_wrong_in_one_line(spec: str, says: str) -> None:
    with pytest.raises(FaultSpecError) as raised:
        FaultPlan(spec)
    assert says in str(raised.value)
    assert "\n" not in str(raised.value)


def test_crash_rules_pick_invocations() -> None:
    plan = FaultPlan("lambda:CustomersImportChunk=crash@after:40#2,seed=1")
    points = [plan.crash_point("CustomersImportChunkFn1234") for _ in range(3)]
    assert points == [None, 40, None]
    assert plan.crash_point("CustomersApi") is None
    assert [(r.service, r.operation, r.call, r.fault) for r in plan.records] == [
        ("lambda", "CustomersImportChunkFn1234", 2, "crash@after:40")
    ]
    random_points = FaultPlan("lambda:Chunk=crash@0.5,seed=4")
    chosen = [random_points.crash_point("ChunkFn") for _ in range(100)]
    assert sum(point is not None for point in chosen) == 50
    assert all(0 <= point < faults.RANDOM_CRASH_CALLS for point in chosen if point is not None)


HANDLER = """
import boto3


def handler(event, context):
    sqs = boto3.client("sqs")
    for n in range(event["calls"]):
        sqs.create_queue(QueueName=f"crash-{n}")
    return {"made": event["calls"]}
"""


def test_a_crash_rule_kills_the_sandbox_after_n_aws_calls_and_the_next_invocation_runs(
    server: tuple[ThreadedMotoServer, str], plan: FaultPlan, tmp_path: Path
) -> None:
    # Given a function in the local runtime whose first invocation crashes after its 2nd AWS call
    from infra.local.runtime import FunctionRuntime, InvocationError, LocalFunction

    _, endpoint = server
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "crashing.py").write_text(HANDLER)
    runtime = FunctionRuntime(endpoint, "us-east-1", tmp_path / "logs")
    runtime.register(
        LocalFunction(
            "CrashingFnA1B2",
            "crashing",
            "arn:aws:lambda:us-east-1:123456789012:function:crashing",
            tmp_path / "code",
            "crashing",
            {},
        )
    )
    runtime.faults = plan.load("lambda:CrashingFn=crash@after:2#1")
    sqs = client(endpoint, "sqs")
    try:
        # When it is invoked to make 4 calls, twice
        with pytest.raises(InvocationError) as raised:
            runtime.invoke("crashing", {"calls": 4})
        queues_after_crash = sorted(
            url.rsplit("/", 1)[1] for url in sqs.list_queues(QueueNamePrefix="crash-").get("QueueUrls", [])
        )
        answer = runtime.invoke("crashing", {"calls": 4})
    finally:
        runtime.stop()
    # Then the first died as Lambda reports a sandbox exit, after exactly two calls applied, and the retry ran whole
    assert raised.value.error["errorType"] == "Runtime.ExitError"
    assert queues_after_crash == ["crash-0", "crash-1"]
    assert answer == {"made": 4}
    assert [(r.service, r.operation, r.call, r.fault) for r in plan.records] == [
        ("lambda", "CrashingFnA1B2", 1, "crash@after:2")
    ]
