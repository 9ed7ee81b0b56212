"""The broadcast engine's own bounce and complaint rates alarm at SES's thresholds, only over enough sends."""

from __future__ import annotations

import json
from typing import Any

from infra.engines.broadcast import RATE_ALARM_MIN_SENDS


def test_own_rate_alarms_read_a_rate_only_over_a_minimum_volume(template: dict[str, Any]) -> None:
    alarms = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    own = {
        a["Threshold"]: a
        for a in alarms
        if any(m.get("Expression") == f"IF(sends >= {RATE_ALARM_MIN_SENDS}, rate, 0)" for m in a.get("Metrics", []))
    }
    assert set(own) == {0.02, 0.0008}
    for alarm in own.values():
        metrics = {m["Id"]: m for m in alarm["Metrics"]}
        assert metrics["sends"]["MetricStat"]["Metric"]["MetricName"] == "WindowSends"
        assert metrics["rate"]["MetricStat"]["Metric"]["Namespace"] == "ecrm"
        dimensions = json.dumps(metrics["rate"]["MetricStat"]["Metric"]["Dimensions"])
        assert "ConfigurationSet" in dimensions
        assert "ecrm-broadcast" in dimensions
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
    assert {
        m["MetricStat"]["Metric"]["MetricName"] for a in own.values() for m in a["Metrics"] if m["Id"] == "rate"
    } == {
        "BounceRate",
        "ComplaintRate",
    }
