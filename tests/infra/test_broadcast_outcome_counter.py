"""Broadcast's outcome counter as deployed (ADR 12, "Outcomes counted at the source"): a second reader of the
broadcast table's stream, in tumbling windows, given only the message items' writes that carry events, reporting
a record it cannot read, its failed batches kept in an on-failure queue; what it may do on the table is put a
window's item and read them."""

from __future__ import annotations

from typing import Any

import pytest

from infra.engines.broadcast import OUTCOME_WINDOW
from tests.infra.conftest import Synthesized, ref

pytestmark = pytest.mark.xdist_group("infra")


def counter_mapping(synthesized: Synthesized) -> tuple[dict[str, Any], dict[str, Any]]:
    functions = synthesized.resources("AWS::Lambda::Function")
    (found,) = [
        (m["Properties"], functions[ref(m["Properties"]["FunctionName"])])  # type: ignore[index]
        for m in synthesized.resources("AWS::Lambda::EventSourceMapping").values()
        if functions.get(ref(m["Properties"]["FunctionName"]) or "", {}).get("Properties", {}).get("Handler")
        == "count_outcomes.handler"
    ]
    return found


def test_the_counter_reads_the_broadcast_stream_in_windows_of_message_writes_with_events(
    synthesized: Synthesized,
) -> None:
    mapping, function = counter_mapping(synthesized)
    assert mapping["TumblingWindowInSeconds"] == OUTCOME_WINDOW.to_seconds() == 10
    assert mapping["StartingPosition"] == "TRIM_HORIZON"
    # The window's state is Lambda's to keep: a failed invocation is retried from the state before it, and a
    # record that cannot be read is reported, the records before it staying counted
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert ref(mapping["DestinationConfig"]["OnFailure"]["Destination"]) in synthesized.resources("AWS::SQS::Queue")
    patterns = [p["Pattern"] for p in mapping["FilterCriteria"]["Filters"]]
    assert all('"Keys":{"pk":{"S":[{"prefix":"MSG#"}]}}' in p and '"outbox"' in p for p in patterns), patterns
    table = [
        lid
        for lid, t in synthesized.resources("AWS::DynamoDB::Table").items()
        if lid.startswith("Broadcast") and "StreamSpecification" in t["Properties"]
    ]
    assert ref(mapping["EventSourceArn"]) is None or ref(mapping["EventSourceArn"]) in table
    assert function["Properties"]["Environment"]["Variables"]["BROADCAST_TABLE_NAME"]


def test_the_counter_may_put_a_windows_item_and_read_them_on_the_table_and_nothing_else(
    synthesized: Synthesized,
) -> None:
    _, function = counter_mapping(synthesized)
    role = ref(function["Properties"]["Role"])
    actions = {
        action
        for policy in synthesized.resources("AWS::IAM::Policy").values()
        if role in [ref(r) for r in policy["Properties"]["Roles"]]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
        if action.startswith("dynamodb:")
    }
    stream_reading = {
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
    }
    assert actions - stream_reading == {"dynamodb:PutItem", "dynamodb:Query"}
