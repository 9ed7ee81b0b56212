"""Campaigns on moto: the status machine, a run handing every treated recipient to broadcast once, the
holdout receiving nothing, a crashed and resumed run sending nobody twice, a paused run holding its chunks."""

from __future__ import annotations

import json

import pytest
from ecrm.campaigns.assignment import arms_of, count_arms
from ecrm.core.errors import Conflict

from tests.integration.campaigns.conftest import Engine
from tests.unit.campaigns.factories import campaign_in

AUDIENCE = [f"cust-{i:04d}" for i in range(400)]


def launched(engine: Engine, **overrides: object) -> str:
    campaign = engine.campaigns.create(
        campaign_in(audience={"customer_ids": AUDIENCE}, **overrides), actor="staff-1", correlation_id=None
    )
    engine.campaigns.launch(campaign.campaign_id, correlation_id=None)
    return campaign.campaign_id


def test_a_run_hands_each_treated_recipient_to_broadcast_once_and_the_holdout_nothing(engine: Engine) -> None:
    # Given an A/B/holdout campaign launched now
    campaign_id = launched(engine)
    assert (campaign_id, 1, 0) in engine.runs.started

    # When its run executes
    assert engine.execute(campaign_id, 1) == {"status": "completed"}

    # Then every non-holdout recipient has one message, keyed by the campaign, in their arm, and the report agrees
    campaign = engine.campaigns.get(campaign_id)
    expected = count_arms(campaign_id, AUDIENCE, arms_of(campaign))
    steps = [key[2] for key in engine.broadcast.messages]
    assert len(engine.broadcast.messages) == expected["a"] + expected["b"]
    assert {steps.count("r1.a"), steps.count("r1.b")} == {expected["a"], expected["b"]}
    assert all(key[0] == f"campaign:{campaign_id}" for key in engine.broadcast.messages)
    report = engine.campaigns.report(campaign_id)
    assert {a.arm: a.targeted for a in report.arms} == expected
    assert {a.arm: a.requested for a in report.arms} == {**expected, "holdout": 0}
    assert report.status == "completed"


def test_a_crash_mid_run_then_a_rerun_sends_nobody_twice(engine: Engine) -> None:
    # Given a run whose worker dies after handing over 130 messages
    campaign_id = launched(engine)
    engine.broadcast.fail_after = 130
    with pytest.raises(RuntimeError):
        engine.execute(campaign_id, 1)
    handed = dict(engine.broadcast.messages)

    # When the run executes again (Step Functions' retry, or a new attempt)
    engine.broadcast.fail_after = None
    assert engine.execute(campaign_id, 1) == {"status": "completed"}
    engine.execute(campaign_id, 1)

    # Then the first messages are the same ones, each recipient has one, and each chunk was counted once
    assert all(engine.broadcast.messages[key] == message for key, message in handed.items())
    report = engine.campaigns.report(campaign_id)
    assert sum(a.targeted for a in report.arms) == len(AUDIENCE)
    assert sum(a.requested for a in report.arms) == len(engine.broadcast.messages)


def test_pause_holds_the_chunks_and_resume_sends_the_rest_once(engine: Engine) -> None:
    campaign_id = launched(engine)
    frozen = engine.steps.freeze(campaign_id, 1)
    items = json.loads(engine.manifests.written[frozen["key"]])
    engine.steps.send_chunk(campaign_id, 1, 0, items[0]["customer_ids"])
    engine.campaigns.pause(campaign_id, correlation_id=None)
    held = engine.steps.send_chunk(campaign_id, 1, 1, items[1]["customer_ids"])
    assert held["outcome"] == "skipped:paused"
    assert engine.steps.finish(campaign_id, 1, frozen["chunks"]) == {"status": "paused"}

    resumed = engine.campaigns.resume(campaign_id, correlation_id=None)
    assert (campaign_id, 1, 1) in engine.runs.started
    assert resumed.attempt == 1
    assert engine.execute(campaign_id, 1) == {"status": "completed"}
    assert sum(a.targeted for a in engine.campaigns.report(campaign_id).arms) == len(AUDIENCE)


def test_the_status_machine_refuses_what_does_not_follow(engine: Engine) -> None:
    campaign_id = launched(engine)
    with pytest.raises(Conflict):
        engine.campaigns.resume(campaign_id, correlation_id=None)
    # a second launch of a running campaign only makes sure its run started
    assert engine.campaigns.launch(campaign_id, correlation_id=None).run == 1
    engine.campaigns.cancel(campaign_id, correlation_id=None)
    with pytest.raises(Conflict):
        engine.campaigns.pause(campaign_id, correlation_id=None)
    assert engine.steps.send_chunk(campaign_id, 1, 0, AUDIENCE[:10])["outcome"] == "skipped:cancelled"


def test_a_scheduled_campaign_fires_and_a_recurring_one_runs_again(engine: Engine) -> None:
    at = engine.clock.now().replace(hour=18).isoformat()
    once = launched(engine, schedule={"kind": "at", "at": at})
    assert engine.campaigns.get(once).status == "scheduled"
    assert once in engine.scheduler.schedules
    assert engine.campaigns.fire(once, correlation_id=None) is not None
    assert engine.campaigns.fire(once, correlation_id=None) is None  # a repeated fire runs nothing
    assert engine.campaigns.get(once).run == 1
    assert engine.execute(once, 1) == {"status": "completed"}

    weekly = launched(engine, schedule={"kind": "cron", "cron": "cron(0 9 ? * MON *)"})
    for run in (1, 2):
        engine.campaigns.fire(weekly, correlation_id=None)
        assert engine.execute(weekly, run) == {"status": "scheduled"}
    steps = {key[2] for key in engine.broadcast.messages if key[0] == f"campaign:{weekly}"}
    assert steps == {"r1.a", "r1.b", "r2.a", "r2.b"}


def test_a_dry_run_counts_the_arms_the_run_will_use(engine: Engine) -> None:
    campaign = engine.campaigns.create(
        campaign_in(audience={"customer_ids": AUDIENCE}), actor="staff-1", correlation_id=None
    )
    dry = engine.campaigns.dry_run(campaign.campaign_id)
    assert dry.audience == len(AUDIENCE)
    assert {a.arm: a.recipients for a in dry.arms} == count_arms(campaign.campaign_id, AUDIENCE, arms_of(campaign))
