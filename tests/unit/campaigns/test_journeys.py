"""The journey interpreter driven by a fixed clock: waits, branches, splits, goals, re-entry and the cap."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from ecrm.campaigns.journeys import (
    CustomerFacts,
    EntryHistory,
    JourneyLoop,
    enter,
    entry_refusal,
    next_local_time,
    on_clock,
    on_event,
    triggered_by,
)
from ecrm.campaigns.models import JourneyIn
from ecrm.core.clock import FixedClock
from pydantic import ValidationError

from tests.unit.campaigns.factories import EMAIL, welcome_journey

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FACTS = CustomerFacts()


def test_a_two_day_wait_then_both_branches_for_different_customers() -> None:
    # Given a welcome series and two new customers, one of whom opens the welcome mail
    journey, clock = welcome_journey(), FixedClock(START)
    opener = enter(journey, "jny_w", "opener", 1, FACTS, clock.now())
    ignorer = enter(journey, "jny_w", "ignorer", 1, FACTS, clock.now())
    assert [s.id for s in opener.sends] == ["welcome"]
    assert opener.state.step_id == "wait"
    assert opener.state.wake_at == START + timedelta(days=2)
    opener = on_event(journey, opener.state, "MessageOpened", FACTS, clock.now())
    assert opener.sends == []
    assert opener.state.step_id == "wait"

    # When the clock has not reached the end of the wait, nothing moves; when it has, both go on
    clock.advance(days=1)
    assert on_clock(journey, ignorer.state, FACTS, clock.now()).state == ignorer.state
    clock.advance(days=1)
    opener = on_clock(journey, opener.state, FACTS, clock.now())
    ignorer = on_clock(journey, ignorer.state, FACTS, clock.now())

    # Then each took its branch and completed the journey
    assert [s.id for s in opener.sends] == ["thanks"]
    assert [s.id for s in ignorer.sends] == ["reminder"]
    assert opener.exited
    assert opener.state.exit_reason == "completed"
    assert ignorer.state.visited == ["welcome", "wait", "opened", "reminder"]


def test_the_goal_exits_the_customer_wherever_they_are() -> None:
    journey = welcome_journey()
    waiting = enter(journey, "jny_w", "buyer", 1, FACTS, START).state
    converted = on_event(journey, waiting, "OrderPlaced", FACTS, START + timedelta(hours=3))
    assert converted.exited
    assert converted.state.exit_reason == "goal"
    # the clock no longer moves an exited customer
    assert on_clock(journey, converted.state, FACTS, START + timedelta(days=3)).sends == []


def test_an_event_wait_ends_on_the_event_or_times_out_to_its_own_path() -> None:
    journey = JourneyIn.model_validate(
        {
            "name": "Abandoned cart",
            "trigger": {"event": "CartAbandoned"},
            "steps": [
                {
                    "type": "wait",
                    "id": "grace",
                    "until_event": "OrderPlaced",
                    "timeout_seconds": 3600,
                    "next": "thanks",
                    "on_timeout": "nudge",
                },
                {"type": "send", "id": "nudge", "content": EMAIL},
                {"type": "send", "id": "thanks", "content": EMAIL},
            ],
        }
    )
    bought = on_event(journey, enter(journey, "jny_c", "a", 1, FACTS, START).state, "OrderPlaced", FACTS, START)
    assert [s.id for s in bought.sends] == ["thanks"]
    left = enter(journey, "jny_c", "b", 1, FACTS, START).state
    timed_out = on_clock(journey, left, FACTS, START + timedelta(hours=1))
    assert [s.id for s in timed_out.sends] == ["nudge"]
    assert timed_out.exited


def test_a_profile_and_a_segment_branch() -> None:
    journey = JourneyIn.model_validate(
        {
            "name": "VIP",
            "trigger": {"event": "TraitsComputed"},
            "steps": [
                {
                    "type": "branch",
                    "id": "big",
                    "condition": {"kind": "profile", "attribute": "spend", "op": "gte", "value": 500},
                    "then": "vip",
                    "otherwise": "seg",
                },
                {
                    "type": "branch",
                    "id": "seg",
                    "condition": {"kind": "segment", "segment_id": "seg_1"},
                    "then": "vip",
                    "otherwise": None,
                },
                {"type": "send", "id": "vip", "content": EMAIL},
            ],
        }
    )
    rich = enter(journey, "j", "a", 1, CustomerFacts(profile={"spend": 900}), START)
    member = enter(journey, "j", "b", 1, CustomerFacts(segments=frozenset({"seg_1"})), START)
    neither = enter(journey, "j", "c", 1, CustomerFacts(profile={"spend": "n/a"}), START)
    assert [s.id for s in rich.sends] == ["vip"]
    assert [s.id for s in member.sends] == ["vip"]
    assert neither.sends == []
    assert neither.exited


def test_a_random_split_follows_its_shares_and_replays_the_same() -> None:
    journey = JourneyIn.model_validate(
        {
            "name": "Split",
            "trigger": {"event": "CustomerCreated"},
            "steps": [
                {"type": "split", "id": "s", "paths": [{"share": 30, "next": "x"}, {"share": 70, "next": "y"}]},
                {"type": "send", "id": "x", "content": EMAIL},
                {"type": "send", "id": "y", "content": EMAIL},
            ],
        }
    )
    paths = [enter(journey, "j", f"c{i}", 1, FACTS, START).sends[0].id for i in range(2000)]
    assert 0.26 < paths.count("x") / 2000 < 0.34
    assert paths == [enter(journey, "j", f"c{i}", 1, FACTS, START).sends[0].id for i in range(2000)]


def test_a_wait_until_a_local_time_of_day_follows_the_customer_zone() -> None:
    # 09:00 UTC is 18:00 in Tokyo: 08:00 there is tomorrow, 23:00 UTC today
    assert next_local_time(START, time(8, 0), "Asia/Tokyo") == datetime(2026, 3, 2, 23, 0, tzinfo=UTC)
    # 09:00 UTC is 04:00 in New York: 08:00 there is 13:00 UTC the same day
    assert next_local_time(START, time(8, 0), "America/New_York") == datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    journey = JourneyIn.model_validate(
        {
            "name": "Morning",
            "trigger": {"event": "CustomerCreated"},
            "steps": [{"type": "wait", "id": "w", "until_local_time": "08:00:00", "next": None}],
        }
    )
    state = enter(journey, "j", "a", 1, CustomerFacts(timezone="Asia/Tokyo"), START).state
    assert state.wake_at == datetime(2026, 3, 2, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("reentry", "history", "now", "refusal"),
    [
        ("after_exit", EntryHistory(), START, None),
        ("after_exit", EntryHistory(entries=1, active=True), START, "already_in_journey"),
        ("never", EntryHistory(entries=1, last_exit_at=START), START, "no_reentry"),
        ("after_exit", EntryHistory(entries=1, last_exit_at=START), START + timedelta(hours=1), "reentry_too_soon"),
        ("after_exit", EntryHistory(entries=1, last_exit_at=START), START + timedelta(days=8), None),
        ("always", EntryHistory(active_journeys=2), START, "concurrency_cap"),
    ],
)
def test_entry_rules(reentry: str, history: EntryHistory, now: datetime, refusal: str | None) -> None:
    journey = welcome_journey(reentry=reentry, reentry_after_seconds=7 * 86400, max_concurrent_journeys=2)
    assert entry_refusal(journey, history, now) == refusal


def test_a_loop_without_a_wait_is_stopped() -> None:
    journey = JourneyIn.model_validate(
        {
            "name": "Loop",
            "trigger": {"event": "CustomerCreated"},
            "steps": [
                {"type": "send", "id": "a", "content": EMAIL, "next": "b"},
                {"type": "send", "id": "b", "content": EMAIL, "next": "a"},
            ],
        }
    )
    with pytest.raises(JourneyLoop):
        enter(journey, "j", "a", 1, FACTS, START)


def test_a_step_going_nowhere_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown step"):
        welcome_journey(steps=[{"type": "send", "id": "a", "content": EMAIL, "next": "missing"}])


def test_a_trigger_and_an_event_wait_match_the_event_data() -> None:
    journey = JourneyIn.model_validate(
        {
            "name": "Late order",
            "trigger": {"event": "OrderStatusChanged", "source": "ecrm.transactions", "match": {"status": "paid"}},
            "steps": [
                {
                    "type": "wait",
                    "id": "shipping",
                    "until_event": "OrderStatusChanged",
                    "until_match": {"status": ["shipped", "cancelled"]},
                    "timeout_seconds": 3600,
                    "on_timeout": "sorry",
                },
                {"type": "send", "id": "sorry", "content": EMAIL},
            ],
        }
    )
    assert triggered_by(journey.trigger, "OrderStatusChanged", "ecrm.transactions", {"status": "paid"})
    assert not triggered_by(journey.trigger, "OrderStatusChanged", "ecrm.transactions", {"status": "shipped"})
    assert not triggered_by(journey.trigger, "OrderStatusChanged", "ecrm.other", {"status": "paid"})
    assert not triggered_by(journey.trigger, "OrderStatusChanged", "ecrm.transactions", {})
    waiting = enter(journey, "j", "a", 1, FACTS, START).state
    # an event of the awaited type with other data leaves the wait as it is; the awaited data ends it
    delivered = on_event(journey, waiting, "OrderStatusChanged", FACTS, START, {"status": "delivered"})
    assert delivered.state.step_id == "shipping"
    assert delivered.state.wake_at == waiting.wake_at
    shipped = on_event(journey, delivered.state, "OrderStatusChanged", FACTS, START, {"status": "shipped"})
    assert shipped.exited
    assert shipped.sends == []


def test_an_event_match_without_an_awaited_event_is_refused() -> None:
    with pytest.raises(ValidationError, match="until_match"):
        welcome_journey(steps=[{"type": "wait", "id": "w", "seconds": 60, "until_match": {"status": "paid"}}])


def test_a_wait_until_a_time_the_trigger_named_and_for_the_same_order() -> None:
    journey = JourneyIn.model_validate(
        {
            "name": "Expiry then delivery",
            "trigger": {"event": "PointsEarned"},
            "steps": [
                {"type": "wait", "id": "w", "until_trigger_time": "expires_on", "before_seconds": 86400, "next": "o"},
                {
                    "type": "wait",
                    "id": "o",
                    "until_event": "OrderStatusChanged",
                    "same_as_trigger": ["order_id"],
                    "timeout_seconds": 60,
                },
            ],
        }
    )
    data = {"customer_id": "a", "expires_on": "2026-03-10", "order_id": "o1", "points": 5}
    state = enter(journey, "j", "a", 1, FACTS, START, data).state
    # the state keeps only what the waits read, and wakes a day before the expiry's midnight (UTC)
    assert state.trigger_data == {"expires_on": "2026-03-10", "order_id": "o1"}
    assert state.wake_at == datetime(2026, 3, 9, tzinfo=UTC)
    state = on_clock(journey, state, FACTS, datetime(2026, 3, 9, tzinfo=UTC)).state
    assert state.waiting_for == "OrderStatusChanged"
    other = on_event(journey, state, "OrderStatusChanged", FACTS, START, {"order_id": "o2"})
    assert other.state.step_id == "o"
    assert not other.exited
    assert on_event(journey, other.state, "OrderStatusChanged", FACTS, START, {"order_id": "o1"}).exited
    # a trigger naming no usable time has nothing to wait for: the customer leaves at once
    assert enter(journey, "j", "b", 1, FACTS, START, {"expires_on": "soon"}).exited
    assert enter(journey, "j", "c", 1, FACTS, START, {}).exited
    # a date-time with an offset wakes at the same instant, written in UTC
    offset = enter(journey, "j", "d", 1, FACTS, START, {"expires_on": "2026-03-10T02:00:00+02:00"}).state
    assert offset.wake_at is not None
    assert offset.wake_at.isoformat() == "2026-03-09T00:00:00+00:00"


@pytest.mark.parametrize(
    "wait",
    [
        {"seconds": 60, "before_seconds": 10},
        {"seconds": 60, "same_as_trigger": ["order_id"]},
        {"seconds": 60, "until_trigger_time": "expires_on"},
    ],
)
def test_wait_options_that_do_not_go_together_are_refused(wait: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        welcome_journey(steps=[{"type": "wait", "id": "w", **wait}])
