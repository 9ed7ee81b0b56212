"""Campaign runs on moto with a moving clock: segment audiences, local-time sends, the throttle and the
auto-winner. `Engine.execute` does what the state machine does, each Wait state a move of the clock."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from ecrm.campaigns.assignment import arms_of, assign, in_test_phase
from ecrm.campaigns.models import HOLDOUT
from ecrm.campaigns.runs import WinnerNotPicked
from ecrm.core.errors import Conflict

from tests.integration.campaigns.conftest import Engine
from tests.unit.campaigns.factories import EMAIL, campaign_in

AUDIENCE = [f"cust-{i:04d}" for i in range(400)]


def create(engine: Engine, **overrides: object) -> str:
    body = {"audience": {"customer_ids": AUDIENCE}, **overrides}
    return engine.campaigns.create(campaign_in(**body), actor="staff-1", correlation_id=None).campaign_id


def messages_of(engine: Engine, campaign_id: str) -> dict[str, str]:
    """Customer -> the step of their message (a customer with two messages fails the test)."""
    keys = [key for key in engine.broadcast.messages if key[0] == f"campaign:{campaign_id}"]
    assert len({key[1] for key in keys}) == len(keys), "somebody got two messages"
    return {key[1]: key[2] for key in keys}


def test_a_segment_audience_is_the_members_of_any_segment_minus_the_excluded_and_the_list(engine: Engine) -> None:
    # Given two segments, an excluded one and an uploaded list
    engine.segments.of = {"seg_a": AUDIENCE[:200], "seg_b": AUDIENCE[150:300], "seg_out": AUDIENCE[:50]}
    audience = {
        "segment_ids": ["seg_a", "seg_b"],
        "exclude_segment_ids": ["seg_out"],
        "customer_ids": AUDIENCE[390:],
    }
    campaign_id = create(engine, audience=audience)

    # When it is dry-run, then launched and run
    dry = engine.campaigns.dry_run(campaign_id)
    engine.campaigns.launch(campaign_id, correlation_id=None)
    engine.execute(campaign_id, 1)

    # Then the audience is 50..299 and the list, each once, and the run targeted exactly them
    expected = set(AUDIENCE[50:300]) | set(AUDIENCE[390:])
    assert dry.audience == len(expected)
    report = engine.campaigns.report(campaign_id)
    assert sum(a.targeted for a in report.arms) == len(expected)
    assert set(messages_of(engine, campaign_id)) <= expected


def test_an_unbuilt_segment_is_refused_at_launch_with_what_to_do(engine: Engine) -> None:
    from ecrm.campaigns.ports import BuiltSegmentAudiences, CampaignAudience

    audience = CampaignAudience(BuiltSegmentAudiences(client=None, latest=lambda segment_id: None))
    campaign = campaign_in(audience={"segment_ids": ["seg_new"]})
    with pytest.raises(Conflict, match=r"POST /segments/seg_new/build"):
        audience.customers(campaign.audience)
    with pytest.raises(Conflict, match="not available here"):
        CampaignAudience().customers(campaign.audience)


def test_local_time_sends_each_zone_at_nine_on_the_day(engine: Engine) -> None:
    # Given recipients in Tokyo, London and New York (and some whose zone the store does not know: UTC)
    zones = ["Asia/Tokyo", "Europe/London", "America/New_York"]
    engine.zones.of = {c: zones[n % 3] for n, c in enumerate(AUDIENCE) if n % 4}
    day = "2026-11-25"
    campaign_id = create(
        engine, schedule={"kind": "local_time", "at": f"{day}T00:00:00+00:00", "local_time": "09:00:00"}
    )

    # When it is launched (two days ahead: scheduled for the first zone on Earth) and the schedule fires
    launched = engine.campaigns.launch(campaign_id, correlation_id=None)
    assert launched.status == "scheduled"
    assert engine.scheduler.schedules[campaign_id].schedule.kind == "local_time"
    engine.clock.at = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)  # 09:00 on the 25th at UTC+14
    engine.campaigns.fire(campaign_id, correlation_id=None)
    assert engine.execute(campaign_id, 1) == {"status": "completed"}

    # Then each chunk went when its recipients' zone reached nine, Tokyo first and New York last
    nine = {
        "Asia/Tokyo": datetime(2026, 11, 25, 0, 0, tzinfo=UTC),
        "UTC": datetime(2026, 11, 25, 9, 0, tzinfo=UTC),
        "Europe/London": datetime(2026, 11, 25, 9, 0, tzinfo=UTC),
        "America/New_York": datetime(2026, 11, 25, 14, 0, tzinfo=UTC),
    }
    frozen = engine.manifests.written["campaign-runs/" + campaign_id + "/run-000001.json"]
    for item in json.loads(frozen):
        when = {nine[engine.zones.of.get(c, "UTC")] for c in item["customer_ids"]}
        assert len(when) == 1
        assert item["not_before"] == when.pop().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [at for at, _ in engine.handed_at] == sorted(at for at, _ in engine.handed_at)
    assert engine.handed_at[-1][0] == nine["America/New_York"]
    assert sum(a.targeted for a in engine.campaigns.report(campaign_id).arms) == len(AUDIENCE)


def test_a_local_time_past_in_the_first_zone_starts_at_once(engine: Engine) -> None:
    today = engine.clock.now().date().isoformat()
    campaign_id = create(
        engine, schedule={"kind": "local_time", "at": f"{today}T00:00:00+00:00", "local_time": "09:00:00"}
    )
    assert engine.campaigns.launch(campaign_id, correlation_id=None).status == "running"
    assert (campaign_id, 1, 0) in engine.runs.started


def test_the_throttle_hands_over_at_most_its_messages_per_minute(engine: Engine) -> None:
    # Given a campaign throttled to 60 messages a minute (the holdout costs no time)
    campaign_id = create(engine, throttle_per_minute=60)
    campaign = engine.campaigns.launch(campaign_id, correlation_id=None)
    started = engine.clock.now()

    # When its run executes on the clock
    assert engine.execute(campaign_id, 1) == {"status": "completed"}

    # Then by every hand-over, the messages handed before it had a minute per 60
    arm = {c: assign(campaign_id, c, arms_of(campaign)) for c in AUDIENCE}
    chunks = {item_chunk: at for at, item_chunk in engine.handed_at}
    frozen = engine.manifests.written[f"campaign-runs/{campaign_id}/run-000001.json"]
    items = json.loads(frozen)
    sent_before = 0
    for item in items:
        at = chunks[item["chunk"]]
        assert sent_before <= (at - started).total_seconds() + 1, (item["chunk"], at, sent_before)
        sent_before += sum(1 for c in item["customer_ids"] if arm[c] != HOLDOUT)
    treated = sum(1 for c in AUDIENCE if arm[c] != HOLDOUT)
    last = max(chunks.values())
    assert timedelta(seconds=treated - 60) <= last - started <= timedelta(seconds=treated)
    assert len(messages_of(engine, campaign_id)) == treated


def test_the_dry_run_says_how_long_the_throttle_takes_and_who_is_in_the_test_phase(engine: Engine) -> None:
    variants = [{"key": "a", "share": 45, "content": EMAIL}, {"key": "b", "share": 45, "content": EMAIL}]
    campaign_id = create(
        engine,
        variants=variants,
        throttle_per_minute=100,
        auto_winner={"metric": "opens", "test_share": 25, "test_hours": 2},
    )
    campaign = engine.campaigns.get(campaign_id)
    dry = engine.campaigns.dry_run(campaign_id)
    arm = {c: assign(campaign_id, c, arms_of(campaign)) for c in AUDIENCE}
    treated = [c for c in AUDIENCE if arm[c] != HOLDOUT]
    assert dry.minutes_to_hand_over == -(-len(treated) // 100)
    assert dry.test_phase == sum(1 for c in treated if in_test_phase(campaign_id, c, 25))
    assert {a.arm: a.recipients for a in dry.arms} == dict(Counter(arm.values()))


def test_a_resumed_run_keeps_its_frozen_audience_and_paces_what_is_left_from_now(engine: Engine) -> None:
    # Given a throttled segment campaign paused after its first two chunks
    engine.segments.of = {"seg_a": AUDIENCE[:300]}
    campaign_id = create(engine, audience={"segment_ids": ["seg_a"]}, throttle_per_minute=60)
    engine.campaigns.launch(campaign_id, correlation_id=None)
    frozen = engine.steps.freeze(campaign_id, 1)
    for item in json.loads(engine.manifests.written[frozen["key"]])[:2]:
        engine.wait_until(item["not_before"])
        engine.steps.send_chunk(campaign_id, 1, item["chunk"], item["customer_ids"])
    engine.campaigns.pause(campaign_id, correlation_id=None)

    # When the segment changes, an hour passes and the run is resumed
    engine.segments.of = {"seg_a": AUDIENCE[100:]}
    engine.clock.at += timedelta(hours=1)
    resumed_at = engine.clock.now()
    engine.campaigns.resume(campaign_id, correlation_id=None)
    engine.handed_at.clear()
    assert engine.execute(campaign_id, 1) == {"status": "completed"}

    # Then the run sent the audience it froze, nobody twice, and what was left went at the throttle's pace from now
    sent = messages_of(engine, campaign_id)
    assert set(sent) <= set(AUDIENCE[:300])
    assert sum(a.targeted for a in engine.campaigns.report(campaign_id).arms) == 300
    left = sorted(at for at, chunk in engine.handed_at if chunk >= 2)
    assert left[0] >= resumed_at
    messages_left = sum(1 for c in sent if c not in AUDIENCE[:100])  # the first two chunks held AUDIENCE[:100]
    assert left[-1] - left[0] >= timedelta(seconds=messages_left - 50)  # 60 a minute, the last chunk's 50 aside


def test_a_run_that_would_outlast_an_execution_is_refused(engine: Engine) -> None:
    engine.segments.of = {"seg_everyone": [f"c{i}" for i in range(150_000)]}
    campaign_id = create(engine, throttle_per_minute=1, audience={"segment_ids": ["seg_everyone"]})
    with pytest.raises(Conflict, match="raise the throttle"):
        engine.campaigns.launch(campaign_id, correlation_id=None)


def test_the_auto_winner_sends_the_rest_the_variant_with_the_best_rate(engine: Engine) -> None:
    # Given an A/B/holdout campaign that tests on 20% for four hours and picks on clicks
    variants = [{"key": "a", "share": 45, "content": EMAIL}, {"key": "b", "share": 45, "content": EMAIL}]
    campaign_id = create(
        engine,
        variants=variants,
        auto_winner={"metric": "clicks", "test_share": 20, "test_hours": 4},
        audience={"customer_ids": AUDIENCE[:200]},
    )
    campaign = engine.campaigns.launch(campaign_id, correlation_id=None)
    started = engine.clock.now()
    frozen = engine.steps.freeze(campaign_id, 1)
    assert frozen["phased"] is True
    engine.send(frozen["key"])

    # When during the test hours b's recipients click more than a's
    sent = messages_of(engine, campaign_id)
    arms_counted: dict[str, dict[str, int]] = {}
    for n, (_customer, step) in enumerate(sorted(sent.items())):
        arm = arms_counted.setdefault(step.split(".")[1], {"delivered": 0, "clicked": 0})
        arm["delivered"] += 1
        if step.endswith(".b") or n % 5 == 0:
            arm["clicked"] += 1
    engine.store.record_counts("win-1", campaign_id, arms_counted, engine.clock.now())  # broadcast's window
    with pytest.raises(WinnerNotPicked):  # a rest chunk before the pick fails, and Step Functions retries it
        engine.steps.send_chunk(campaign_id, 1, frozen["chunks"] - 1, AUDIENCE[:1], "rest")
    engine.wait_until(frozen["decide_at"])
    assert engine.clock.now() - started >= timedelta(hours=4)
    assert engine.steps.pick_winner(campaign_id, 1) == {"winner": "b"}
    engine.send(frozen["rest_key"])
    assert engine.steps.finish(campaign_id, 1, frozen["chunks"]) == {"status": "completed"}

    # Then the test phase got its arms, everyone else treated got b, the holdout nothing, nobody twice
    arms = arms_of(campaign)
    final = messages_of(engine, campaign_id)
    for customer in AUDIENCE[:200]:
        arm = assign(campaign_id, customer, arms)
        if arm == HOLDOUT:
            assert customer not in final
        elif in_test_phase(campaign_id, customer, 20):
            assert final[customer] == f"r1.{arm}"
        else:
            assert final[customer] == "r1.b"
    assert engine.campaigns.report(campaign_id).winner == "b"
    assert engine.steps.pick_winner(campaign_id, 1) == {"winner": "b"}  # a retried pick keeps it
    tested = Counter(step for c, step in final.items() if in_test_phase(campaign_id, c, 20))
    assert set(tested) == {"r1.a", "r1.b"}
