"""The insights engine in the template: every dead-letter queue of the app alarms (and notifies), a failed
campaign run alarms, the dashboard shows channels, campaigns, dead letters, API 5xx and Lambda errors, the
lake declares `message_outcomes` (broadcast's counter writes it), and the consumer hears the events it counts."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template
from ecrm.core.lake import MESSAGE_OUTCOME_COLUMNS, MESSAGE_OUTCOMES

from infra.constructs.alarms import NotifyOnAlarms
from infra.constructs.dead_letters import AlarmOnEveryDeadLetterQueue, DeadLetterQueue
from infra.engines.insights import MESSAGE_EVENTS
from tests.infra.conftest import Synthesized, ref

pytestmark = pytest.mark.xdist_group("infra")


def dead_letter_targets(resources: dict[str, Any]) -> set[str]:
    """Logical ids of every queue a resource of the template sends its failures to."""
    found: set[str] = set()
    for resource in resources.values():
        props, kind = resource.get("Properties", {}), resource["Type"]
        arns = []
        if kind in ("AWS::SQS::Queue", "AWS::SNS::Subscription"):
            arns.append((props.get("RedrivePolicy") or {}).get("deadLetterTargetArn"))
        elif kind == "AWS::Events::Rule":
            arns += [(t.get("DeadLetterConfig") or {}).get("Arn") for t in props.get("Targets", [])]
        elif kind in ("AWS::Lambda::EventSourceMapping", "AWS::Lambda::EventInvokeConfig"):
            arns.append(((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination"))
        elif kind == "AWS::Lambda::Function":
            arns.append((props.get("DeadLetterConfig") or {}).get("TargetArn"))
        for arn in arns:
            target = ref(arn)
            if target and resources.get(target, {}).get("Type") == "AWS::SQS::Queue":
                found.add(target)
    return found


def queue_alarms(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Queue logical id -> the properties of an alarm on its depth."""
    watched = {}
    for resource in resources.values():
        props = resource.get("Properties", {})
        if (
            resource["Type"] != "AWS::CloudWatch::Alarm"
            or props.get("MetricName") != "ApproximateNumberOfMessagesVisible"
        ):
            continue
        for dimension in props.get("Dimensions", []):
            queue = ref(dimension["Value"])
            if dimension["Name"] == "QueueName" and queue:
                watched[queue] = props
    return watched


def test_every_dead_letter_queue_of_every_template_alarms_and_notifies(synthesized: Synthesized) -> None:
    checked = 0
    for name, template in synthesized.templates.items():
        resources = template.get("Resources", {})
        alarms = queue_alarms(resources)
        for queue in dead_letter_targets(resources):
            # Then the queue has an alarm at one message, and the alarm notifies the alarm topic
            alarm = alarms.get(queue)
            assert alarm is not None, f"{name}: dead-letter queue {queue} has no alarm"
            assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
            assert alarm.get("AlarmActions"), f"{name}: {queue}'s alarm notifies nobody"
            assert alarm.get("OKActions"), f"{name}: {queue}'s alarm says nobody it cleared"
            checked += 1
    assert checked >= 20  # every engine's consumers and outbox relays


def test_a_dead_letter_queue_nobody_alarmed_gets_an_alarm_that_notifies() -> None:
    # Given an app whose nested stack declares dead-letter queues without alarms, of three kinds
    app = cdk.App()
    root = cdk.Stack(app, "Root")
    nested = cdk.NestedStack(root, "Engine")
    redrive = sqs.Queue(nested, "RedriveDlq")
    sqs.Queue(nested, "Work", dead_letter_queue=sqs.DeadLetterQueue(queue=redrive, max_receive_count=3))
    rule_dlq = sqs.Queue(nested, "RuleDlq")
    events.Rule(
        nested,
        "Rule",
        event_pattern=events.EventPattern(source=["x"]),
        targets=[targets.SqsQueue(sqs.Queue(nested, "Target"), dead_letter_queue=rule_dlq)],
    )
    failures = sqs.Queue(nested, "StreamFailures")
    function = lambda_.Function(
        nested,
        "Fn",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="x.h",
        code=lambda_.Code.from_inline("def h(event, context): pass"),
    )
    function.add_event_source(sources.SqsEventSource(sqs.Queue(nested, "Source")))  # no failure destination: not a DLQ
    lambda_.EventSourceMapping(
        nested,
        "Stream",
        target=function,
        event_source_arn="arn:aws:kinesis:us-east-1:111111111111:stream/s",
        starting_position=lambda_.StartingPosition.LATEST,
        on_failure=sources.SqsDlq(failures),
    )
    topic = sns.Topic(root, "Alarms")
    found: list[DeadLetterQueue] = []
    # When the aspect and the notifying aspect run at synth
    cdk.Aspects.of(root).add(NotifyOnAlarms(topic))
    cdk.Aspects.of(root).add(AlarmOnEveryDeadLetterQueue(on_found=found.extend))
    nested_template = Template.from_stack(nested).to_json()
    # Then each of the three has one alarm, which notifies the topic; the work and target queues have none
    alarms = queue_alarms(nested_template["Resources"])
    ids = {lid: res for lid, res in nested_template["Resources"].items() if res["Type"] == "AWS::SQS::Queue"}
    alarmed = {lid for lid in ids if lid in alarms}
    assert {lid.rstrip("0123456789ABCDEF") for lid in alarmed} == {"RedriveDlq", "RuleDlq", "StreamFailures"}
    for props in alarms.values():
        assert props["AlarmActions"]
        assert props["OKActions"]
    assert len(found) == 3


def test_a_failed_campaign_run_alarms(synthesized: Synthesized) -> None:
    alarms = [r["Properties"] for r in synthesized.resources("AWS::CloudWatch::Alarm").values()]
    (run_failed,) = [a for a in alarms if a.get("MetricName") == "ExecutionsFailed"]
    assert run_failed["Namespace"] == "AWS/States"
    assert (run_failed["Threshold"], run_failed["Statistic"]) == (1, "Sum")
    (dimension,) = run_failed["Dimensions"]
    machines = synthesized.resources("AWS::StepFunctions::StateMachine")
    assert dimension["Name"] == "StateMachineArn"
    assert ref(dimension["Value"]) in machines
    assert run_failed["AlarmActions"]


def test_the_dashboard_shows_channels_campaigns_dead_letters_api_5xx_and_lambda_errors(
    synthesized: Synthesized,
) -> None:
    (dashboard,) = synthesized.resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for expected in (
        "Sent per channel",
        "Bounced per channel",
        "Complained per channel",
        "ecrm-insights",
        "Campaign runs",
        "ExecutionsFailed",
        "Dead-letter queue depths",
        "ApproximateNumberOfMessagesVisible",
        "5XXError",
        "AWS/Lambda",
        "Errors",
    ):
        assert expected in body, expected
    # And broadcast's deliverability alarms are shown, not repeated
    rate_alarms = [
        a
        for a in synthesized.resources("AWS::CloudWatch::Alarm").values()
        if any("BounceRate" in json.dumps(m) for m in a["Properties"].get("Metrics", []))
    ]
    assert len(rate_alarms) == 1


def test_the_lake_declares_message_outcomes_and_broadcasts_counter_writes_it(synthesized: Synthesized) -> None:
    tables = {
        r["Properties"]["TableInput"]["Name"]: r["Properties"]["TableInput"]
        for r in synthesized.resources("AWS::Glue::Table").values()
    }
    columns = [(c["Name"], c["Type"]) for c in tables[MESSAGE_OUTCOMES]["StorageDescriptor"]["Columns"]]
    assert columns == MESSAGE_OUTCOME_COLUMNS
    functions = synthesized.resources("AWS::Lambda::Function")
    (writer,) = [
        f
        for f in functions.values()
        if "LAKE_MESSAGE_OUTCOMES_STREAM_NAME" in f["Properties"].get("Environment", {}).get("Variables", {})
    ]
    assert writer["Properties"]["Handler"] == "count_outcomes.handler"


def test_the_consumer_hears_what_it_counts_and_only_the_sends_it_touches_with(synthesized: Synthesized) -> None:
    patterns = [
        r["Properties"]["EventPattern"]
        for lid, r in synthesized.resources("AWS::Events::Rule").items()
        if lid.startswith("Insights")
    ]
    heard = {(s, d) for p in patterns for s in p["source"] for d in p["detail-type"]}
    assert {("ecrm.broadcast", "MessageOutcomesCounted"), ("ecrm.broadcast", "CustomerUnsubscribed")} <= heard
    assert ("ecrm.transactions", "OrderPlaced") in heard
    # Broadcast counts its message events itself: of them, only a campaign's or a journey's sends come here
    messages = [
        p for p in patterns if any(d.startswith("Message") and d != "MessageOutcomesCounted" for d in p["detail-type"])
    ]
    assert messages == [
        {
            "source": ["ecrm.broadcast"],
            "detail-type": ["MessageSent"],
            "detail": {"data": {"source": [{"prefix": "campaign:"}, {"prefix": "journey:"}]}},
        }
    ]
    assert set(MESSAGE_EVENTS) == {"CustomerUnsubscribed", "MessageOutcomesCounted"}
