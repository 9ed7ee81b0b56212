"""Journeys running on moto with a fixed clock: a two-day wait passed in no time, both branches taken by
different customers, the goal exiting a customer, a redelivered trigger entering once, the cap, the report."""

from __future__ import annotations

import json
from typing import Any

from ecrm.campaigns.journey_runtime import JourneyRuntime, NoFacts, ObservedEvent
from ecrm.campaigns.state_store import JourneyStateStore

from functions.campaigns import job_wake_journeys, on_journey_event
from tests.integration.campaigns.conftest import TABLE, Engine
from tests.samples import sqs_batch
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


consume: Any = on_journey_event.handler
wake: Any = job_wake_journeys.handler


def bus_body(detail_type: str, source: str, customer_id: str, event_id: str) -> str:
    return json.dumps(
        {
            "id": f"eb-{event_id}",
            "source": source,
            "detail-type": detail_type,
            "time": "2026-11-23T10:00:00Z",
            "detail": {
                "metadata": {
                    "id": event_id,
                    "version": "1",
                    "correlation_id": "cor_1",
                    "occurred_at": "2026-11-23T10:00:00Z",
                },
                "data": {"customer_id": customer_id},
            },
        }
    )


def test_the_bus_consumer_and_the_wake_job_drive_the_active_journeys(engine: Engine, lambda_context: Any) -> None:
    # Given an active welcome series and a deactivated one, both triggered by CustomerCreated
    active = engine.journeys.activate(
        engine.journeys.create(welcome_journey(), actor="s", correlation_id=None).journey_id, correlation_id=None
    )
    engine.journeys.create(welcome_journey(), actor="s", correlation_id=None)
    run = JourneyRuntime(
        JourneyStateStore(engine.client, TABLE),
        engine.clock,
        broadcast=engine.broadcast,
        facts=NoFacts(),
        definitions=engine.store,
    )

    # When a creation arrives twice in a batch, with an event naming no customer
    bodies = [bus_body("CustomerCreated", "ecrm.customers", "c-1", "evt_1")] * 2
    bodies.append(
        json.dumps(
            {
                "id": "x",
                "source": "ecrm.analysis",
                "detail-type": "AudienceBuilt",
                "time": "2026-11-23T10:00:00Z",
                "detail": {"data": {}},
            }
        )
    )
    response = consume(sqs_batch(bodies), lambda_context, run)

    # Then the customer entered the active journey once, and two days later the wake job moves them on
    assert response == {"batchItemFailures": []}
    assert list(engine.broadcast.messages) == [(f"journey:{active.journey_id}", "c-1", "welcome.1")]
    engine.clock.advance(days=2)
    assert wake({}, lambda_context, run) == {"moved": 1}
    assert (f"journey:{active.journey_id}", "c-1", "reminder.1") in engine.broadcast.messages

    # And a customer waiting in a journey that is deactivated leaves it at the next wake
    run.observe(event("CustomerCreated", "c-2"), [active])
    engine.journeys.deactivate(active.journey_id, correlation_id=None)
    engine.clock.advance(days=2)
    assert run.wake() == 1
    assert engine.journeys.report(active.journey_id).exited == {"completed": 1, "deactivated": 1}
