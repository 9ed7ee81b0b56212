"""Broadcast's message events counted on the campaign arms once each, whatever the redeliveries; other
sources' messages left alone; the report's rates read the counts."""

from __future__ import annotations

import json
from typing import Any

from ecrm.campaigns.outcomes import CampaignOutcomes, campaign_arm

from functions.campaigns import on_message_event
from tests.integration.campaigns.conftest import NOW, Engine
from tests.integration.campaigns.test_campaign_runs import launched
from tests.samples import sqs_batch

consume: Any = on_message_event.handler


def body(detail_type: str, message_id: str, source: str, step: str, status: str) -> str:
    data = {
        "message_id": message_id,
        "customer_id": "c1",
        "channel": "email",
        "purpose": "marketing",
        "source": source,
        "step": step,
        "status": status,
        "occurred_at": NOW.isoformat(),
    }
    return json.dumps(
        {
            "id": f"eb-{message_id}-{detail_type}",
            "source": "ecrm.broadcast",
            "detail-type": detail_type,
            "time": NOW.isoformat(),
            "detail": {
                "metadata": {
                    "id": f"evt-{message_id}",
                    "version": "1",
                    "correlation_id": "c",
                    "occurred_at": NOW.isoformat(),
                },
                "data": data,
            },
        }
    )


def test_each_event_counts_once_on_its_arm(engine: Engine, lambda_context: Any) -> None:
    # Given a campaign whose run handed its messages over
    campaign_id = launched(engine)
    engine.execute(campaign_id, 1)
    source = f"campaign:{campaign_id}"

    # When broadcast's events arrive, some twice, one from a journey
    bodies = [
        body("MessageSent", "m1", source, "r1.a", "sent"),
        body("MessageSent", "m2", source, "r1.a", "sent"),
        body("MessageSent", "m3", source, "r1.b", "sent"),
        body("MessageDelivered", "m1", source, "r1.a", "delivered"),
        body("MessageDelivered", "m1", source, "r1.a", "delivered"),
        body("MessageOpened", "m1", source, "r1.a", "delivered"),
        body("MessageOpened", "m1", source, "r1.a", "delivered"),
        body("MessageBounced", "m3", source, "r1.b", "bounced"),
        body("MessageSent", "m9", "journey:jny_1", "hello.1", "sent"),
    ]
    outcomes = CampaignOutcomes(engine.store, engine.clock)
    assert consume(sqs_batch(bodies), lambda_context, outcomes) == {"batchItemFailures": []}
    consume(sqs_batch(bodies[:3]), lambda_context, outcomes)  # the whole batch again

    # Then each counts once on its arm, and the rates follow
    arms = {a.arm: a for a in engine.campaigns.report(campaign_id).arms}
    assert (arms["a"].sent, arms["a"].delivered, arms["a"].opened) == (2, 1, 1)
    assert (arms["b"].sent, arms["b"].bounced) == (1, 1)
    assert arms["a"].rates["delivery"] == 0.5
    assert arms["b"].rates["bounce"] == 1.0


def test_only_campaign_steps_name_an_arm() -> None:
    assert campaign_arm("campaign:cmp_1", "r2.b") == ("cmp_1", "b")
    assert campaign_arm("journey:jny_1", "r1.a") is None
    assert campaign_arm("campaign:cmp_1", "0") is None
