"""Ready-made journeys running on moto with a fixed clock, fed bus events as the journey queue delivers them:
who enters (the trigger's data decides), who leaves at the goal, what the waits send, the re-entry rules,
the cap freeing up when a journey ends, recommendations rendered into the message, and the library routes."""

from __future__ import annotations

import json
from datetime import timedelta
from itertools import count
from typing import Any

import pytest
from ecrm.broadcast.rendering import render_parts
from ecrm.campaigns.journey_library import draft
from ecrm.campaigns.journey_runtime import JourneyRuntime, NoFacts, RecommendationSource
from ecrm.campaigns.models import Journey, LibraryDraftIn
from ecrm.campaigns.state_store import JourneyStateStore

from tests.integration.campaigns.conftest import TABLE, Engine
from tests.samples import api_request

HOUR = 3600
EVENT_IDS = count()


class FakeRecommendations:
    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []

    def recommend(self, customer_id: str, k: int) -> list[dict[str, Any]]:
        self.asked.append((customer_id, k))
        return [{"name": f"Item {i}", "url": f"https://shop.test/p/{i}"} for i in range(k)]


def runtime(engine: Engine, recommendations: RecommendationSource | None = None) -> JourneyRuntime:
    return JourneyRuntime(
        JourneyStateStore(engine.client, TABLE),
        engine.clock,
        broadcast=engine.broadcast,
        facts=NoFacts(),
        definitions=engine.store,
        recommendations=recommendations,
    )


def active(engine: Engine, name: str, **body: Any) -> Journey:
    journey = engine.journeys.create(draft(name, LibraryDraftIn.model_validate(body)), actor="s", correlation_id=None)
    return engine.journeys.activate(journey.journey_id, correlation_id=None)


def publish(run: JourneyRuntime, source: str, detail_type: str, customer_id: str, **data: Any) -> list[str]:
    """An event as the journey queue's consumer hands it over: its detail with a new event id."""
    detail = {"metadata": {"id": f"evt_{next(EVENT_IDS)}"}, "data": {"customer_id": customer_id, **data}}
    return run.handle(source, detail_type, detail)


def sent(engine: Engine, journey: Journey) -> set[tuple[str, str]]:
    return {(c, s) for (src, c, s) in engine.broadcast.messages if src == f"journey:{journey.journey_id}"}


def test_abandoned_cart_enters_on_checkout_leaves_at_the_order_and_reenters_after_its_cooling(engine: Engine) -> None:
    # Given the ready-made abandoned cart journey, active
    journey, run = active(engine, "abandoned_cart", parameters={"hours": 4}), runtime(engine)

    # When a visitor only browses, one customer starts a checkout and buys, another views a cart and leaves
    publish(run, "ecrm.customers", "InteractionRecorded", "browser", type="page_view")
    publish(run, "ecrm.customers", "InteractionRecorded", "buyer", type="checkout_started")
    publish(run, "ecrm.customers", "InteractionRecorded", "leaver", type="cart_viewed")
    engine.clock.advance(hours=1)
    publish(run, "ecrm.transactions", "OrderPlaced", "buyer", order_id="o1")
    engine.clock.advance(hours=3)
    run.wake()

    # Then only the one who left got the reminder, and the buyer left at the goal
    assert sent(engine, journey) == {("leaver", "reminder.1")}
    engine.clock.advance(days=1)
    run.wake()
    assert sent(engine, journey) == {("leaver", "reminder.1"), ("leaver", "nudge.1")}
    report = engine.journeys.report(journey.journey_id)
    assert (report.entered, report.active, report.exited) == (2, 0, {"goal": 1, "completed": 1})

    # And a new checkout within a day of leaving does not enter them again; a day later it does
    again = publish(run, "ecrm.customers", "InteractionRecorded", "leaver", type="checkout_started")
    assert again == [f"{journey.journey_id}:reentry_too_soon"]
    engine.clock.advance(days=1)
    again = publish(run, "ecrm.customers", "InteractionRecorded", "leaver", type="checkout_started")
    assert again == [f"{journey.journey_id}:active:grace"]
    engine.clock.advance(hours=4)
    run.wake()
    assert ("leaver", "reminder.2") in sent(engine, journey)


def test_order_delay_recovery_apologises_only_for_an_order_not_shipped_in_time(engine: Engine) -> None:
    journey, run = active(engine, "order_delay_recovery", parameters={"hours": 72}), runtime(engine)
    publish(run, "ecrm.transactions", "OrderStatusChanged", "on_time", status="paid", order_id="o1")
    publish(run, "ecrm.transactions", "OrderStatusChanged", "late", status="paid", order_id="o2")
    publish(run, "ecrm.transactions", "OrderStatusChanged", "never", status="placed", order_id="o3")

    # the first ships after ten hours; the late one only sees other orders of theirs paid and shipped
    engine.clock.advance(hours=10)
    publish(run, "ecrm.transactions", "OrderStatusChanged", "on_time", status="shipped", order_id="o1")
    publish(run, "ecrm.transactions", "OrderStatusChanged", "late", status="paid", order_id="o4")
    publish(run, "ecrm.transactions", "OrderStatusChanged", "late", status="shipped", order_id="o9")
    engine.clock.advance(hours=62)
    assert run.wake() == 1

    assert sent(engine, journey) == {("late", "apology.1")}
    message = engine.broadcast.messages[(f"journey:{journey.journey_id}", "late", "apology.1")]
    assert (message.purpose, sorted(message.content)) == ("transactional", ["email", "sms"])
    assert engine.journeys.report(journey.journey_id).exited == {"completed": 2}


def test_points_expiring_reminds_before_the_warned_points_expiry(engine: Engine) -> None:
    journey, run = active(engine, "points_expiring", parameters={"remind_days_before": 14}), runtime(engine)
    # loyalty warns 30 days ahead; another customer's warning names an expiry already within the lead
    in_30_days = (engine.clock.now() + timedelta(days=30)).date().isoformat()
    in_10_days = (engine.clock.now() + timedelta(days=10)).date().isoformat()
    publish(run, "ecrm.transactions", "PointsExpiring", "c-1", points=120, expires_on=in_30_days)
    publish(run, "ecrm.transactions", "PointsExpiring", "c-2", points=50, expires_on=in_10_days)

    def reminded() -> set[tuple[str, str]]:
        """(customer, step id and entry): each expiry's pass adds a digest of its expires_on to the step."""
        return {(c, step.split("-")[0]) for c, step in sent(engine, journey)}

    run.wake()
    assert reminded() == {("c-2", "remind.1")}
    engine.clock.advance(days=15)
    run.wake()
    assert reminded() == {("c-2", "remind.1")}
    engine.clock.advance(days=1)
    run.wake()
    assert reminded() == {("c-1", "remind.1"), ("c-2", "remind.1")}
    assert engine.journeys.report(journey.journey_id).exited == {"completed": 2}


def test_failed_payment_recovery_follows_a_payment_failure_only(engine: Engine) -> None:
    journey, run = active(engine, "failed_payment_recovery", parameters={"hours": 6}), runtime(engine)
    publish(run, "ecrm.transactions", "PurchaseFailed", "declined", reason="payment_declined")
    publish(run, "ecrm.transactions", "PurchaseFailed", "vendor", reason="vendor_refused")
    publish(run, "ecrm.transactions", "PurchaseFailed", "retried", reason="payment_unavailable")
    engine.clock.advance(hours=2)
    publish(run, "ecrm.transactions", "PurchaseBrokered", "retried", purchase_id="p2")
    engine.clock.advance(hours=4)
    run.wake()
    assert sent(engine, journey) == {("declined", "help.1")}
    assert engine.journeys.report(journey.journey_id).exited == {"goal": 1, "completed": 1}


def test_the_cross_sell_renders_personalization_recommendations_into_its_message(engine: Engine) -> None:
    recommendations = FakeRecommendations()
    journey = active(engine, "post_purchase_cross_sell", parameters={"days_after": 3, "items": 2})
    run = runtime(engine, recommendations)
    publish(run, "ecrm.transactions", "OrderPlaced", "c-1", order_id="o1")
    engine.clock.advance(days=3)
    run.wake()

    message = engine.broadcast.messages[(f"journey:{journey.journey_id}", "c-1", "suggest.1")]
    assert recommendations.asked == [("c-1", 2)]
    rendered = render_parts(message.content["email"], profile={"first_name": "Ada"}, data=message.data)
    assert rendered["subject"] == "Ada, goes well with your order"
    assert "- Item 0 https://shop.test/p/0\n- Item 1 https://shop.test/p/1" in rendered["text"]
    # without recommendations the same content falls back to its general text
    fallback = render_parts(message.content["email"], profile={}, data={})
    assert fallback["text"] == "Have a look at what is new in the shop."


def test_a_welcome_series_is_never_entered_twice_and_the_cap_frees_when_a_journey_ends(engine: Engine) -> None:
    welcome = active(engine, "welcome_series")
    cart = active(engine, "abandoned_cart", overrides={"max_concurrent_journeys": 1})
    run = runtime(engine)

    # a new customer enters the welcome series, which takes their one slot for the capped cart journey
    publish(run, "ecrm.customers", "CustomerCreated", "c-1")
    capped = publish(run, "ecrm.customers", "InteractionRecorded", "c-1", type="checkout_started")
    assert f"{cart.journey_id}:concurrency_cap" in capped

    # an order ends the welcome (its goal): the slot is free, and a created event again does not re-enter
    publish(run, "ecrm.transactions", "OrderPlaced", "c-1", order_id="o1")
    assert publish(run, "ecrm.customers", "CustomerCreated", "c-1") == [f"{welcome.journey_id}:no_reentry"]
    entered = publish(run, "ecrm.customers", "InteractionRecorded", "c-1", type="checkout_started")
    assert f"{cart.journey_id}:active:grace" in entered
    assert sent(engine, welcome) == {("c-1", "welcome.1")}


def call(engine: Engine, context: Any, method: str, resource: str, **options: Any) -> tuple[int, Any]:
    from functions.campaigns import api

    event = api_request(method, resource, **options)
    handler: Any = api.handler
    response = handler(event, context, api.Deps(engine.campaigns, engine.journeys))
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def test_the_library_routes_list_and_create_drafts_and_refuse_bad_requests(engine: Engine, lambda_context: Any) -> None:
    status, library = call(engine, lambda_context, "GET", "/journeys/library", groups="analyst")
    assert status == 200
    assert len(library["items"]) == 8

    path = {"name": "win_back"}
    body = {"parameters": {"segment_id": "seg_churn"}, "overrides": {"name": "Win them back"}}
    status, created = call(engine, lambda_context, "POST", "/journeys/library/{name}", path_parameters=path, body=body)
    assert status == 201, created
    assert (created["status"], created["name"], created["trigger"]["match"]) == (
        "draft",
        "Win them back",
        {"segment_id": "seg_churn"},
    )

    refused = [
        call(
            engine,
            lambda_context,
            "POST",
            "/journeys/library/{name}",
            path_parameters=path,
            body=body,
            groups="analyst",
        ),
        call(engine, lambda_context, "POST", "/journeys/library/{name}", path_parameters={"name": "nope"}, body={}),
        call(engine, lambda_context, "POST", "/journeys/library/{name}", path_parameters=path, body={}),
        call(engine, lambda_context, "POST", "/journeys/library/{name}", path_parameters=path, body={**body, "x": 1}),
    ]
    assert [status for status, _ in refused] == [403, 404, 400, 422]
    assert refused[2][1]["field"] == "parameters.segment_id"
    status, listed = call(engine, lambda_context, "GET", "/journeys")
    assert [j["journey_id"] for j in listed["items"]] == [created["journey_id"]]


def test_a_crash_between_the_send_and_the_save_replays_into_the_same_message(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an active abandoned cart journey whose state store fails its next write once
    journey, run = active(engine, "abandoned_cart"), runtime(engine)
    save = JourneyStateStore.save
    crashes = {"left": 1}

    def crash_once(self: JourneyStateStore, *args: Any, **kwargs: Any) -> None:
        if crashes["left"]:
            crashes["left"] -= 1
            raise RuntimeError("the worker died after handing the message over")
        save(self, *args, **kwargs)

    # When the trigger enters a customer, and the wake that sends the reminder dies after the send
    detail = {"metadata": {"id": "evt_checkout"}, "data": {"customer_id": "c-1", "type": "checkout_started"}}
    run.handle("ecrm.customers", "InteractionRecorded", detail)
    engine.clock.advance(hours=4)
    monkeypatch.setattr(JourneyStateStore, "save", crash_once)
    with pytest.raises(RuntimeError):
        run.wake()
    # and the queue redelivers the trigger while the next wake runs the wait again
    run.handle("ecrm.customers", "InteractionRecorded", detail)
    assert run.wake() == 1

    # Then the replay asked for the same message (broadcast's key keeps one), and the customer moved on once
    assert engine.broadcast.calls == 2
    assert sent(engine, journey) == {("c-1", "reminder.1")}
    report = engine.journeys.report(journey.journey_id)
    assert (report.entered, report.active, report.steps["reminder"]) == (1, 1, 1)
