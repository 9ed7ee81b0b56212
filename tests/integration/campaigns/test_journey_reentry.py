"""Re-entry per value of a trigger field: a customer waiting for the reminder of one points expiry who is warned
of a later expiry gets a second pass and a second reminder, each at its own time; the same expiry warned twice
(or one warning delivered twice) enters once; a redemption, the goal, ends every pass; a journey without a key
still keeps one pass per customer."""

from __future__ import annotations

from datetime import timedelta

from ecrm.campaigns.journey_runtime import JourneyRuntime, ObservedEvent
from ecrm.campaigns.state_store import JourneyStateStore

from tests.integration.campaigns.conftest import TABLE, Engine
from tests.integration.journeys.test_library_journeys import active, publish, runtime, sent
from tests.unit.campaigns.factories import welcome_journey


def expiring(run: JourneyRuntime, engine: Engine, customer: str, days: int) -> list[str]:
    expires_on = (engine.clock.now() + timedelta(days=days)).date().isoformat()
    return publish(run, "ecrm.transactions", "PointsExpiring", customer, points=100, expires_on=expires_on)


def test_a_later_expiry_warned_while_waiting_gets_its_own_reminder(engine: Engine) -> None:
    # Given the points reminder, 14 days before each expiry
    journey, run = active(engine, "points_expiring", parameters={"remind_days_before": 14}), runtime(engine)

    # When a customer is warned of an expiry in 30 days, and five days later of another one (in 30 days again)
    expiring(run, engine, "c-1", 30)
    engine.clock.advance(days=5)
    expiring(run, engine, "c-1", 30)
    assert (engine.journeys.report(journey.journey_id).entered, len(sent(engine, journey))) == (2, 0)
    expiring(run, engine, "c-1", 25)  # the first expiry warned again: that pass is under way
    assert engine.journeys.report(journey.journey_id).entered == 2

    # Then each expiry is reminded of 14 days before it, once
    engine.clock.advance(days=11, seconds=1)
    run.wake()
    assert len(sent(engine, journey)) == 1
    engine.clock.advance(days=5)
    run.wake()
    steps = sorted(step for _, step in sent(engine, journey))
    assert len(steps) == 2
    assert all(step.startswith("remind.1-") for step in steps)
    report = engine.journeys.report(journey.journey_id)
    assert (report.entered, report.active, report.exited) == (2, 0, {"completed": 2})


def test_a_redelivered_warning_enters_once_and_the_goal_ends_every_pass(engine: Engine) -> None:
    journey, run = active(engine, "points_expiring", parameters={"remind_days_before": 14}), runtime(engine)
    first = (engine.clock.now() + timedelta(days=30)).date().isoformat()
    later = (engine.clock.now() + timedelta(days=40)).date().isoformat()
    warning = {"metadata": {"id": "evt-warning"}, "data": {"customer_id": "c-2", "expires_on": first, "points": 5}}
    run.handle("ecrm.transactions", "PointsExpiring", warning)
    assert run.handle("ecrm.transactions", "PointsExpiring", warning) == []  # the same event delivered again
    expiring(run, engine, "c-2", 40)
    assert later > first
    assert engine.journeys.report(journey.journey_id).active == 2

    # When the customer redeems points, both passes end at the goal and nothing is reminded
    publish(run, "ecrm.transactions", "PointsRedeemed", "c-2", points=100)
    engine.clock.advance(days=40)
    run.wake()
    assert sent(engine, journey) == set()
    assert engine.journeys.report(journey.journey_id).exited == {"goal": 2}


def test_a_journey_without_a_key_keeps_one_pass_per_customer(engine: Engine) -> None:
    journey = engine.journeys.activate(
        engine.journeys.create(welcome_journey(), actor="s", correlation_id=None).journey_id, correlation_id=None
    )
    run = runtime(engine)
    created = ObservedEvent("evt-1", "CustomerCreated", "ecrm.customers", "c-3")
    again = ObservedEvent("evt-2", "CustomerCreated", "ecrm.customers", "c-3")
    run.observe(created, [journey])
    run.observe(again, [journey])
    assert engine.journeys.report(journey.journey_id).entered == 1


def test_several_expiries_pending_count_once_toward_the_cap(engine: Engine) -> None:
    # Given the points reminder and a welcome journey capped at two concurrent journeys
    points, run = active(engine, "points_expiring", parameters={"remind_days_before": 14}), runtime(engine)
    welcome = engine.journeys.activate(
        engine.journeys.create(welcome_journey(max_concurrent_journeys=2), actor="s", correlation_id=None).journey_id,
        correlation_id=None,
    )
    states = JourneyStateStore(engine.client, TABLE)

    # When a customer has three expiries pending, then is created (the welcome's trigger)
    for days in (30, 35, 40):
        expiring(run, engine, "c-4", days)
    assert engine.journeys.report(points.journey_id).active == 3
    assert states.active_journeys("c-4") == 1
    run.observe(ObservedEvent("evt-created", "CustomerCreated", "ecrm.customers", "c-4"), [welcome])

    # Then the welcome is entered (the points reminder counts once), and every pass gives back what it took
    assert engine.journeys.report(welcome.journey_id).entered == 1
    assert states.active_journeys("c-4") == 2
    publish(run, "ecrm.transactions", "PointsRedeemed", "c-4", points=10)
    assert states.active_journeys("c-4") == 1
