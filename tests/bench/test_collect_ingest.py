"""Accepted events per second per core through the collection API handler, beside the bare publish.

Workload: the demo web sessions (`ecrm_ops.collect.demo_sessions.generate(visitors=250)`: 1975 Segment
messages, each with its own `messageId`), cut into `/v1/batch` requests of 100 messages, built as
API Gateway REST proxy events (HTTP Basic auth with the source's write key) before anything is
timed. Each run has a fresh collection table, and so a fresh source and write key, so the dedupe
markers of an earlier run never turn a message into a duplicate.

Measured, one thread, each 3 times:
- `functions.collect.api.handler` over every request, the service injected as the integration tests
  do it: `CollectService(CollectStore, EventPublisher, FirehoseLakeWriter, SystemClock)` on moto's
  DynamoDB table (`pk`/`sk`, TTL `expires_at`), its custom bus `ecrm` and a Direct PUT Firehose
  stream delivering to an S3 bucket. Per request: read and validate the batch, one conditional
  `PutItem` claim per message (the store's pool of up to 16 threads; they share the interpreter
  lock, so this stays one core, and CPU time is printed beside wall time), one `PutRecordBatch`,
  `PutEvents` in tens, the confirms in `BatchWriteItem`s of 25, the answer as JSON. The write key
  costs two reads on the first request, then sits in the function's 60 s cache.
- Reference: `EventPublisher.publish_all` of the same domain events (`EVENT_FOR_TYPE[type](message=
  CollectedEvent)`, built beforehand) to the same moto bus: the floor of "just put the events on the
  bus", paying the same moto cost per `PutEvents` call as the handler does.
- The rules alone, no I/O: `read_body`, `parse_document`, `parse_batch` (validation) and
  `collected_event` + `first_occurrences` (normalisation) over the same request bodies.

moto in process is the table, the bus, the stream and the bucket, so the figures measure our code
path and botocore's (serialisation, signing) plus moto's request handling, per core: not AWS
latency. Powertools' metric lines (stdout) are written to a buffer while timed. Firehose's format
conversion (`infra.local.firehose`, as the local cloud has it) is not installed: that work is
AWS's, not the function's. Nothing here asserts on time; the counts are checked (accepted, markers,
lake lines, published), because a benchmark that dropped events would measure the wrong work.

How the cloud path scales to 10,000 events/s (default quotas as AWS documents them; the page each
figure comes from in brackets; none is measured here):
- API Gateway: one throttle per account and Region across HTTP, REST and WebSocket APIs, 10,000
  requests/s steady state with a token-bucket burst of up to 5,000 requests; 2,500 requests/s and
  1,250 burst in some Regions (e.g. Africa (Cape Town), Europe (Milan), Asia Pacific (Jakarta))
  [Amazon API Gateway quotas]. In 100-message batches 10,000 events/s is 100 requests/s; sent as
  single calls (one event per request, as analytics.js does without batching) it is 10,000
  requests/s, the whole default account quota.
- Lambda: concurrency = requests per second x average duration in seconds [Understanding Lambda
  function scaling; AWS Knowledge Center, Lambda concurrency limit increase], i.e. events/s / events
  per request x seconds per invocation (100 requests/s x 0.25 s would be 25). Default 1,000
  concurrent executions per Region [Lambda quotas]; each function adds at most 1,000 execution
  environments every 10 s [Lambda scaling behavior]. The per-request time printed below is this
  code path in moto; a real invocation adds the network round trips of its AWS calls (counted
  below), which are not measured here.
- Firehose, Direct PUT, per stream, PutRecord and PutRecordBatch combined: US East (N. Virginia),
  US West (Oregon), Europe (Ireland) 500,000 records/s, 2,000 requests/s and 5 MiB/s; the other
  listed Regions 100,000 records/s, 1,000 requests/s and 1 MiB/s; an increase scales the three
  together [Amazon Kinesis Data Firehose Quota, Firehose Developer Guide]. PutRecordBatch takes up
  to 500 records and 4 MB per call [PutRecordBatch, Amazon Data Firehose API Reference]. (The
  PutRecord API reference page still states 2,000 transactions, 5,000 records or 5 MB per second
  per stream; the account's Service Quotas console is the arbiter.) The lake writer sends one
  PutRecordBatch per request, so 10,000 events/s is 100 requests/s and 10,000 records/s; bytes
  are the tight one: the run prints the average lake record and the MiB/s it makes at 10,000/s.
- EventBridge PutEvents: 10,000 transactions/s in us-east-1, 2,400 in us-east-2, lower elsewhere,
  per account and Region [Amazon EventBridge quotas]; up to 10 entries per call [PutEvents, Amazon
  EventBridge API Reference]. 10,000 events/s is 1,000 PutEvents calls/s, sharing the quota with
  every other PutEvents caller of the account in that Region.
- DynamoDB on demand (the dedupe markers): each accepted event is two writes of an item under 1 KB
  (the conditional claim, then its confirm in a BatchWriteItem); one write request unit is one
  write of up to 1 KB, a new on-demand table sustains up to 4,000 writes/s and instantly takes up
  to double its previous peak [DynamoDB on-demand capacity mode]; the default table-level quota is
  40,000 read and 40,000 write request units/s [DynamoDB maximum throughput for on-demand tables].
  10,000 events/s is 20,000 writes/s: inside the quota, but a new table has to grow into it.
"""

from __future__ import annotations

import base64
import contextlib
import io
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from ecrm.collect import logic
from ecrm.collect.lake_records import collected_event_record
from ecrm.collect.models import EVENT_FOR_TYPE, CollectedEvent, Source, SourceIn
from ecrm.collect.service import CollectService
from ecrm.collect.store import CollectStore, FirehoseLakeWriter
from ecrm.core.clock import SystemClock
from ecrm.core.events import DomainEvent
from ecrm.core.publisher import MAX_ENTRIES_PER_CALL, EventPublisher
from ecrm_ops.collect.demo_sessions import generate
from moto import mock_aws

from functions.collect import api
from tests.bench.harness import Measurement, measure, report
from tests.samples import api_request

REGION = "us-east-1"
REPEAT = 3
VISITORS = 250  # about 2,000 messages
BATCH = 100
BUS = "ecrm"
STREAM = "ecrm-bench-collected-events"
LAKE_BUCKET = "ecrm-bench-lake"
TARGET_EVENTS_PER_SECOND = 10_000
MIB = 1024 * 1024


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_EVENTS",
        "AWS_ENDPOINT_URL_FIREHOSE",
        "AWS_ENDPOINT_URL_S3",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


def create_table(client: Any, name: str) -> None:
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
    )
    client.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})


def create_lake(s3: Any, firehose: Any) -> None:
    s3.create_bucket(Bucket=LAKE_BUCKET)
    firehose.create_delivery_stream(
        DeliveryStreamName=STREAM,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/ecrm-bench-firehose",
            "BucketARN": f"arn:aws:s3:::{LAKE_BUCKET}",
            "Prefix": "collected/",
            "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
        },
    )


def count_markers(client: Any, table: str) -> int:
    pages = client.get_paginator("scan").paginate(
        TableName=table,
        Select="COUNT",
        FilterExpression="begins_with(pk, :msg)",
        ExpressionAttributeValues={":msg": {"S": "MSG#"}},
    )
    return sum(page["Count"] for page in pages)


def drain_lake(s3: Any) -> tuple[int, int]:
    """Lines and bytes delivered to the lake bucket so far; the objects are deleted."""
    lines = size = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=LAKE_BUCKET):
        for item in page.get("Contents", []):
            data = s3.get_object(Bucket=LAKE_BUCKET, Key=item["Key"])["Body"].read()
            lines += data.count(b"\n")
            size += len(data)
            s3.delete_object(Bucket=LAKE_BUCKET, Key=item["Key"])
    return lines, size


def batch_request(messages: Sequence[dict[str, Any]], write_key: str, sent_at: str) -> dict[str, Any]:
    """A `/v1/batch` REST proxy event as a server library sends it: Basic auth, no Cognito claims."""
    event = api_request("POST", "/v1/batch", body={"batch": list(messages), "sentAt": sent_at}, groups=None)
    event["requestContext"].pop("authorizer", None)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "analytics-python/2.4.0",
        "Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode(),
    }
    event["headers"] = headers
    event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    return event


class CallCounter:
    """AWS API calls by operation (and items written by BatchWriteItem), across the claim pool's threads."""

    def __init__(self, clients: Sequence[Any]) -> None:
        self.clients = clients
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _count(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1
            if model.name == "BatchWriteItem":
                self.calls["BatchWriteItem items"] += sum(len(v) for v in params["RequestItems"].values())

    @contextlib.contextmanager
    def counting(self) -> Iterator[Counter[str]]:
        for client in self.clients:
            client.meta.events.register("before-parameter-build", self._count, unique_id="bench-call-counter")
        try:
            yield self.calls
        finally:
            for client in self.clients:
                client.meta.events.unregister("before-parameter-build", unique_id="bench-call-counter")


def logic_only(bodies: Sequence[str], source: Source, clock: SystemClock) -> int:
    """Read, validate and normalise every request body into `CollectedEvent`s; no I/O."""
    accepted = 0
    for body in bodies:
        raw = logic.read_body(body, base64_encoded=False, content_encoding=None)
        parsed = logic.parse_batch(logic.parse_document(raw))
        events, _ = logic.first_occurrences(
            logic.collected_event(m.message, source, clock.now()) for m in parsed.messages
        )
        accepted += len(events)
    return accepted


def print_rates(events: int, rows: list[Measurement], reference: Measurement, cpu_ms: list[float]) -> str:
    """Events per second at each median, as a multiple of the reference's rate."""
    reference_rate = events / (reference.median / 1000)
    width = max(len(m.name) for m in [reference, *rows]) + 2
    lines = [f"  events/s over {events} events (at the median)"]
    for m in [reference, *rows]:
        rate = events / (m.median / 1000)
        ratio = "reference" if m is reference else f"x{rate / reference_rate:.3f} of the reference's rate"
        lines.append(f"  {m.name:{width}} {rate:>10,.0f} events/s   {ratio}")
    handler_wall = sorted(rows[0].samples)[len(rows[0].samples) // 2]
    handler_cpu = sorted(cpu_ms)[len(cpu_ms) // 2]
    lines.append(
        f"  handler CPU time (process, all threads) {handler_cpu:.0f} ms of {handler_wall:.0f} ms wall "
        f"(x{handler_cpu / handler_wall:.2f}): {events / (handler_cpu / 1000):,.0f} events per CPU-second"
    )
    text = "\n".join(lines)
    print(text)
    return text


def test_accepted_events_per_second_per_core(aws: None, lambda_context: Any) -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    events_client = boto3.client("events", region_name=REGION)
    firehose = boto3.client("firehose", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    events_client.create_event_bus(Name=BUS)
    create_lake(s3, firehose)

    messages = generate(visitors=VISITORS).messages
    chunks = [messages[start : start + BATCH] for start in range(0, len(messages), BATCH)]
    sent_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    total = len(messages)
    clock = SystemClock()

    # The reference's domain events and the logic's bodies, built once, untimed.
    bench_source = logic.new_source(SourceIn(name="web-bench"), logic.new_write_key(), clock.now())
    bodies = [json.dumps({"batch": chunk, "sentAt": sent_at}) for chunk in chunks]
    collected: list[CollectedEvent] = []
    for body in bodies:
        parsed = logic.parse_batch(logic.parse_document(body.encode()))
        collected.extend(logic.collected_event(m.message, bench_source, clock.now()) for m in parsed.messages)
    domain: list[DomainEvent] = [EVENT_FOR_TYPE[e.type](message=e) for e in collected]

    tables = (f"collect-bench-{n}" for n in itertools.count())
    counter = CallCounter([dynamodb, events_client, firehose])
    outcome: dict[str, Any] = {"handler_runs": [], "cpu_ms": []}

    def fresh_service() -> tuple[str, CollectService, list[dict[str, Any]]]:
        table = next(tables)
        create_table(dynamodb, table)
        service = CollectService(
            CollectStore(dynamodb, table),
            EventPublisher(BUS, events_client),
            FirehoseLakeWriter(firehose, STREAM, collected_event_record),
            SystemClock(),
        )
        source = service.create_source(SourceIn(name=f"web-{table}"))
        return table, service, [batch_request(chunk, source.write_key, sent_at) for chunk in chunks]

    def run_handler(service: CollectService, requests: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        deps = api.Deps(service)
        with contextlib.redirect_stdout(io.StringIO()):  # Powertools' metric lines
            return [api.handler(request, lambda_context, deps) for request in requests]

    def handler() -> float:
        table, service, requests = fresh_service()
        cpu_started = time.process_time()
        started = time.perf_counter()
        answers = run_handler(service, requests)
        elapsed = (time.perf_counter() - started) * 1000
        outcome["cpu_ms"].append((time.process_time() - cpu_started) * 1000)
        bodies_back = [json.loads(a["body"]) for a in answers]
        lines, size = drain_lake(s3)
        outcome["handler_runs"].append(
            {
                "status": sorted({a["statusCode"] for a in answers}),
                "accepted": sum(b["accepted"] for b in bodies_back),
                "duplicates": sum(b["duplicates"] for b in bodies_back),
                "markers": count_markers(dynamodb, table),
                "lake_lines": lines,
                "lake_bytes": size,
            }
        )
        dynamodb.delete_table(TableName=table)
        return elapsed

    def reference() -> None:
        receipt = EventPublisher(BUS, events_client).publish_all(domain, correlation_id="bench")
        outcome["published"] = len(receipt.published_ids)

    def rules_only() -> None:
        outcome["logic_events"] = logic_only(bodies, bench_source, clock)

    # Warm up (untimed): validators, Powertools' cold start, moto's first calls. The handler's
    # warm-up also counts the AWS calls per request.
    logic_only(bodies[:2], bench_source, clock)
    EventPublisher(BUS, events_client).publish_all(domain[:20])
    table, service, requests = fresh_service()
    with counter.counting() as calls:
        warm = run_handler(service, requests[:3])
    warm_events = sum(json.loads(a["body"])["accepted"] for a in warm)
    dynamodb.delete_table(TableName=table)
    drain_lake(s3)

    baseline = measure("publish_all to the bus (reference)", reference, repeat=REPEAT)
    handler_run = measure("api.handler /v1/batch", handler, repeat=REPEAT)
    logic_run = measure("rules only, no I/O", rules_only, repeat=REPEAT)

    report(
        f"Collect: accepted events through the API handler, one thread, moto in process "
        f"({total} events in {len(chunks)} requests of up to {BATCH}; ms per pass over all events)",
        [handler_run, logic_run],
        baseline,
    )
    print_rates(total, [handler_run, logic_run], baseline, outcome["cpu_ms"])
    print(
        "  note: moto in process is the table, the bus, the Firehose stream and its bucket, so these "
        "figures measure our code path (per-core CPU: botocore, moto, our logic), not AWS latency"
    )

    runs = outcome["handler_runs"]
    per_request_ms = handler_run.median / len(chunks)
    lake_bytes_per_event = runs[0]["lake_bytes"] / runs[0]["lake_lines"]
    per_100 = {name: 100 * count / warm_events for name, count in sorted(calls.items())}
    target = TARGET_EVENTS_PER_SECOND

    def at_target(*names: str) -> str:
        return f"{sum(per_100.get(n, 0.0) for n in names) * target / 100:,.0f}"

    requests_per_second = target / BATCH
    print(
        "  AWS calls per 100 accepted events (handler warm-up; the first request pays the key lookup): "
        + ", ".join(f"{name} {count:.1f}" for name, count in per_100.items())
        + f"; the reference makes {100 / MAX_ENTRIES_PER_CALL:.1f} PutEvents calls per 100 events and nothing else"
    )
    print(
        f"  at {target:,} events/s in requests of {BATCH}: {requests_per_second:,.0f} API requests/s; "
        f"{at_target('PutEvents')} PutEvents calls/s; {at_target('PutRecordBatch')} PutRecordBatch calls/s "
        f"carrying {target * lake_bytes_per_event / MIB:.2f} MiB/s (lake record {lake_bytes_per_event:.0f} B "
        f"on average); {at_target('PutItem', 'BatchWriteItem items')} DynamoDB item writes/s; Lambda "
        f"concurrency = {requests_per_second:,.0f} requests/s x seconds per invocation (this code path in "
        f"moto: {per_request_ms:.1f} ms per request -> {requests_per_second * per_request_ms / 1000:.1f}, "
        "before any network time)"
    )

    for run in runs:
        assert run["status"] == [200]
        assert run["accepted"] == run["markers"] == run["lake_lines"] == total
        assert run["duplicates"] == 0
    assert outcome["published"] == outcome["logic_events"] == len(domain) == total
