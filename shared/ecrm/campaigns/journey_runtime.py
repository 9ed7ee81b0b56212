"""Customers moving through active journeys: entered by their trigger event, moved on by later events and by
the clock, their messages handed to broadcast.

The interpreter (`journeys`) decides; this applies its decisions. Messages go to broadcast first, keyed
`(journey:<id>, customer, <step>.<entry>)`, and the customer's state is saved after, conditional on the
version read: a crash in between replays the same decision, and broadcast's key makes the replayed send
the same message. Counters (entered, active, exits per reason, customers per step) and the customer's
number of active journeys (the cap) change in the state's own transaction. A send step that asks for
recommendations carries them in the message's `data` (broadcast renders templates with the profile and
`data` only).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ecrm.broadcast.models import MessageRequest
from ecrm.campaigns import journeys
from ecrm.campaigns.journeys import CustomerFacts, EntryHistory, JourneyState, Progress
from ecrm.campaigns.models import Journey, JourneyEntered, JourneyExited, SendStep
from ecrm.campaigns.ports import BroadcastGateway
from ecrm.campaigns.state_store import JourneyStateStore, StaleState
from ecrm.campaigns.store import CampaignStore
from ecrm.core.clock import Clock
from ecrm.core.events import DomainEvent


class FactsSource(Protocol):
    def facts(self, customer_id: str) -> CustomerFacts: ...


class NoFacts:
    """Until the customer store's profile read is wired: branches on profile and segment see nothing."""

    def facts(self, customer_id: str) -> CustomerFacts:
        return CustomerFacts()


class RecommendationSource(Protocol):
    def recommend(self, customer_id: str, k: int) -> list[dict[str, Any]]:
        """The customer's `k` best items, each a mapping the templates read (`item.name`, `item.url`...)."""
        ...


class NoRecommendations:
    """Where personalization's recommend function is not configured: an empty list, which the library's
    templates render as their general fallback (`{% if data.recommendations %}`)."""

    def recommend(self, customer_id: str, k: int) -> list[dict[str, Any]]:
        return []


@dataclass(frozen=True)
class ObservedEvent:
    event_id: str
    detail_type: str
    source: str
    customer_id: str
    data: Mapping[str, Any] = field(default_factory=dict)


def pass_entry(state: JourneyState) -> str:
    """The message step's suffix: the pass's entry, and for a keyed pass the key's digest (each expiry's reminder
    is its own message to broadcast; insights reads the step id before the last dot)."""
    if state.pass_key is None:
        return str(state.entry)
    return f"{state.entry}-{journeys.pass_digest(state.pass_key)[:8]}"


class JourneyRuntime:
    def __init__(
        self,
        states: JourneyStateStore,
        clock: Clock,
        *,
        broadcast: BroadcastGateway,
        facts: FactsSource,
        definitions: CampaignStore | None = None,
        recommendations: RecommendationSource | None = None,
    ) -> None:
        self.states = states
        self.clock = clock
        self.broadcast = broadcast
        self.facts = facts
        self.definitions = definitions
        self.recommendations = recommendations or NoRecommendations()

    def handle(self, source: str, detail_type: str, detail: Mapping[str, Any]) -> list[str]:
        """A domain event from the bus: about a customer (its data names one), against the active journeys."""
        data = detail.get("data") or {}
        customer_id = data.get("customer_id") if isinstance(data, Mapping) else None
        if not isinstance(customer_id, str) or not customer_id:
            return []
        event_id = str((detail.get("metadata") or {}).get("id") or "")
        observed = ObservedEvent(event_id, detail_type, source, customer_id, data)
        return self.observe(observed, self.active_journeys())

    def wake(self) -> int:
        """Every wait over by now, in pages, until none is left."""
        by_id = {j.journey_id: j for j in self.active_journeys()}
        total = 0
        while moved := self.wake_due(by_id):
            total += moved
        return total

    def active_journeys(self) -> list[Journey]:
        if self.definitions is None:
            return []
        active: list[Journey] = []
        after: str | None = None
        while True:
            page, after = self.definitions.journeys(100, after)
            active += [j for j in page if j.status == "active"]
            if after is None:
                return active

    def observe(self, event: ObservedEvent, active: Iterable[Journey]) -> list[str]:
        """An event about a customer, against every active journey; what happened in each (for the log).

        Each of the customer's active passes hears the event; a trigger enters the pass its `reentry_key` names
        (the only one, without a key) unless that pass is under way or heard this very event before."""
        outcomes = []
        for journey in active:
            passes = self._passes(journey, event.customer_id)
            for state, version in passes:
                if state.status != "active" or event.event_id in state.seen_events:
                    continue  # over, or a redelivered event
                facts = self.facts.facts(event.customer_id)
                progress = journeys.on_event(journey, state, event.detail_type, facts, self.clock.now(), event.data)
                progress = Progress(
                    progress.state.model_copy(update={"seen_events": [*progress.state.seen_events, event.event_id]}),
                    progress.sends,
                )
                outcomes.append(self._apply(journey, state, version, progress))
            if not journeys.triggered_by(journey.trigger, event.detail_type, event.source, event.data):
                continue
            key = journeys.pass_key_of(journey, event.data)
            earlier: tuple[JourneyState | None, int | None] = next(
                ((s, v) for s, v in passes if s.pass_key == key), (None, None)
            )
            before = earlier[0]
            if before is not None and (before.status == "active" or event.event_id in before.seen_events):
                continue
            others_active = any(s.status == "active" for s, _ in passes)
            outcomes.append(self._enter(journey, event, *earlier, others_active=others_active))
        return outcomes

    def _passes(self, journey: Journey, customer_id: str) -> list[tuple[JourneyState, int]]:
        if journey.reentry_key is not None:
            return self.states.passes(journey.journey_id, customer_id)
        state, version = self.states.state(journey.journey_id, customer_id)
        return [] if state is None or version is None else [(state, version)]

    def wake_due(self, journeys_by_id: dict[str, Journey], limit: int = 100) -> int:
        """Move on every customer whose wait is over; how many moved."""
        now = self.clock.now()
        moved = 0
        for journey_id, customer_id in self.states.due(now, limit):
            state, version = self.states.state(journey_id, customer_id)
            journey = journeys_by_id.get(journey_id)
            if state is None:
                continue
            if journey is None:  # deactivated while the customer waited: they leave it
                journey = self.definitions.journey(journey_id) if self.definitions else None
                if journey is None:
                    continue
                self._apply(journey, state, version, Progress(journeys.deactivate(state, now)))
                moved += 1
                continue
            progress = journeys.on_clock(journey, state, self.facts.facts(customer_id), now)
            if progress.state != state:
                self._apply(journey, state, version, progress)
                moved += 1
        return moved

    def _enter(
        self,
        journey: Journey,
        event: ObservedEvent,
        state: JourneyState | None,
        version: int | None,
        *,
        others_active: bool = False,
    ) -> str:
        """Enter a pass. A keyed pass that starts while another pass of the journey is under way is in a journey
        the customer is in already: the cap does not refuse it and it does not count again (`counted`)."""
        now = self.clock.now()
        history = EntryHistory(
            entries=state.entry if state else 0,
            active=False,
            last_exit_at=state.exited_at if state else None,
            active_journeys=0 if others_active else self.states.active_journeys(event.customer_id),
        )
        refusal = journeys.entry_refusal(journey, history, now)
        if refusal:
            return f"{journey.journey_id}:{refusal}"
        entry = history.entries + 1
        facts = self.facts.facts(event.customer_id)
        progress = journeys.enter(journey, journey.journey_id, event.customer_id, entry, facts, now, event.data)
        entered = progress.state.model_copy(update={"seen_events": [event.event_id], "counted": not others_active})
        return self._apply(journey, state, version, Progress(entered, progress.sends), entered=True)

    def _apply(
        self,
        journey: Journey,
        before: JourneyState | None,
        version: int | None,
        progress: Progress,
        *,
        entered: bool = False,
    ) -> str:
        after = progress.state
        if progress.sends:
            self.broadcast.request([self._message(journey, after, step) for step in progress.sends])
        now = self.clock.now()
        events: list[DomainEvent] = []
        if entered:
            events.append(
                JourneyEntered(
                    journey_id=journey.journey_id, customer_id=after.customer_id, entry=after.entry, occurred_at=now
                )
            )
        exited = after.status == "exited" and (entered or (before is not None and before.status == "active"))
        if exited and after.exit_reason is not None:
            events.append(
                JourneyExited(
                    journey_id=journey.journey_id,
                    customer_id=after.customer_id,
                    entry=after.entry,
                    reason=after.exit_reason,
                    occurred_at=now,
                )
            )
        visited_before = len(before.visited) if before is not None and not entered else 0
        try:
            self.states.save(
                after,
                expected_version=version,
                entered=entered,
                exited_reason=after.exit_reason if exited else None,
                steps=after.visited[visited_before:],
                events=events,
                now=now,
            )
        except StaleState:
            return f"{journey.journey_id}:stale"
        return f"{journey.journey_id}:{after.status}:{after.step_id or after.exit_reason}"

    def _message(self, journey: Journey, state: JourneyState, step: SendStep) -> MessageRequest:
        data: dict[str, Any] = {"journey_id": journey.journey_id, "step": step.id}
        if step.recommendations:
            data["recommendations"] = self.recommendations.recommend(state.customer_id, step.recommendations)
        return MessageRequest.model_validate(
            {
                "customer_id": state.customer_id,
                "purpose": journey.purpose,
                "channel": step.channel,
                "content": {step.channel: step.content[step.channel]} if step.channel else step.content,
                "source": f"journey:{journey.journey_id}",
                "step": f"{step.id}.{pass_entry(state)}",
                "data": data,
            }
        )
