"""Policy + render + enqueue: messages per second on one core, beside raw SendMessageBatch of the same bodies.

Workload (seeded, built before anything is timed): ECRM_BENCH_MESSAGES marketing emails (default 500) to as
many contact cards (preferences, time zones, quiet hours on a third, consents, a few suppressed addresses),
one campaign template rendered with each card's profile and the campaign's data.

Measured, one thread, each 3 times:
- the dispatcher's per-message work without its table: `policy.decide` on the card and what the store would
  hand over, `render_parts` of the email (subject, text, html) and the queue body, then `SqsChannelQueues`
  putting the bodies on the email queue by 10;
- `policy.decide` and `render_parts` alone (the CPU a dispatcher spends per message, the 5,000/s goal);
- reference: `send_message_batch` of the same bodies, already serialised, to the same queue.

The queue is moto's in-process SQS (`mock_aws`), so the absolute figures are about our code path plus
botocore's and moto's request handling; the reference pays the same per-request cost, which is why it is the
figure to compare with. Nothing asserts on time; the queue's message count is checked.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from ecrm.broadcast.policy import Intent, PolicySettings, Recipient, Situation, decide
from ecrm.broadcast.rendering import render_parts
from ecrm.broadcast.wiring import SqsChannelQueues
from moto import mock_aws

from tests.bench.harness import Measurement, report

MESSAGES = int(os.environ.get("ECRM_BENCH_MESSAGES", "500"))
REPEAT = 3
NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
CONTENT = {
    "subject": "{{ first_name }}, the winter sale starts {{ data.starts }}",
    "text": "Hello {{ first_name }},\n\n{{ data.percent }}% off in {{ city | default('your shop') }} until Sunday.",
    "html": "<p>Hello {{ first_name }},</p><p><b>{{ data.percent }}%</b> off in {{ city | default('your shop') }}.</p>",
}
DATA = {"starts": "tomorrow", "percent": 20}
ZONES = ["Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC"]


def cards() -> list[dict[str, Any]]:
    rng = random.Random(14)
    out = []
    for n in range(MESSAGES):
        quiet = {"start": "22:00", "end": "07:00"} if n % 3 == 0 else None
        out.append(
            {
                "customer_id": f"cus_{n:08d}",
                "status": "active",
                "addresses": {"email": [f"person{n}@example.org"]},
                "consents": [{"channel": "email", "purpose": "marketing", "state": "granted"}],
                "preferences": {"preferred_channels": ["email"], "time_zone": rng.choice(ZONES), "quiet_hours": quiet},
                "profile": {"first_name": f"Name{n}", "city": rng.choice(["Lyon", "Osaka", None])},
            }
        )
    return out


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def plan(people: list[dict[str, Any]], settings: PolicySettings) -> list[dict[str, Any]]:
    intent = Intent("marketing", frozenset({"email"}))
    situation = Situation(suppressed={"person7@example.org": "hard_bounce"})
    bodies = []
    for card in people:
        decision = decide(intent, Recipient.from_card(card), situation, now=NOW, settings=settings)
        if decision.outcome != "send":
            continue
        rendered = render_parts(CONTENT, profile=card["profile"], data=DATA)
        bodies.append(
            {
                "message_id": card["customer_id"],
                "customer_id": card["customer_id"],
                "channel": "email",
                "address": decision.address,
                "purpose": "marketing",
                "topic": None,
                "content": rendered,
                "tags": {"message_id": card["customer_id"]},
                "tracking": False,
            }
        )
    return bodies


def plan_and_enqueue(queues: SqsChannelQueues, people: list[dict[str, Any]], settings: PolicySettings) -> int:
    bodies = plan(people, settings)
    queues.enqueue("email", bodies)
    return len(bodies)


def test_policy_render_and_enqueue_beside_raw_send_message_batch(sqs: Any) -> None:
    people, settings = cards(), PolicySettings()
    warm = sqs.create_queue(QueueName="ecrm-bench-warm")["QueueUrl"]
    plan_and_enqueue(SqsChannelQueues(sqs, {"email": warm}), people[:50], settings)  # as a warm Lambda is

    pipeline, cpu_only, raw, sent = [], [], [], 0
    for run in range(REPEAT):
        # moto's queue slows as it grows: each measurement starts on an empty queue
        url = sqs.create_queue(QueueName=f"ecrm-bench-email-{run}")["QueueUrl"]
        queues = SqsChannelQueues(sqs, {"email": url})
        started = time.perf_counter()
        sent = len(plan(people, settings))
        cpu_only.append(sent / (time.perf_counter() - started))
        started = time.perf_counter()
        sent = plan_and_enqueue(queues, people, settings)
        pipeline.append(sent / (time.perf_counter() - started))
        assert queued(sqs, url) == sent  # every body, nothing lost
        url = sqs.create_queue(QueueName=f"ecrm-bench-raw-{run}")["QueueUrl"]
        prebuilt = [json.dumps({"n": n, "body": CONTENT["text"]}) for n in range(sent)]
        started = time.perf_counter()
        for start in range(0, len(prebuilt), 10):
            entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(prebuilt[start : start + 10])]
            sqs.send_message_batch(QueueUrl=url, Entries=entries)
        raw.append(sent / (time.perf_counter() - started))
    report(
        f"Broadcast: {sent} of {MESSAGES} marketing emails decided, rendered and enqueued (messages/s, one core)",
        [
            Measurement("policy + render + enqueue", pipeline, unit="/s"),
            Measurement("policy + render (goal: 5,000/s)", cpu_only, unit="/s"),
        ],
        Measurement("raw SendMessageBatch of pre-built bodies", raw, unit="/s"),
    )


def queued(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])
