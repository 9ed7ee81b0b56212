"""Broadcast's counts of its message events (a window of its stream each) counted on the campaign arms once
each, whatever the redeliveries; other sources' messages left alone; the report's rates read the counts."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from ecrm.broadcast.models import MessageEvent
from ecrm.campaigns.assignment import arms_of, assign, unit_point
from ecrm.campaigns.models import HOLDOUT
from ecrm.campaigns.outcomes import CampaignOutcomes, campaign_arm
from ecrm.campaigns.wiring import emit_metric

from functions.campaigns import on_outcome_event
from tests import outcome_counts
from tests.integration.campaigns.conftest import NOW, Engine
from tests.integration.campaigns.test_campaign_runs import launched
from tests.samples import sqs_batch
from tests.unit.campaigns.factories import EMAIL, campaign_in

consume: Any = on_outcome_event.handler


def event(detail_type: str, message_id: str, source: str, step: str, status: str, **extra: Any) -> MessageEvent:
    return outcome_counts.message_event(
        detail_type, message_id, source=source, step=step, status=status, customer_id="c1", at=NOW, **extra
    )


def window(event_id: str, *events: MessageEvent) -> str:
    """Broadcast's counts of `events` as one window's `MessageOutcomesCounted`, in an SQS body."""
    (counted,) = outcome_counts.counted(events)
    return outcome_counts.bus_body(counted, event_id=event_id, at=NOW)


def test_each_window_counts_once_on_its_arms(engine: Engine, lambda_context: Any) -> None:
    # Given a campaign whose run handed its messages over
    campaign_id = launched(engine)
    engine.execute(campaign_id, 1)
    source = f"campaign:{campaign_id}"

    # When broadcast's counts of a window arrive, twice in a batch, then the batch again; one of a journey
    counts = window(
        "win-1",
        event("MessageSent", "m1", source, "r1.a", "sent"),
        event("MessageSent", "m2", source, "r1.a", "sent"),
        event("MessageSent", "m3", source, "r1.b", "sent"),
        event("MessageDelivered", "m1", source, "r1.a", "delivered"),
        event("MessageOpened", "m1", source, "r1.a", "delivered"),
        event("MessageBounced", "m3", source, "r1.b", "bounced"),
        event("MessageSent", "m9", "journey:jny_1", "hello.1", "sent"),
    )
    outcomes = CampaignOutcomes(engine.store, engine.clock)
    assert consume(sqs_batch([counts, counts]), lambda_context, outcomes) == {"batchItemFailures": []}
    consume(sqs_batch([counts]), lambda_context, outcomes)

    # Then each counts once on its arm, and the rates follow
    arms = {a.arm: a for a in engine.campaigns.report(campaign_id).arms}
    assert (arms["a"].sent, arms["a"].delivered, arms["a"].opened) == (2, 1, 1)
    assert (arms["b"].sent, arms["b"].bounced) == (1, 1)
    assert arms["a"].rates["delivery"] == 0.5
    assert arms["b"].rates["bounce"] == 1.0


def test_a_window_counts_in_one_transaction_and_a_worker_dying_after_it_counts_nothing_twice(
    engine: Engine, lambda_context: Any
) -> None:
    # Given a window of ten events of one campaign on two arms
    campaign_id = launched(engine)
    engine.execute(campaign_id, 1)
    source = f"campaign:{campaign_id}"
    events = [event("MessageSent", f"m{n}", source, f"r1.{'ab'[n % 2]}", "sent") for n in range(8)]
    events += [event("MessageDelivered", f"m{n}", source, f"r1.{'ab'[n % 2]}", "delivered") for n in range(2)]
    calls: list[int] = []
    real = engine.store.client.transact_write_items

    def counting(**kwargs: Any) -> Any:
        calls.append(len(kwargs["TransactItems"]))
        return real(**kwargs)

    engine.store.client.transact_write_items = counting
    outcomes = CampaignOutcomes(engine.store, engine.clock)
    # When it is counted, then delivered again (the worker died before the queue deleted it) with the next window
    first = window("win-1", *events)
    assert consume(sqs_batch([first]), lambda_context, outcomes) == {"batchItemFailures": []}
    assert calls == [3]  # the window's marker and one write per arm
    later = window("win-2", event("MessageDelivered", "m2", source, "r1.a", "delivered"))
    assert consume(sqs_batch([first, later]), lambda_context, outcomes) == {"batchItemFailures": []}
    # Then each event counted once on its arm
    arms = {a.arm: a for a in engine.campaigns.report(campaign_id).arms}
    assert (arms["a"].sent, arms["a"].delivered) == (4, 2)
    assert (arms["b"].sent, arms["b"].delivered) == (4, 1)


def test_a_window_that_cannot_be_counted_is_retried_and_counts_once(engine: Engine, lambda_context: Any) -> None:
    campaign_id = launched(engine)
    engine.execute(campaign_id, 1)
    source = f"campaign:{campaign_id}"
    counts = window("win-1", *(event("MessageSent", f"m{n}", source, "r1.a", "sent") for n in range(3)))
    real = engine.store.client.transact_write_items

    def unavailable(**kwargs: Any) -> Any:
        raise RuntimeError("DynamoDB did not answer")

    engine.store.client.transact_write_items = unavailable
    outcomes = CampaignOutcomes(engine.store, engine.clock)
    answer = consume(sqs_batch([counts]), lambda_context, outcomes)
    assert len(answer["batchItemFailures"]) == 1
    engine.store.client.transact_write_items = real
    assert consume(sqs_batch([counts]), lambda_context, outcomes) == {"batchItemFailures": []}
    assert {a.arm: a.sent for a in engine.campaigns.report(campaign_id).arms}["a"] == 3


def test_only_campaign_steps_name_an_arm() -> None:
    assert campaign_arm("campaign:cmp_1", "r2.b") == ("cmp_1", "b")
    assert campaign_arm("journey:jny_1", "r1.a") is None
    assert campaign_arm("campaign:cmp_1", "0") is None


def converters(customers: list[str], rate: float) -> list[str]:
    """Exactly `rate` of `customers` (rounded), chosen by a hash: the arms' observed rates are the planted ones
    whichever customers the campaign's random id puts in the holdout (drawn by chance, a planted effect of this
    size would miss significance now and then, and no effect would show as significant one run in twenty)."""
    ranked = sorted(customers, key=lambda c: unit_point("bench-conversion", c))
    return ranked[: round(rate * len(customers))]


@pytest.mark.parametrize(("treated_rate", "control_rate", "significant"), [(0.20, 0.05, True), (0.08, 0.08, False)])
def test_a_planted_conversion_effect_shows_as_significant_lift_and_none_does_not(
    engine: Engine, treated_rate: float, control_rate: float, significant: bool
) -> None:
    # Given a campaign of 600 (90% treated, 10% holdout) launched now
    audience = [f"cust-{i:05d}" for i in range(600)]
    campaign = engine.campaigns.create(
        campaign_in(
            audience={"customer_ids": audience},
            variants=[{"key": "a", "share": 90, "content": EMAIL}],
            holdout_share=10,
        ),
        actor="staff-1",
        correlation_id=None,
    )
    engine.campaigns.launch(campaign.campaign_id, correlation_id=None)
    arms = arms_of(engine.campaigns.get(campaign.campaign_id))
    engine.execute(campaign.campaign_id, 1)

    # When the treated buy at one rate and the holdout at another, within the window (one order twice)
    outcomes = CampaignOutcomes(engine.store, engine.clock)
    placed = NOW + timedelta(days=2)
    holdout = {c for c in audience if assign(campaign.campaign_id, c, arms) == HOLDOUT}
    treated = [c for c in audience if c not in holdout]
    for customer in converters(treated, treated_rate) + converters(sorted(holdout), control_rate):
        outcomes.convert(customer, f"ord-{customer}", 1000, placed)
        outcomes.convert(customer, f"ord-{customer}", 1000, placed)
    outcomes.convert(audience[0], "ord-late", 1000, NOW + timedelta(days=30))  # outside the window
    outcomes.convert("cust-stranger", "ord-x", 1000, placed)  # not in the audience

    # Then the report's lift says so, and each order counted once
    report = engine.campaigns.report(campaign.campaign_id)
    lift = report.lift[0]
    assert lift.significant is significant
    by_arm = {a.arm: a for a in report.arms}
    assert sum(a.converted for a in report.arms) * 1000 == sum(a.revenue_minor for a in report.arms)
    assert abs(lift.treated_rate - treated_rate) < 0.03
    assert by_arm["a"].rates["conversion"] == pytest.approx(lift.treated_rate, abs=1e-6)


def test_each_count_is_one_cloudwatch_metric_per_campaign_and_variant(engine: Engine, lambda_context: Any) -> None:
    # Given a campaign whose run handed its messages over, and outcomes that record their metrics
    campaign_id = launched(engine)
    engine.execute(campaign_id, 1)
    source = f"campaign:{campaign_id}"
    emitted: list[tuple[str, float, dict[str, str]]] = []
    outcomes = CampaignOutcomes(
        engine.store, engine.clock, metric=lambda name, value, dims: emitted.append((name, value, dict(dims)))
    )

    # When a window arrives twice, one of its messages a journey's, and a customer orders twice within the window
    counts = window(
        "win-1",
        event("MessageSent", "m1", source, "r1.a", "sent"),
        event("MessageDelivered", "m1", source, "r1.a", "delivered"),
        event("MessageClicked", "m1", source, "r1.a", "delivered", link="https://shop.example.com/a"),
        event("MessageComplained", "m3", source, "r1.b", "complained"),
        event("MessageSent", "m9", "journey:jny_1", "hello.1", "sent"),
    )
    consume(sqs_batch([counts, counts]), lambda_context, outcomes)
    customer = engine.campaigns.get(campaign_id).audience.customer_ids[0]
    arm = assign(campaign_id, customer, arms_of(engine.campaigns.get(campaign_id)))
    for order in ("ord-1", "ord-1", "ord-2"):
        outcomes.convert(customer, order, 1000, NOW + timedelta(hours=1))

    # Then each count is one metric with the campaign and the variant as its only dimensions; the repeats,
    # the journey's message and the second order emit nothing
    dims = {"campaign_id": campaign_id, "variant": "a"}
    assert sorted(emitted, key=lambda e: e[0]) == sorted(
        [
            ("Sent", 1, dims),
            ("Delivered", 1, dims),
            ("Clicked", 1, dims),
            ("Complained", 1, {**dims, "variant": "b"}),
            ("Converted", 1, {**dims, "variant": arm}),
        ],
        key=lambda e: e[0],
    )


def test_the_metric_is_written_in_embedded_metric_format(capsys: pytest.CaptureFixture[str]) -> None:
    emit_metric("Opened", 1, {"campaign_id": "cmp_1", "variant": "a"})
    document = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "ecrm"
    assert set(directive["Dimensions"][0]) >= {"campaign_id", "variant"}
    assert (document["Opened"], document["campaign_id"], document["variant"]) == ([1.0], "cmp_1", "a")
