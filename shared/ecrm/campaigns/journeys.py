"""The journey interpreter: given a customer's state in a journey, an event or the clock, what happens next.

Pure: no store, no clock of its own, no AWS. The service feeds it the journey, the customer's state, what
it knows of the customer (`CustomerFacts`) and `now`; it answers the new state and the messages to send.
A customer runs through steps until a wait (the state keeps when to wake and which event would end the
wait early) or the end. The goal event exits the customer as converted wherever they are; an exit event
exits them too. Random splits draw from a hash of journey, step and customer, so a replay of the same
input takes the same path.

A customer is in a journey once at a time (a pass; `entry` counts them), unless the journey names a
`reentry_key`: then once per value of that field of the trigger event at a time. The points reminder is keyed
by `expires_on`: a customer waiting to be reminded of one expiry is warned of a later one, and that later
expiry gets its own pass and its own reminder instead of being refused as already in the journey. The
re-entry rules (`never`, `after_exit` with its cooling) apply per value; the goal and exit events end every
pass of the customer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field

from ecrm.campaigns.assignment import Arm, pick, unit_point
from ecrm.campaigns.models import (
    BranchStep,
    Condition,
    ExitStep,
    JourneyIn,
    SendStep,
    SplitStep,
    Trigger,
    WaitStep,
)
from ecrm.core.contract import Contract

ExitReason = Literal["completed", "goal", "exit_event", "deactivated"]


class JourneyState(Contract):
    """One customer's pass through a journey (`entry` counts their passes)."""

    journey_id: str
    customer_id: str
    entry: int
    status: Literal["active", "exited"] = "active"
    step_id: str | None = None
    entered_at: datetime
    wake_at: datetime | None = None
    waiting_for: str | None = None
    seen_events: list[str] = Field(default_factory=list)
    visited: list[str] = Field(default_factory=list)
    exit_reason: ExitReason | None = None
    exited_at: datetime | None = None
    trigger_data: dict[str, Any] = Field(
        default_factory=dict, description="The trigger event's values the waits read (only those: no profile data)"
    )
    pass_key: str | None = Field(
        default=None, description="The trigger's value of the journey's reentry_key: this pass is that value's"
    )
    counted: bool = Field(
        default=True,
        description="Whether this pass counts in the customer's active journeys (the cap): a keyed pass started "
        "while another pass of the journey was under way does not; each pass takes back only what it added",
    )

    @property
    def pass_id(self) -> str:
        """Who this pass is in keys: the customer, and a digest of the pass key when the journey has one."""
        return self.customer_id if self.pass_key is None else f"{self.customer_id}#{pass_digest(self.pass_key)}"


@dataclass(frozen=True)
class CustomerFacts:
    """What the branches read: the profile's attributes, the segments the customer is in, their time zone."""

    profile: Mapping[str, Any] = field(default_factory=dict)
    segments: frozenset[str] = frozenset()
    timezone: str = "UTC"


@dataclass(frozen=True)
class EntryHistory:
    """The customer's past with this journey and their load across journeys, for the entry rules."""

    entries: int = 0
    active: bool = False
    last_exit_at: datetime | None = None
    active_journeys: int = 0


@dataclass(frozen=True)
class Progress:
    state: JourneyState
    sends: list[SendStep] = field(default_factory=list)

    @property
    def exited(self) -> bool:
        return self.state.status == "exited"


class JourneyLoop(ValueError):
    """The steps went round without a wait: a definition error, stopped instead of looping for ever."""


def pass_key_of(journey: JourneyIn, data: Mapping[str, Any] | None) -> str | None:
    """The pass a trigger event enters: None for a journey without `reentry_key` (one pass per customer), else
    the event's value of that field (an event without it: the empty value, one pass of its own)."""
    if journey.reentry_key is None:
        return None
    value = (data or {}).get(journey.reentry_key)
    return "" if value is None else str(value)


def pass_digest(pass_key: str) -> str:
    """A pass key as it goes into table keys and message steps: any value, a short fixed alphabet and length."""
    return hashlib.sha256(pass_key.encode()).hexdigest()[:12]


def entry_refusal(journey: JourneyIn, history: EntryHistory, now: datetime) -> str | None:
    """Why the customer may not enter now, or None when they may."""
    if history.active:
        return "already_in_journey"
    if history.entries and journey.reentry == "never":
        return "no_reentry"
    cooling = timedelta(seconds=journey.reentry_after_seconds)
    if history.entries and history.last_exit_at is not None and now < history.last_exit_at + cooling:
        return "reentry_too_soon"
    if history.active_journeys >= journey.max_concurrent_journeys:
        return "concurrency_cap"
    return None


def enter(
    journey: JourneyIn,
    journey_id: str,
    customer_id: str,
    entry: int,
    facts: CustomerFacts,
    now: datetime,
    data: Mapping[str, Any] | None = None,
) -> Progress:
    kept = {name: (data or {})[name] for name in trigger_fields(journey) if (data or {}).get(name) is not None}
    state = JourneyState(
        journey_id=journey_id,
        customer_id=customer_id,
        entry=entry,
        entered_at=now,
        trigger_data=kept,
        pass_key=pass_key_of(journey, data),
    )
    return _run(journey, state, journey.steps[0].id, facts, now)


def trigger_fields(journey: JourneyIn) -> list[str]:
    """The trigger event's fields the journey's waits read: the state keeps these and nothing else of it."""
    fields: list[str] = []
    for step in journey.steps:
        if isinstance(step, WaitStep):
            fields += [*([step.until_trigger_time] if step.until_trigger_time else []), *step.same_as_trigger]
    return sorted(set(fields))


def matches(match: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    """Every field of `match` has its value in the event's data (a list in `match`: any of its values)."""
    for name, wanted in match.items():
        value = data.get(name)
        if value is None or not (value in wanted if isinstance(wanted, list) else value == wanted):
            return False
    return True


def triggered_by(trigger: Trigger, detail_type: str, source: str, data: Mapping[str, Any]) -> bool:
    return trigger.event == detail_type and trigger.source in (None, source) and matches(trigger.match, data)


def on_event(
    journey: JourneyIn,
    state: JourneyState,
    event: str,
    facts: CustomerFacts,
    now: datetime,
    data: Mapping[str, Any] | None = None,
) -> Progress:
    """An event about the customer: the goal or an exit event ends the pass; the awaited event (with the
    awaited data, `until_match`) ends the wait."""
    if state.status != "active":
        return Progress(state)
    seen = state.model_copy(update={"seen_events": [*state.seen_events, event]})
    if event == journey.goal_event:
        return Progress(_exit(seen, "goal", now))
    if event in journey.exit_events:
        return Progress(_exit(seen, "exit_event", now))
    step = _step(journey, state.step_id)
    if isinstance(step, WaitStep) and state.waiting_for == event and _awaited(step, state, data or {}):
        return _run(journey, _awake(seen), step.next, facts, now)
    return Progress(seen)


def on_clock(journey: JourneyIn, state: JourneyState, facts: CustomerFacts, now: datetime) -> Progress:
    """The clock reached the state's wake time: the wait is over (an event wait timed out)."""
    if state.status != "active" or state.wake_at is None or now < state.wake_at:
        return Progress(state)
    step = _step(journey, state.step_id)
    assert isinstance(step, WaitStep)
    following = step.on_timeout or step.next if state.waiting_for else step.next
    return _run(journey, _awake(state), following, facts, now)


def deactivate(state: JourneyState, now: datetime) -> JourneyState:
    return state if state.status != "active" else _exit(state, "deactivated", now)


def next_local_time(now: datetime, local: Any, timezone: str) -> datetime:
    """The next instant (from `now` on) when the clock in `timezone` reads `local` (a `datetime.time`)."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    here = now.astimezone(zone)
    candidate = here.replace(hour=local.hour, minute=local.minute, second=local.second, microsecond=0)
    if candidate < here:
        candidate = (here + timedelta(days=1)).replace(
            hour=local.hour, minute=local.minute, second=local.second, microsecond=0
        )
    return candidate.astimezone(now.tzinfo)


def holds(condition: Condition, state: JourneyState, facts: CustomerFacts) -> bool:
    if condition.kind == "segment":
        return condition.segment_id in facts.segments
    if condition.kind == "engagement":
        return condition.event in state.seen_events
    value = facts.profile.get(condition.attribute or "")
    if condition.op == "exists":
        return value is not None
    if condition.op == "eq":
        return bool(value == condition.value)
    if condition.op == "ne":
        return bool(value != condition.value)
    if value is None:
        return False
    try:
        return {
            "gt": value > condition.value,
            "gte": value >= condition.value,
            "lt": value < condition.value,
            "lte": value <= condition.value,
        }[condition.op]
    except TypeError:
        return False  # a profile value of another type than the rule's: the condition does not hold


# -- the machine ----------------------------------------------------------------------------------------------
def _run(journey: JourneyIn, state: JourneyState, step_id: str | None, facts: CustomerFacts, now: datetime) -> Progress:
    sends: list[SendStep] = []
    visited = list(state.visited)
    for _ in range(len(journey.steps) + 1):
        if step_id is None:
            return Progress(_exit(state.model_copy(update={"visited": visited}), "completed", now), sends)
        step = _step(journey, step_id)
        visited.append(step.id)
        if isinstance(step, SendStep):
            sends.append(step)
            step_id = step.next
        elif isinstance(step, BranchStep):
            step_id = step.then if holds(step.condition, state, facts) else step.otherwise
        elif isinstance(step, SplitStep):
            arms = [Arm(str(i), p.share) for i, p in enumerate(step.paths)]
            chosen = int(pick(unit_point(f"journey:{state.journey_id}:{step.id}", state.customer_id), arms))
            step_id = step.paths[chosen].next
        elif isinstance(step, ExitStep):
            return Progress(_exit(state.model_copy(update={"visited": visited}), "completed", now), sends)
        else:
            timing = _wait(step, state, facts, now)
            if timing is None:  # the trigger named no time to wait for: nothing to remind of
                return Progress(_exit(state.model_copy(update={"visited": visited}), "completed", now), sends)
            waiting = state.model_copy(update={"visited": visited, "step_id": step.id, **timing})
            return Progress(waiting, sends)
    raise JourneyLoop(f"journey {state.journey_id} loops without a wait")


def _wait(step: WaitStep, state: JourneyState, facts: CustomerFacts, now: datetime) -> dict[str, Any] | None:
    if step.seconds is not None:
        return {"wake_at": now + timedelta(seconds=step.seconds), "waiting_for": None}
    if step.until_local_time is not None:
        return {"wake_at": next_local_time(now, step.until_local_time, facts.timezone), "waiting_for": None}
    if step.until_trigger_time is not None:
        at = _instant(state.trigger_data.get(step.until_trigger_time))
        return None if at is None else {"wake_at": at - timedelta(seconds=step.before_seconds), "waiting_for": None}
    return {"wake_at": now + timedelta(seconds=step.timeout_seconds or 0), "waiting_for": step.until_event}


def _instant(value: Any) -> datetime | None:
    """A date (its midnight, UTC) or a date-time of an event's data, in UTC (the wake index compares wake times
    as text); None when it is neither."""
    try:
        parsed = datetime.fromisoformat(str(value)) if value is not None else None
    except ValueError:
        return None
    if parsed is None:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _awaited(step: WaitStep, state: JourneyState, data: Mapping[str, Any]) -> bool:
    """The awaited event's data matches, and it is about the trigger's own subject (the same order)."""
    same = all(
        data.get(name) is not None and data.get(name) == state.trigger_data.get(name) for name in step.same_as_trigger
    )
    return same and matches(step.until_match, data)


def _awake(state: JourneyState) -> JourneyState:
    return state.model_copy(update={"wake_at": None, "waiting_for": None})


def _exit(state: JourneyState, reason: ExitReason, now: datetime) -> JourneyState:
    return state.model_copy(
        update={"status": "exited", "exit_reason": reason, "exited_at": now, "wake_at": None, "waiting_for": None}
    )


def _step(journey: JourneyIn, step_id: str | None) -> SendStep | WaitStep | BranchStep | SplitStep | ExitStep:
    for step in journey.steps:
        if step.id == step_id:
            return step
    raise KeyError(step_id)
