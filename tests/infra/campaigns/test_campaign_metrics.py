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


def test_the_arm_counters_hear_broadcasts_windows_not_each_message_event(synthesized: Synthesized) -> None:
    # Broadcast counts its message events once and publishes a window's counts as one event (ADR 12): the arm
    # counters' queue gets one SQS request per window of its stream, not one per message event
    patterns = [
        r["Properties"]["EventPattern"]
        for r in synthesized.resources("AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("source") == ["ecrm.broadcast"]
        and "arm" in r["Properties"].get("Description", "")
    ]
    assert patterns == [{"source": ["ecrm.broadcast"], "detail-type": ["MessageOutcomesCounted"]}]
