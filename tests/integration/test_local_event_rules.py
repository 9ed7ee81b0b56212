"""EventBridge's PutEvents on the local cloud delivers what moto's own does, on the platform's real rules.

`moto_hot_paths.put_events` parses and flattens each event once and matches every rule against it;
moto builds, round-trips and flattens a fresh message per rule. Two buses hold the same rules (every
rule with an event pattern in the synthesized template, each targeting its own queue); the same
events (the sample events of events/samples and, for every rule, events of each source and
detail-type it names, with the detail fields its pattern filters on) go to one through moto's
`put_events` and to the other through the local cloud's. Every queue then holds the same messages.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.events.models import events_backends

from infra.local import moto_hot_paths
from infra.local.cloud import synthesize
from infra.local.state import STACK_NAME
from infra.local.template import Template
from infra.settings import REPO_ROOT

REGION = "us-east-1"
ACCOUNT = "123456789012"
VARYING = ("id", "time", "ingestion-time")  # minted or stamped per delivery
DETAILS: list[dict[str, Any]] = [
    {"data": {}},
    {"data": {"type": "checkout_started", "customer_id": "cus_1"}},
    {"data": {"type": "message_opened"}},
    {"data": {"type": "page_viewed"}},
]


def resolved(node: Any) -> Any:
    """A pattern with its references to other resources replaced by their logical ids (bucket names here)."""
    if isinstance(node, dict):
        if set(node) == {"Ref"}:
            return node["Ref"]
        return {k: resolved(v) for k, v in node.items()}
    if isinstance(node, list):
        return [resolved(v) for v in node]
    return node


@pytest.fixture(scope="module")
def patterns() -> dict[str, dict[str, Any]]:
    template = Template.load(synthesize(), STACK_NAME)
    return {
        logical_id: resolved(resource.properties["EventPattern"])
        for logical_id, resource in sorted(template.resources.items())
        if resource.type == "AWS::Events::Rule" and "EventPattern" in resource.properties
    }


def named(pattern: dict[str, Any], key: str) -> list[str]:
    return [v for v in pattern.get(key, []) if isinstance(v, str)]


def events_for(patterns: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted((REPO_ROOT / "events" / "samples").rglob("*.json")):
        sample = json.loads(Path(path).read_text())
        if isinstance(sample, dict) and {"source", "detail-type", "detail"} <= set(sample):
            found.append({"Source": sample["source"], "DetailType": sample["detail-type"], "Detail": sample["detail"]})
    for pattern in patterns.values():
        sources, kinds = named(pattern, "source") or ["ecrm.other"], named(pattern, "detail-type") or ["Other"]
        buckets = [v for v in pattern.get("detail", {}).get("bucket", {}).get("name", []) if isinstance(v, str)]
        details = DETAILS + [
            {"bucket": {"name": b}, "object": {"key": k}} for b in buckets for k in ("uploads/a.csv", "other/a.csv")
        ]
        found += [{"Source": s, "DetailType": k, "Detail": d} for s, k, d in itertools.product(sources, kinds, details)]
    return [{**e, "Detail": json.dumps(e["Detail"]), "EventBusName": "bus"} for e in found]


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def bus_with_rules(name: str, patterns: dict[str, dict[str, Any]]) -> tuple[Any, dict[str, str]]:
    events, sqs = boto3.client("events", region_name=REGION), boto3.client("sqs", region_name=REGION)
    events.create_event_bus(Name=name)
    queues = {}
    for n, (logical_id, pattern) in enumerate(patterns.items()):
        url = sqs.create_queue(QueueName=f"{name}-{n}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=logical_id[:64], EventBusName=name, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=logical_id[:64], EventBusName=name, Targets=[{"Id": "q", "Arn": arn}])
        queues[logical_id] = url
    return events_backends[ACCOUNT][REGION], queues


def delivered(queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=REGION)
    bodies: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return sorted(bodies, key=json.dumps)
        for message in messages:
            body = json.loads(message["Body"])
            bodies.append({k: v for k, v in body.items() if k not in VARYING})
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_every_rule_receives_the_events_moto_would_send_it(aws: None, patterns: dict[str, dict[str, Any]]) -> None:
    # Given two buses with the platform's rules, and the events the platform and AWS put on its bus
    backend, moto_queues = bus_with_rules("moto", patterns)
    _, our_queues = bus_with_rules("ours", patterns)
    events = events_for(patterns)
    assert len(patterns) > 20
    assert len(events) > 100
    # When every event goes to one bus through moto's put_events and to the other through the local cloud's
    moto_answers: list[dict[str, Any]] = []
    our_answers: list[dict[str, Any]] = []
    for start in range(0, len(events), 10):
        batch = events[start : start + 10]
        moto_answers += moto_hot_paths._moto_put_events(backend, [{**e, "EventBusName": "moto"} for e in batch])
        our_answers += moto_hot_paths.put_events(backend, [{**e, "EventBusName": "ours"} for e in batch])
    # Then both answer every entry alike and each rule's queue holds the same messages
    assert [sorted(a) for a in our_answers] == [sorted(a) for a in moto_answers]
    matched = 0
    for logical_id in patterns:
        expected = delivered(moto_queues[logical_id])
        assert delivered(our_queues[logical_id]) == expected, logical_id
        matched += bool(expected)
    assert matched >= len(patterns) // 2  # the events reach most rules: the comparison is not of empty queues


def test_malformed_and_incomplete_entries_are_answered_as_moto_answers(aws: None) -> None:
    backend = events_backends[ACCOUNT][REGION]
    entries = [
        {"Source": "ecrm.x", "DetailType": "X", "Detail": "{not json"},
        {"DetailType": "X", "Detail": "{}"},
        {"Source": "ecrm.x", "Detail": "{}"},
        {"Source": "ecrm.x", "DetailType": "X"},
    ]
    assert moto_hot_paths.put_events(backend, entries) == moto_hot_paths._moto_put_events(backend, entries)
