"""Journeys running on moto with a fixed clock: a two-day wait passed in no time, both branches taken by
different customers, the goal exiting a customer, a redelivered trigger entering once, the cap, the report."""

from __future__ import annotations

from ecrm.campaigns.journey_runtime import JourneyRuntime, NoFacts, ObservedEvent
from ecrm.campaigns.state_store import JourneyStateStore

from tests.integration.campaigns.conftest import TABLE, Engine
from tests.unit.campaigns.factories import welcome_journey


def runtime(engine: Engine) -> JourneyRuntime:
    return JourneyRuntime(
        JourneyStateStore(engine.client, TABLE), engine.clock, broadcast=engine.broadcast, facts=NoFacts()
    )


def event(detail_type: str, customer_id: str, n: int = 0) -> ObservedEvent:
    source = "ecrm.customers" if detail_type == "CustomerCreated" else "ecrm.other"
    return ObservedEvent(f"evt-{detail_type}-{customer_id}-{n}", detail_type, source, customer_id)


def test_a_welcome_series_runs_both_branches_and_the_goal_exits(engine: Engine) -> None:
    # Given an active welcome series
    journey = engine.journeys.create(welcome_journey(), actor="staff-1", correlation_id=None)
    journey = engine.journeys.activate(journey.journey_id, correlation_id=None)
    run, active = runtime(engine), [journey]

    # When three customers are created (one creation delivered twice), one opens, one buys
    for customer in ("opener", "ignorer", "buyer", "opener"):
        run.observe(event("CustomerCreated", customer), active)
    run.observe(event("MessageOpened", "opener"), active)
    run.observe(event("OrderPlaced", "buyer"), active)
    assert sorted(k[1] for k in engine.broadcast.messages) == ["buyer", "ignorer", "opener"]

    # And two days pass on the clock
    engine.clock.advance(days=1)
    assert run.wake_due({journey.journey_id: journey}) == 0
    engine.clock.advance(days=1, seconds=1)
    assert run.wake_due({journey.journey_id: journey}) == 2

    # Then each took its branch, the buyer left at the goal, and each message was requested once
    steps = {(k[1], k[2]) for k in engine.broadcast.messages}
    assert steps == {
        ("opener", "welcome.1"),
        ("ignorer", "welcome.1"),
        ("buyer", "welcome.1"),
        ("opener", "thanks.1"),
        ("ignorer", "reminder.1"),
    }
    assert all(k[0] == f"journey:{journey.journey_id}" for k in engine.broadcast.messages)
    report = engine.journeys.report(journey.journey_id)
    assert (report.entered, report.active) == (3, 0)
    assert report.exited == {"goal": 1, "completed": 2}
    assert report.steps["welcome"] == 3
    assert report.steps["thanks"] == report.steps["reminder"] == 1


def test_the_cap_on_concurrent_journeys_and_reentry_after_exit(engine: Engine) -> None:
    first = engine.journeys.activate(
        engine.journeys.create(welcome_journey(), actor="s", correlation_id=None).journey_id, correlation_id=None
    )
    capped = engine.journeys.activate(
        engine.journeys.create(welcome_journey(max_concurrent_journeys=1), actor="s", correlation_id=None).journey_id,
        correlation_id=None,
    )
    run = runtime(engine)
    outcomes = run.observe(event("CustomerCreated", "busy"), [first, capped])
    assert outcomes[1] == f"{capped.journey_id}:concurrency_cap"

    # the goal ends the first pass; a new trigger enters again (re-entry after exit)
    run.observe(event("OrderPlaced", "busy"), [first])
    again = run.observe(event("CustomerCreated", "busy", 1), [first])
    assert again == [f"{first.journey_id}:active:wait"]
    assert ("journey:" + first.journey_id, "busy", "welcome.2") in engine.broadcast.messages
