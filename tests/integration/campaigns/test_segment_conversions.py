"""Conversions for segment audiences on moto: the run records each recipient's arm as it hands their chunk to
broadcast, and an order is attributed by that record, so a segment's member converts on their arm (the
holdout's too) and an auto-winner's rest recipients convert on the winner they were sent."""

from __future__ import annotations

from datetime import timedelta

from ecrm.campaigns.assignment import arms_of, assign, in_test_phase
from ecrm.campaigns.models import HOLDOUT
from ecrm.campaigns.outcomes import CampaignOutcomes

from tests.integration.campaigns.conftest import Engine
from tests.unit.campaigns.factories import EMAIL, campaign_in

MEMBERS = [f"cus_{i:03d}" for i in range(120)]
VARIANTS = [{"key": "a", "share": 45, "content": EMAIL}, {"key": "b", "share": 45, "content": EMAIL}]


def test_a_segment_members_order_converts_on_the_arm_the_run_recorded(engine: Engine) -> None:
    # Given a segment campaign whose run handed its chunks to broadcast
    engine.segments.of = {"seg_vip": MEMBERS}
    body = campaign_in(audience={"segment_ids": ["seg_vip"]})
    campaign = engine.campaigns.create(body, actor="staff-1", correlation_id=None)
    engine.campaigns.launch(campaign.campaign_id, correlation_id=None)
    assert engine.execute(campaign.campaign_id, 1) == {"status": "completed"}
    arms = arms_of(campaign)
    arm_of = {c: assign(campaign.campaign_id, c, arms) for c in MEMBERS}
    held_out = next(c for c in MEMBERS if arm_of[c] == HOLDOUT)
    treated = next(c for c in MEMBERS if arm_of[c] != HOLDOUT)

    # When members, one of them held out, and a stranger order within the window, some orders twice
    outcomes = CampaignOutcomes(engine.store, engine.clock)
    placed = engine.clock.now() + timedelta(hours=3)
    assert outcomes.convert(treated, "ord-1", 2500, placed) == [f"{campaign.campaign_id}:{arm_of[treated]}"]
    assert outcomes.convert(treated, "ord-1", 2500, placed) == []
    assert outcomes.convert(held_out, "ord-2", 1000, placed) == [f"{campaign.campaign_id}:{HOLDOUT}"]
    assert outcomes.convert("cus_stranger", "ord-3", 1000, placed) == []

    # Then the report counts them on their arms, once each
    report = {a.arm: a for a in engine.campaigns.report(campaign.campaign_id).arms}
    assert (report[arm_of[treated]].converted, report[arm_of[treated]].revenue_minor) == (1, 2500)
    assert (report[HOLDOUT].converted, report[HOLDOUT].revenue_minor) == (1, 1000)
    assert sum(a.converted for a in report.values()) == 2


def test_an_auto_winners_rest_recipient_converts_on_the_winner(engine: Engine) -> None:
    # Given an auto-winner segment campaign whose test phase, pick and rest all ran
    engine.segments.of = {"seg_vip": MEMBERS}
    body = campaign_in(
        audience={"segment_ids": ["seg_vip"]},
        variants=VARIANTS,
        auto_winner={"metric": "opens", "test_share": 20, "test_hours": 2},
    )
    campaign = engine.campaigns.create(body, actor="staff-1", correlation_id=None)
    engine.campaigns.launch(campaign.campaign_id, correlation_id=None)
    assert engine.execute(campaign.campaign_id, 1) == {"status": "completed"}
    winner = engine.campaigns.get(campaign.campaign_id).winner
    assert winner in {"a", "b"}
    loser = "b" if winner == "a" else "a"
    arms = arms_of(campaign)
    rest_of_loser = next(
        c
        for c in MEMBERS
        if assign(campaign.campaign_id, c, arms) == loser and not in_test_phase(campaign.campaign_id, c, 20)
    )

    # When that rest recipient, assigned the losing variant but sent the winner, orders
    outcomes = CampaignOutcomes(engine.store, engine.clock)
    placed = engine.clock.now() + timedelta(hours=1)

    # Then the order converts on the winner's arm
    assert outcomes.convert(rest_of_loser, "ord-9", 4000, placed) == [f"{campaign.campaign_id}:{winner}"]
