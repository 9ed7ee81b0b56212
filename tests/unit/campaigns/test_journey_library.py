"""The ready-made journeys: each is a valid journey, every event it names is published today and routed to the
journey queue, and a draft takes parameters, content and overrides or says clearly what is wrong."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
from ecrm.campaigns.journey_library import CART_INTERACTIONS, ENTRIES, catalogue, draft
from ecrm.campaigns.models import BranchStep, JourneyIn, LibraryDraftIn, SendStep, WaitStep
from ecrm.core.errors import EcrmError, InvalidInput, NotFound

from tests.unit.campaigns.factories import EMAIL

ROOT = Path(__file__).resolve().parents[3]
SCHEMAS = ROOT / "events" / "schemas"


def infra_constant(name: str) -> Any:
    """A literal of the engine's stack module, read from its source: importing the CDK app takes seconds."""
    tree = ast.parse((ROOT / "infra" / "engines" / "campaigns.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError(name)


JOURNEY_EVENTS: dict[str, list[str]] = infra_constant("JOURNEY_EVENTS")
JOURNEY_INTERACTIONS: list[str] = infra_constant("JOURNEY_INTERACTIONS")
REQUIRED = {"win_back": {"segment_id": "seg_c"}}


def data_fields(source: str, detail_type: str) -> set[str]:
    schema = json.loads((SCHEMAS / source / f"{detail_type}.json").read_text(encoding="utf-8"))
    name = schema["properties"]["data"]["$ref"].rsplit("/", 1)[-1]
    return set(schema["$defs"][name]["properties"])


def published_by() -> dict[str, set[str]]:
    """detail-type -> the sources whose schemas declare it."""
    found: dict[str, set[str]] = {}
    for path in SCHEMAS.glob("*/*.json"):
        found.setdefault(path.stem, set()).add(path.parent.name)
    return found


def awaited_events(journey: JourneyIn) -> list[str]:
    """Every event the journey reacts to once a customer is in: goal, exits, waits, engagement branches."""
    names = [*([journey.goal_event] if journey.goal_event else []), *journey.exit_events]
    for step in journey.steps:
        if isinstance(step, WaitStep) and step.until_event:
            names.append(step.until_event)
        if isinstance(step, BranchStep) and step.condition.kind == "engagement" and step.condition.event:
            names.append(step.condition.event)
    return names


def test_the_library_has_the_ready_made_journeys_each_valid() -> None:
    items = catalogue().items
    assert {i.name for i in items} == {
        "welcome_series",
        "birthday",
        "abandoned_cart",
        "post_purchase_cross_sell",
        "win_back",
        "points_expiring",
        "order_delay_recovery",
        "failed_payment_recovery",
    }
    required = {i.name: [p.name for p in i.parameters if p.default is None] for i in items}
    assert {name: params for name, params in required.items() if params} == {"win_back": ["segment_id"]}
    assert all(i.trigger_ready for i in items), "every ready-made journey starts on the event it is about"
    assert all(i.trigger_note for i in items)


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_every_event_a_ready_made_journey_names_is_published_and_routed_to_journeys(name: str) -> None:
    journey = draft(name, LibraryDraftIn(parameters=REQUIRED.get(name, {})))
    trigger = journey.trigger
    assert trigger.source is not None, "a ready-made journey names the source of its trigger"
    fields = data_fields(trigger.source, trigger.event)
    assert "customer_id" in fields, "the runtime enters the customer the event's data names"
    assert set(trigger.match) <= fields
    routed = {(source, event) for source, events in JOURNEY_EVENTS.items() for event in events}
    if trigger.event == "InteractionRecorded":
        assert set(trigger.match["type"]) <= set(JOURNEY_INTERACTIONS) == set(CART_INTERACTIONS)  # type: ignore[arg-type]
    else:
        assert (trigger.source, trigger.event) in routed
    sources = published_by()
    for event in awaited_events(journey):
        assert event in sources, f"{event} is published by no engine"
        assert any((source, event) in routed for source in sources[event]), f"{event} does not reach journeys"


def test_a_draft_takes_parameters_content_and_overrides() -> None:
    journey = draft(
        "abandoned_cart",
        LibraryDraftIn.model_validate(
            {
                "parameters": {"hours": 2},
                "content": {"reminder": EMAIL},
                "overrides": {"name": "Cart rescue", "goal_event": None, "max_concurrent_journeys": 5},
            }
        ),
    )
    steps = {s.id: s for s in journey.steps}
    assert steps["grace"].seconds == 2 * 3600  # type: ignore[union-attr]
    assert steps["reminder"].content == EMAIL  # type: ignore[union-attr]
    assert (journey.name, journey.goal_event, journey.max_concurrent_journeys) == ("Cart rescue", None, 5)
    assert journey.trigger.match == {"type": ["checkout_started", "cart_viewed"]}


def test_the_win_back_starts_on_the_churn_segment_given() -> None:
    journey = draft("win_back", LibraryDraftIn(parameters={"segment_id": "seg_churn"}))
    assert journey.trigger.event == "SegmentEntered"
    assert journey.trigger.match == {"segment_id": "seg_churn"}


def test_the_cross_sell_asks_for_recommendations() -> None:
    journey = draft("post_purchase_cross_sell", LibraryDraftIn(parameters={"items": 6}))
    (send,) = [s for s in journey.steps if s.type == "send"]
    assert isinstance(send, SendStep)
    assert send.recommendations == 6
    assert "data.recommendations" in send.content["email"]["text"]


@pytest.mark.parametrize(
    ("name", "body", "error", "field"),
    [
        ("nope", {}, NotFound, None),
        ("win_back", {}, InvalidInput, "parameters.segment_id"),
        ("abandoned_cart", {"parameters": {"hour": 2}}, InvalidInput, "parameters"),
        ("abandoned_cart", {"parameters": {"hours": 0}}, InvalidInput, "parameters.hours"),
        ("abandoned_cart", {"parameters": {"hours": "4"}}, InvalidInput, "parameters.hours"),
        ("abandoned_cart", {"content": {"missing": EMAIL}}, InvalidInput, "content.missing"),
        ("points_expiring", {"parameters": {"remind_days_before": 400}}, InvalidInput, "steps.0.wait.before_seconds"),
        ("points_expiring", {"parameters": {"expiry_days": 365}}, InvalidInput, "parameters"),
        (
            "welcome_series",
            {"overrides": {"steps": [{"type": "send", "id": "a", "content": EMAIL, "next": "gone"}]}},
            InvalidInput,
            None,
        ),
    ],
)
def test_a_bad_draft_is_a_clear_client_error(
    name: str, body: dict[str, Any], error: type[EcrmError], field: str | None
) -> None:
    with pytest.raises(error) as raised:
        draft(name, LibraryDraftIn.model_validate(body))
    if field is not None:
        assert raised.value.extensions.get("field") == field
    assert raised.value.status < 500
