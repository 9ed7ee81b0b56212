"""What a marketing email costs in infrastructure, measured on the local cloud and priced at list prices.

Workload: ECRM_BENCH_COST_EMAILS customers (default 100) who granted email marketing, already warm (a first
batch of ten went through every function, so no cold start is counted); then one campaign chunk's worth of
marketing emails is handed to broadcast's bulk request function, as a campaign run does, and followed until
every message is `delivered` and every queue is empty: the request, the outbox relay, the dispatcher with
the policy and the customer store's contacts function, the email sender, SES's send and delivery events
through the feedback queue, broadcast's outcome counter (the stream's tumbling windows) and every consumer of the
message's events and counts (the customer store's timeline, insights' touches and live counters, campaigns' arm
counters: each message's step names an arm of an A/B run, as a campaign's does, analysis' behaviour). The two
counting consumers' queues are held while the emails go through and drained, in batches of ten, once
broadcast's last window of counts is published (`held_counting_pollers`).

Measured, for the emails only (the bench's own reads use a credential of their own and are left out):
- every AWS call the functions and the event source mappings made, by service and operation, counted in
  front of the moto server (a receive that returned nothing is idle polling, a fixed cost per queue, not a
  cost per email: counted apart); EventBridge PutEvents by entries; SQS messages EventBridge rules delivered;
- DynamoDB read and write units, from each request's and answer's item sizes as DynamoDB counts them
  (attribute names and values; on-demand rounding: writes per KB, reads per 4 KB, transactions twice), by
  operation and by the kind of item written; the writes sized as their request JSON are printed beside
  (the way of the figures published before, an overestimate: a JSON doc inside the JSON request has its
  quotes escaped);
- Lambda invocations and CPU milliseconds per function (the sandbox processes' user + system time), and the AWS
  calls each function made (the local runtime names the function in the SDK's user agent).

Priced at us-east-1 list prices as published in 2025 (the dates are in PRICES): the result printed beside
SES's own $100 per million emails, as a share (the goal: under 20%). Billed Lambda duration is the CPU time
plus IO_WAIT_MS per AWS call a function made (a round trip inside the region, during which the function waits,
billed, at the calling function's memory); the event source mappings' own calls (SQS receives and deletes,
stream reads) are Lambda's pollers, not a function's billed time: their requests are priced as SQS requests,
stream reads by Lambda are free.
Nothing asserts on cost or time; the delivered count is checked.

Printed twice: as measured, and modelled at a campaign's pace. The local pollers receive whatever a queue holds
the moment they ask, so a hundred emails trickling through make batches of one or two, each its own receive,
delete and invocation; Lambda's SQS pollers wait up to the mapping's batching window (1 s on every consumer
here) for a batch to fill. The model keeps every measured count but each polled queue's receives, deletes and
invocations, which it recomputes from the messages the queue received per email at the batch a campaign
sending SEND_RATE emails a second fills: min(batch size, messages a second x window / POLLERS); each stream
mapping's invocations, at most Lambda's four reads a second of a shard; the guard's count a sender writes once
per batch (DELIV/), at the sender's modelled batches; and the pacer's window (PACE/), once per batch and
one-second window the batch spans at AWS's pace (its emails' CPU and calls at IO_WAIT_MS: the local cloud's
slower sends span more windows, each a write). The other write units, the reads and the duration stay as
measured.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from ecrm_ops.tour.context import TourContext, expect, wait_for

from infra.local.cloud import LocalCloud
from infra.local.faults import identify
from infra.local.pollers import QueuePoller, StreamPoller
from infra.local.template import REGION
from tests.bench.dynamodb_units import read_units, read_units_by_item, units_by_item, wire_bytes, write_units

EMAILS = int(os.environ.get("ECRM_BENCH_COST_EMAILS", "100"))
WARM_UP = 10
# Bytes of HTML each email carries besides its sentence (0: the short body of the figures in the README); a
# real campaign's HTML is tens of KB, which each write of an item holding it pays for per KB.
HTML_BYTES = int(os.environ.get("ECRM_BENCH_COST_HTML_BYTES", "0"))
PROBE_KEY = "benchprobe"  # the bench's own calls carry this access key and are not counted
SERVICES = ["dynamodb", "dynamodbstreams", "sqs", "events", "sesv2", "lambda", "sns", "kms", "s3", "logs"]
IO_WAIT_MS = 10.0
APP_ID = re.compile(r"app/(\S+)")  # the SDK's user agent names the function (the local runtime sets it)
# Calls Lambda's event source mappings make, outside any function's billed duration.
POLLER_CALLS = frozenset(
    {
        ("sqs", "ReceiveMessage"),
        ("sqs", "DeleteMessageBatch"),
        ("dynamodbstreams", "GetRecords"),
        ("dynamodbstreams", "GetShardIterator"),
        ("dynamodbstreams", "DescribeStream"),
    }
)
# The model's campaign: emails sent a second (a million in under three hours), Lambda's initial SQS pollers per
# queue (the batch a queue fills is shared between them) and the consumers' batching window (the construct's).
SEND_RATE = float(os.environ.get("ECRM_BENCH_COST_SEND_RATE", "100"))
POLLERS = 5
BATCHING_WINDOW_S = 1.0
# Lambda reads each shard of a stream four times a second; DynamoDB splits a stream's shards with the table's
# partitions (about a thousand writes a second each).
STREAM_POLLS_PER_SECOND = 4
STREAM_WRITES_PER_SHARD = 1000
# Items a sender writes once per batch, whatever its size: the pacer's window count, the guard's hourly sends.
PER_SENDER_BATCH = ("PACE/", "DELIV/")
# us-east-1 list prices (USD), as published in 2025.
PRICES = {
    "lambda_request": 0.20 / 1e6,  # per invocation
    "lambda_gb_second_arm": 0.0000133334,  # per GB-second, arm64 (the platform's architecture)
    "sqs_request": 0.40 / 1e6,  # standard queue, per 64 KB request, beyond the free tier
    "eventbridge_event": 1.00 / 1e6,  # custom events put, per 64 KB entry; AWS services' events are free
    "dynamodb_wru": 0.625 / 1e6,  # on-demand write request unit (after the 2024-11-01 price cut)
    "dynamodb_rru": 0.125 / 1e6,  # on-demand read request unit
    "ses_email": 0.10 / 1000,  # SES outbound email: $100 per million
}


class Calls:
    """A WSGI layer in front of moto counting each AWS call (and DynamoDB's units) not made by the bench."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.counting = False
        self.calls: Counter[tuple[str, str]] = Counter()
        self.idle_receives = 0
        self.put_entries = 0
        self.received = 0  # messages our consumers received
        self.received_by_queue: Counter[str] = Counter()  # messages, by queue URL's name
        self.polls_by_queue: Counter[str] = Counter()  # receives that returned messages, and deletes, by queue
        self.enqueued = 0  # messages our functions sent (the rest reached the queues from rules and topics)
        self.rru = 0.0
        self.wru = 0.0
        self.wru_wire = 0.0  # the same writes sized as their request JSON (the earlier published figures' way)
        self.wru_by_item: dict[str, float] = {}  # write units by the kind of item written (its key's prefix)
        self.wru_by: dict[str, float] = {}  # write units by operation: where the largest cost comes from
        self.rru_by_item: dict[str, float] = {}  # read units by the kind of item read
        self.calls_by_caller: Counter[str] = Counter()  # AWS calls made inside functions, by function (logical id)
        self.operations_by_caller: dict[str, Counter[str]] = {}  # and by operation, for where a function's calls go
        self.caller_memory: dict[str, int] = {}  # a function's memory (MB) by the name its calls carry
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not self.counting or PROBE_KEY in environ.get("HTTP_AUTHORIZATION", ""):
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        found = identify(environ, SERVICES, body)
        answer = b"".join(self.app(environ, start_response))
        if found is not None:
            caller = APP_ID.search(environ.get("HTTP_USER_AGENT", ""))
            self._count(found[0], found[1], body, answer, caller.group(1) if caller else "")
        return [answer]

    def _count(self, service: str, operation: str, body: bytes, answer: bytes, caller: str) -> None:
        request = _json(body)
        with self._lock:
            if (service, operation) not in POLLER_CALLS:
                self.calls_by_caller[caller or "(the local cloud)"] += 1
                self.operations_by_caller.setdefault(caller or "(the local cloud)", Counter())[operation] += 1
            if service == "sqs" and operation == "ReceiveMessage":
                received = len(_json(answer).get("Messages") or [])
                if not received:
                    self.idle_receives += 1
                    return
                self.received += received
                self.received_by_queue[_queue(request)] += received
            if service == "sqs" and operation in {"ReceiveMessage", "DeleteMessageBatch", "DeleteMessage"}:
                self.polls_by_queue[_queue(request)] += 1
            if service == "sqs" and operation in {"SendMessage", "SendMessageBatch"}:
                self.enqueued += len(request.get("Entries") or [None])
            self.calls[(service, operation)] += 1
            if service == "events" and operation == "PutEvents":
                self.put_entries += len(request.get("Entries") or [])
            if service == "dynamodb":
                self.rru += read_units(operation, request, _json(answer))
                for kind, read in read_units_by_item(operation, request, _json(answer)):
                    self.rru_by_item[kind] = self.rru_by_item.get(kind, 0.0) + read
                units = write_units(operation, request)
                self.wru += units
                self.wru_by[operation] = self.wru_by.get(operation, 0.0) + units
                self.wru_wire += write_units(operation, request, wire_bytes)
                for kind, item_units in units_by_item(operation, request):
                    self.wru_by_item[kind] = self.wru_by_item.get(kind, 0.0) + item_units


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _queue(request: dict[str, Any]) -> str:
    return str(request.get("QueueUrl") or "").rsplit("/", 1)[-1]


def cpu_ms(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def function_cpu(cloud: LocalCloud) -> dict[str, float]:
    runtime = cloud.runtime
    return {name: sum(cpu_ms(w.process.pid) for w in workers) for name, workers in dict(runtime._workers).items()}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    # The pollers' receives, deletes and stream reads through the server, where `Calls` counts them.
    local = LocalCloud(state_dir=tmp_path_factory.mktemp("cost-cloud"), pollers_over_http=True)
    local.start()
    yield local
    local.stop()


def probe(cloud: LocalCloud, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=cloud.endpoint_url,
        region_name=REGION,  # type: ignore[call-overload]
        aws_access_key_id=PROBE_KEY,
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=300),  # a loaded machine
    )


def customers(tour: TourContext, count: int) -> list[str]:
    staff = tour.token(group="marketer")
    consent = {"channel": "email", "purpose": "marketing", "state": "granted"}
    proof = {"source": "web", "captured_at": "2026-11-20T09:00:00+00:00"}
    made = []
    for n in range(count):
        body = {
            "source": "web",
            "identities": [{"type": "email", "value": f"cost-{n:05d}@example.org"}],
            "consents": [consent | {"proof": proof}],
        }
        made.append(created(tour, staff, body))
    return made


def created(tour: TourContext, staff: str, body: dict[str, Any]) -> str:
    """The customer, asked again after a gateway timeout (a loaded machine); found by its email if it was made."""
    answer = wait_for(
        lambda: (found := tour.call("POST", "/customers", token=staff, body=body)).status < 500 and found,
        timeout=300,
        interval=1,
        what="a customer created",
    )
    if answer.status != 201:
        email = body["identities"][0]["value"]
        answer = expect(tour.call("GET", f"/customers?email={email}", token=staff), 200, "customer by email")
    return str(answer.body["customer_id"])


def hand_over(cloud: LocalCloud, campaign: str, customer_ids: list[str]) -> list[str]:
    """One bulk request, as a campaign run's chunk hands it over; answers the message ids."""
    requests = [
        {
            "customer_id": c,
            "purpose": "marketing",
            "channel": "email",
            "source": f"campaign:{campaign}",
            "step": f"r1.{'ab'[n % 2]}",  # a run's step names the arm (A/B): campaigns' outcomes count each event
            "content": {
                "email": {
                    "subject": "{{ first_name | default('Hello') }}, the winter sale starts tomorrow",
                    "text": "20% off until Sunday.",
                    "html": "<p><b>20%</b> off until Sunday.</p>" + _padding(HTML_BYTES),
                }
            },
        }
        for n, c in enumerate(customer_ids)
    ]
    ids: list[str] = []
    function = cloud.physical_id("AWS::Lambda::Function", "BroadcastRequestMessages")
    for start in range(0, len(requests), 100):
        payload = json.dumps({"requests": requests[start : start + 100]}).encode()
        answer = json.loads(probe(cloud, "lambda").invoke(FunctionName=function, Payload=payload)["Payload"].read())
        ids.extend(answer["message_ids"])
    return ids


def _padding(size: int) -> str:
    """Plausible markup of about `size` bytes (a product grid's rows), no template syntax in it."""
    row = '<tr><td><img src="https://shop.example.com/p/1.jpg" alt="A product"></td><td>From 19.99</td></tr>'
    return f"<table>{row * (size // len(row))}</table>" if size else ""


def delivered(cloud: LocalCloud, ids: list[str]) -> int:
    table = cloud.physical_id("AWS::DynamoDB::Table", "BroadcastTable")
    dynamodb, count = probe(cloud, "dynamodb"), 0
    for start in range(0, len(ids), 100):
        keys = [{"pk": {"S": f"MSG#{i}"}, "sk": {"S": "MESSAGE"}} for i in ids[start : start + 100]]
        items = dynamodb.batch_get_item(RequestItems={table: {"Keys": keys}})["Responses"][table]
        count += sum(i["status"]["S"] == "delivered" for i in items)
    return count


def queues_empty(cloud: LocalCloud) -> bool:
    sqs = probe(cloud, "sqs")
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    for url in sqs.list_queues(MaxResults=1000).get("QueueUrls", []):
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        if any(int(counts[n]) for n in names):
            return False
    return True


def run_emails(
    cloud: LocalCloud, campaign: str, customer_ids: list[str], *, held: Sequence[QueuePoller] = ()
) -> list[str]:
    """Hand the emails over and follow them to the end; `held` (stopped) poll their queues once all are delivered
    and broadcast's last window of counts has closed (its tumbling window of the stream) and been published."""
    ids = hand_over(cloud, campaign, customer_ids)
    wait_for(lambda: delivered(cloud, ids) == len(ids), timeout=600, interval=2, what=f"{campaign} delivered")
    windows = [p for p in cloud.pollers if isinstance(p, StreamPoller)]
    wait_for(lambda: not any(p.window_open for p in windows), timeout=120, what="broadcast's last window closed")
    time.sleep(2)  # the relay publishes the window's counts within its poll interval
    for stopped in held:  # their queues now drained in full batches, as Lambda's pollers fill them at a campaign's pace
        drain = QueuePoller(stopped.mapping, sqs=stopped.sqs, runtime=stopped.runtime, region=stopped.region)
        while drain.poll_once():
            pass
    # The delivery's own events then reach the customer store's timeline: wait for every queue to drain.
    wait_for(lambda: queues_empty(cloud), timeout=300, interval=2, what="every queue drained")
    time.sleep(3)  # the last consumer's settling calls (a deletion after the handler answered)
    return ids


@pytest.mark.timeout(3600)  # a local cloud, a hundred customers and their emails: minutes on a loaded machine
def test_the_infrastructure_cost_of_a_million_marketing_emails(cloud: LocalCloud) -> None:
    tour = TourContext(cloud)
    people = customers(tour, EMAILS + WARM_UP)
    run_emails(cloud, "cost-warm-up", people[:WARM_UP])

    wsgi = cloud._moto._server  # the werkzeug server the moto server runs (the fault layer is in front of moto)
    assert wsgi is not None
    layer = Calls(wsgi.app)
    wsgi.app = layer
    invocations_before, cpu_before = dict(cloud.runtime.invocations), function_cpu(cloud)
    counting = held_counting_pollers(cloud)
    layer.counting = True
    ids = run_emails(cloud, "cost-measured", people[WARM_UP:], held=counting)
    layer.counting = False
    invocations = {
        name: count - invocations_before.get(name, 0)
        for name, count in cloud.runtime.invocations.items()
        if count > invocations_before.get(name, 0)
    }
    cpu_after = function_cpu(cloud)
    cpu = {name: cpu_after.get(name, 0.0) - cpu_before.get(name, 0.0) for name in invocations}
    assert delivered(cloud, ids) == EMAILS

    polled = {
        poller.queue_url.rsplit("/", 1)[-1]: (poller.function, int(poller.mapping["batch_size"]))
        for poller in cloud.pollers
        if isinstance(poller, QueuePoller)
    }
    memory = {f.name: f.memory_mb for f in cloud.runtime.functions.values()}
    layer.caller_memory = {f.logical_id[:50]: f.memory_mb for f in cloud.runtime.functions.values()}
    print(report(layer, invocations, cpu, memory))
    streamed = {poller.function for poller in cloud.pollers if isinstance(poller, StreamPoller)}
    print(modelled(layer, invocations, cpu, memory, polled, streamed & set(invocations)))


# The consumers that count a batch's events in one transaction (insights' live counters, campaigns' arm counters).
BATCH_COUNTERS = ("insightsoutcomeconsumer", "campaignsoutcomeconsumer")


def held_counting_pollers(cloud: LocalCloud) -> list[QueuePoller]:
    """The counting consumers' queues, their pollers stopped: the bench drains them once every email is delivered.

    Their write units depend on their batches (each batch's markers and summed counters are one transaction,
    ADR 12); the local pollers take whatever a queue holds when they ask (one to three events while a hundred
    emails trickle through), where Lambda's pollers wait up to the batching window and fill batches of ten at a
    campaign's pace. Holding the queues until the end measures them at the batches a campaign fills.
    """
    found = [
        p
        for p in cloud.pollers
        if isinstance(p, QueuePoller) and any(name in p.function.lower() for name in BATCH_COUNTERS)
    ]
    assert len(found) == len(BATCH_COUNTERS), [p.function for p in cloud.pollers if isinstance(p, QueuePoller)]
    for poller in found:
        poller.stop()
    return found


def report(layer: Calls, invocations: dict[str, int], cpu: dict[str, float], memory: dict[str, int]) -> str:
    per = 1 / EMAILS
    by_service: Counter[str] = Counter()
    for (service, _), count in layer.calls.items():
        by_service[service] += count
    lines = [f"\nInfrastructure per marketing email (local cloud, {EMAILS} emails, warm)"]
    lines.append("  AWS calls per email, by service and operation:")
    for (service, operation), count in sorted(layer.calls.items()):
        lines.append(f"    {service:16} {operation:28} {count * per:8.3f}")
    lines.append(f"    (idle SQS receives, a fixed cost per queue, not per email: {layer.idle_receives})")
    lines.append("  DynamoDB write units per email, by operation:")
    for operation, units in sorted(layer.wru_by.items()):
        lines.append(f"    {operation:45} {units * per:8.2f}")
    lines.append("  DynamoDB write units per email, by item written (table, key prefixes):")
    for kind, units in sorted(layer.wru_by_item.items(), key=lambda found: -found[1])[:20]:
        lines.append(f"    {kind:70} {units * per:8.2f}")
    lines.append(
        f"    (sized as the request JSON, the way of the figures published before: {layer.wru_wire * per:.1f})"
    )
    lines.append("  DynamoDB read units per email, by item read (table, key prefixes):")
    for kind, units in sorted(layer.rru_by_item.items(), key=lambda found: -found[1])[:16]:
        lines.append(f"    {kind:70} {units * per:8.2f}")
    lines.append("  Lambda per email: invocations, CPU ms")
    gb_seconds = 0.0
    for name in sorted(invocations):
        short = name.split("-", 1)[-1]
        lines.append(f"    {short[:60]:60} {invocations[name] * per:7.3f} {cpu[name] * per:8.2f} ms")
        gb_seconds += memory.get(name, 512) / 1024 * cpu[name] / 1000
    gb_seconds += io_wait_gb_seconds(layer)  # waiting on AWS calls, at each function's memory
    lines.append("  AWS calls made inside functions, per email (billed while they wait):")
    for caller, calls in layer.calls_by_caller.most_common():
        operations = layer.operations_by_caller.get(caller, Counter()).most_common(5)
        shown = ", ".join(f"{operation} {n * per:.2f}" for operation, n in operations)
        lines.append(f"    {caller[:50]:50} {calls * per:7.2f}  ({shown})")
    delivered_by_aws = max(0, layer.received - layer.enqueued)  # EventBridge rules and SNS: one SendMessage each
    sqs_requests = by_service["sqs"] + delivered_by_aws
    lines += priced(layer, sum(invocations.values()), gb_seconds, sqs_requests, sum(cpu.values()))
    return "\n".join(lines)


def io_wait_gb_seconds(layer: Calls) -> float:
    """The GB-seconds functions are billed while their AWS calls wait (IO_WAIT_MS each), at each caller's memory
    (a function named by its logical id in the SDK's user agent; 512 MB for a call of unknown origin)."""
    memory = layer.caller_memory
    return sum(memory.get(caller, 512) / 1024 * n * IO_WAIT_MS / 1000 for caller, n in layer.calls_by_caller.items())


def priced(
    layer: Calls, invocations: float, gb_seconds: float, sqs_requests: float, cpu: float, wru: float | None = None
) -> list[str]:
    """The per-email figures and the price of a million emails, as lines (`wru`: the write units, as measured if
    None)."""
    per, million = 1 / EMAILS, 1e6
    wru = layer.wru if wru is None else wru
    costs = {
        "Lambda requests": invocations * PRICES["lambda_request"],
        "Lambda duration": gb_seconds * PRICES["lambda_gb_second_arm"],
        "SQS requests": sqs_requests * PRICES["sqs_request"],
        "EventBridge events": layer.put_entries * PRICES["eventbridge_event"],
        "DynamoDB writes": wru * PRICES["dynamodb_wru"],
        "DynamoDB reads": layer.rru * PRICES["dynamodb_rru"],
    }
    lines = [
        f"  per email: {invocations * per:.2f} invocations, {cpu * per:.1f} CPU ms, "
        f"{sqs_requests * per:.2f} SQS requests, {layer.put_entries * per:.2f} events, "
        f"{wru * per:.1f} WRU, {layer.rru * per:.1f} RRU",
        "  1,000,000 marketing emails at us-east-1 list prices (2025):",
    ]
    for item, cost in costs.items():
        lines.append(f"    {item:20} ${cost * per * million:9.2f}")
    total = sum(costs.values()) * per * million
    ses = PRICES["ses_email"] * million
    lines.append(
        f"    {'infrastructure':20} ${total:9.2f}   beside SES's own ${ses:.2f}: {total / ses:.1%} (goal < 20%)"
    )
    return lines


def pacing_windows_per_batch(
    layer: Calls,
    invocations: dict[str, int],
    cpu: dict[str, float],
    sender: str | None,
    polled: dict[str, tuple[str, int]],
) -> int:
    """How many of the pacer's one-second windows a sender batch spans on AWS, each window one write
    (`Pacer.expect` takes a batch's sends from the window it starts in, and a send outliving it takes from the
    next). The local cloud's sends take far longer than AWS's, so its batches span more windows than a
    campaign's do: a batch lasts the modelled batch size times each email's CPU and calls at IO_WAIT_MS, and
    spans one window more than its whole seconds (it starts mid-window)."""
    if sender is None:
        return 1
    batch = next((size for function, size in polled.values() if function == sender), 10)
    fill = max(1.0, min(batch, SEND_RATE * BATCHING_WINDOW_S / POLLERS))
    calls = sum(n for caller, n in layer.calls_by_caller.items() if "sendemail" in caller.lower())
    per_email_s = (cpu.get(sender, 0.0) + calls * IO_WAIT_MS) / EMAILS / 1000
    return 1 + math.ceil(fill * per_email_s)


def modelled(
    layer: Calls,
    invocations: dict[str, int],
    cpu: dict[str, float],
    memory: dict[str, int],
    polled: dict[str, tuple[str, int]],
    streamed: set[str],
) -> str:
    """The measured counts with each polled queue's receives, deletes and invocations at a campaign's batches; each
    stream mapping's invocations at Lambda's four polls a second of a shard; the write units written once per
    sender batch (`PER_SENDER_BATCH`) at the sender's modelled batches."""
    per = 1 / EMAILS
    lines = [
        f"\nModelled: the same counts, each consumer's batches as a campaign of {SEND_RATE:.0f} emails a second fills"
        f" them ({POLLERS} pollers a queue, {BATCHING_WINDOW_S:.0f} s window)",
        "  queue (its function)                                          messages/email  batch  measured -> modelled"
        " receives+deletes+invocations per email",
    ]
    model_invocations = float(sum(invocations.values()))
    sqs_requests = float(sum(n for (service, _), n in layer.calls.items() if service == "sqs"))
    batch_ratio: dict[str, float] = {}  # function -> modelled / measured invocations
    for queue, messages in sorted(layer.received_by_queue.items()):
        if queue not in polled:
            continue
        function, batch_size = polled[queue]
        fill = max(1.0, min(batch_size, SEND_RATE * messages * per * BATCHING_WINDOW_S / POLLERS))
        batches = messages / fill
        measured = layer.polls_by_queue[queue] + invocations.get(function, 0)
        sqs_requests += 2 * batches - layer.polls_by_queue[queue]  # a receive and a batched delete per batch
        model_invocations += batches - invocations.get(function, 0)
        batch_ratio[function] = batches / max(1, invocations.get(function, 0))
        short = function.split("-", 1)[-1][:60]
        lines.append(
            f"    {short:60} {messages * per:8.2f} {fill:7.1f}  {measured * per:6.2f} -> {3 * batches * per:6.2f}"
        )
    # A stream's shard is read four times a second: at most that many invocations of each mapping, whatever
    # the writes (a shard per STREAM_WRITES_PER_SHARD writes a second; broadcast's writes, a write unit each).
    writes = sum(units for kind, units in layer.wru_by_item.items() if "BroadcastTable" in kind)
    shards = max(1.0, SEND_RATE * writes * per / STREAM_WRITES_PER_SHARD)
    for function in sorted(streamed):
        measured = invocations.get(function, 0)
        modelled_streams = min(float(measured), STREAM_POLLS_PER_SECOND * shards / SEND_RATE * EMAILS)
        model_invocations += modelled_streams - measured
        short = function.split("-", 1)[-1][:60]
        lines.append(f"    {short:60} (stream)          {measured * per:6.2f} -> {modelled_streams * per:6.2f}")
    sender = next((f for f in batch_ratio if "sendemail" in f.lower()), None)
    ratio = min(1.0, batch_ratio.get(sender, 1.0) if sender else 1.0)
    guard = sum(u for kind, u in layer.wru_by_item.items() if kind.split()[1].startswith(PER_SENDER_BATCH[1]))
    pace = sum(u for kind, u in layer.wru_by_item.items() if kind.split()[1].startswith(PER_SENDER_BATCH[0]))
    windows = pacing_windows_per_batch(layer, invocations, cpu, sender, polled)
    sender_batches = (invocations.get(sender, 0) if sender else 0) * ratio
    modelled_pace = min(pace, sender_batches * windows) if sender else pace
    wru = layer.wru - guard * (1 - ratio) - (pace - modelled_pace)
    lines.append(
        f"    written once per sender batch (DELIV/): {guard * per:.2f} -> {guard * ratio * per:.2f}; once per batch"
        f" and pacing window it spans ({windows} at AWS's pace, PACE/): {pace * per:.2f} -> {modelled_pace * per:.2f}"
        " write units per email"
    )
    gb_seconds = sum(memory.get(name, 512) / 1024 * cpu[name] / 1000 for name in invocations)
    gb_seconds += io_wait_gb_seconds(layer)  # the measured calls, as measured
    sqs_requests += max(0, layer.received - layer.enqueued)
    lines += priced(layer, model_invocations, gb_seconds, sqs_requests, sum(cpu.values()), wru)
    return "\n".join(lines)
