"""Campaign outcomes in CloudWatch: the operations dashboard graphs each count per campaign and variant, by
SEARCH on the dimensions the outcome consumer emits them with (campaigns are made after the deploy)."""

from __future__ import annotations

import json

import pytest

from infra.engines.campaigns import METRICS_SERVICE, OUTCOME_METRICS
from tests.infra.conftest import Synthesized

pytestmark = pytest.mark.xdist_group("infra")


def test_the_dashboard_graphs_every_count_per_campaign_and_variant(synthesized: Synthesized) -> None:
    (dashboard,) = synthesized.resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert set(OUTCOME_METRICS) == {"Sent", "Delivered", "Bounced", "Complained", "Opened", "Clicked", "Converted"}
    for name in OUTCOME_METRICS:
        assert f"{name} per campaign and variant" in body
        search = f'SEARCH(\'{{ecrm,campaign_id,service,variant}} MetricName=\\\\\\"{name}\\\\\\"'
        assert search in body, name


def test_the_outcome_consumer_emits_as_the_service_the_dashboard_searches(synthesized: Synthesized) -> None:
    functions = synthesized.resources("AWS::Lambda::Function").values()
    (consumer,) = [
        f
        for f in functions
        if f["Properties"].get("Handler") == "on_outcome_event.handler"
        and "CAMPAIGNS_TABLE_NAME" in f["Properties"]["Environment"]["Variables"]
    ]
    assert consumer["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == METRICS_SERVICE


def test_only_campaign_messages_reach_the_arm_counters_queue(synthesized: Synthesized) -> None:
    # The rule of broadcast's message events into the outcome consumer's queue filters on the message's source:
    # a transactional, trigger or journey message's events are no SQS request of the campaigns engine
    rules = [
        r["Properties"]["EventPattern"]
        for r in synthesized.resources("AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("source") == ["ecrm.broadcast"]
        and "MessageSent" in r["Properties"]["EventPattern"].get("detail-type", [])
        and "arm" in r["Properties"].get("Description", "")
    ]
    assert rules == [
        {
            "source": ["ecrm.broadcast"],
            "detail-type": rules[0]["detail-type"],
            "detail": {"data": {"source": [{"prefix": "campaign:"}]}},
        }
    ]
