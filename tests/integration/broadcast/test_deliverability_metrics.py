"""The feedback handler's deliverability metrics: each email bounce or complaint publishes the window's
bounce and complaint rates with the window's sends (what the alarms' minimum volume reads), per configuration
set, in CloudWatch's embedded metric format."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ecrm.broadcast.feedback import FeedbackService, GuardSettings
from ecrm.broadcast.wiring import emit_metric

from tests.integration.broadcast.conftest import Engine
from tests.integration.broadcast.test_pipeline import Feedback


def test_a_bounce_publishes_the_rates_with_the_windows_sends(engine: Engine) -> None:
    recorded: list[tuple[str, float, dict[str, str]]] = []
    guard = GuardSettings(configuration_set="ecrm", min_sends=10)
    engine.feedback = FeedbackService(
        engine.store, engine.contacts, engine.clock, guard, metric=lambda n, v, d: recorded.append((n, v, dict(d)))
    )
    ids = []
    for n in range(4):
        engine.contacts.add(f"c{n}")
        ids.append(engine.request(f"c{n}", key=f"k{n}"))
    engine.run(*ids)
    engine.feedback.apply(Feedback("bounced", ids[0], address="c0@example.com", permanent=True))
    assert recorded == [
        ("WindowSends", 4, {"ConfigurationSet": "ecrm"}),
        ("BounceRate", 0.25, {"ConfigurationSet": "ecrm"}),
        ("ComplaintRate", 0.0, {"ConfigurationSet": "ecrm"}),
    ]
    # Four sends are under the guard's minimum: a 25% rate pauses nothing
    assert engine.store.paused_until("ecrm") is None


def test_a_metric_is_one_emf_document_with_its_configuration_set(capsys: pytest.CaptureFixture[str]) -> None:
    emit_metric("BounceRate", 0.25, {"ConfigurationSet": "ecrm-marketing"})
    document: dict[str, Any] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "ecrm"
    # the dimensions the alarms name: the configuration set and the service Powertools adds
    assert directive["Dimensions"] == [["ConfigurationSet", "service"]]
    assert (document["BounceRate"], document["ConfigurationSet"]) == ([0.25], "ecrm-marketing")
