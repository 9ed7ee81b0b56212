"""Texts and calls go through an End User Messaging configuration set whose events reach the feedback queue, and
every sender is told its pacing rates: the provider's event is the evidence that settles a send whose sender died
after the call (ADR 12), so a phone send without it could only be settled by sending again."""

from __future__ import annotations

import json
from typing import Any

from infra.engines.broadcast import DEFAULT_SEND_RATES


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def test_phone_events_reach_the_feedback_topic_and_senders_know_the_set_and_rates(template: dict[str, Any]) -> None:
    (configuration_set,) = resources(template, "AWS::SMSVOICE::ConfigurationSet").values()
    (destination,) = configuration_set["Properties"]["EventDestinations"]
    assert destination["Enabled"] is True
    assert destination["MatchingEventTypes"] == ["ALL"]
    topic = destination["SnsDestination"]["TopicArn"]["Ref"]
    assert topic.startswith("BroadcastPhoneEvents")
    name = configuration_set["Properties"]["ConfigurationSetName"]
    senders = [
        f["Properties"]["Environment"]["Variables"]
        for k, f in resources(template, "AWS::Lambda::Function").items()
        if k.startswith("BroadcastSendSms")
    ]
    assert len(senders) == 1
    for variables in senders:
        assert variables["BROADCAST_SMS_CONFIGURATION_SET"] == name
        assert json.loads(variables["BROADCAST_SEND_RATES"]) == DEFAULT_SEND_RATES
