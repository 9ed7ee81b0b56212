"""Live counters on moto, through the consumer: broadcast's counts of its message events (a window of its
stream each) count once whatever the redeliveries (the fault tests), on their campaign variant or journey step,
their channel and the total; a send touches its customer, and orders convert within the window; the window reads
whole minutes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ecrm.insights.service import InsightsService
from ecrm.insights.store import InsightsStore

from functions.insights import on_outcome_event
from tests import outcome_counts
from tests.integration.insights.conftest import NOW, Engine, bus_event, message_event, order_event, window
from tests.samples import sqs_batch

consume: Any = on_outcome_event.handler


def run(engine: Engine, bodies: list[str], lambda_context: Any) -> dict[str, Any]:
    result: dict[str, Any] = consume(sqs_batch(bodies), lambda_context, engine.service)
    return result


sent = outcome_counts.message_event


def test_a_redelivered_window_counts_once(engine: Engine, lambda_context: Any) -> None:
    # Given broadcast's counts of a window: two campaign variants, a journey step, a request of its own
    counts = window(
        "win-1",
        sent("MessageRequested", "m1", status="requested"),
        sent("MessageSent", "m1"),
        sent("MessageDelivered", "m1", status="delivered"),
        sent("MessageOpened", "m1", status="delivered"),
        sent("MessageSent", "m2", step="r1.B", channel="sms"),
        sent("MessageBounced", "m2", step="r1.B", channel="sms", status="bounced"),
        sent("MessageSent", "m3", source="journey:jny_1", step="welcome.2", channel="push"),
        sent("MessageSuppressed", "m4", source="api:k1", step="0", channel=None, status="suppressed"),
    )
    # When the window arrives twice in one batch, then the batch is redelivered (a crash before the delete)
    assert run(engine, [counts, counts], lambda_context) == {"batchItemFailures": []}
    assert run(engine, [counts], lambda_context) == {"batchItemFailures": []}

    # Then each count added once on each of its rows
    live = engine.service.live()
    assert (live.total.targeted, live.total.sent, live.total.delivered, live.total.opened) == (1, 3, 1, 1)
    assert (live.total.bounced, live.total.suppressed) == (1, 1)
    variants = {(r.campaign_id, r.variant): r for r in live.campaigns}
    assert set(variants) == {("cmp_1", "A"), ("cmp_1", "B")}
    assert (variants["cmp_1", "A"].sent, variants["cmp_1", "A"].delivered) == (1, 1)
    assert variants["cmp_1", "A"].rates == {"delivery": 1.0, "bounce": 0.0, "complaint": 0.0, "open": 1.0, "click": 0.0}
    assert (variants["cmp_1", "B"].sent, variants["cmp_1", "B"].bounced) == (1, 1)
    assert [(r.journey_id, r.step, r.sent) for r in live.journeys] == [("jny_1", "welcome", 1)]
    channels = {r.channel: r for r in live.channels}
    assert (channels["email"].sent, channels["sms"].bounced, channels["push"].sent) == (1, 1, 1)
    assert channels["unknown"].suppressed == 1
    # And the counts published their metrics once, per channel
    published = sorted((d["channel"], value) for name, value, d in engine.metrics if name == "Sent")
    assert published == [("email", 1), ("push", 1), ("sms", 1)]
    assert [d["channel"] for name, _, d in engine.metrics if name == "Bounced"] == ["sms"]


def test_a_send_itself_counts_nothing_here_it_touches_its_customer(engine: Engine, lambda_context: Any) -> None:
    # Broadcast counts its events once, at the source: a campaign's send reaches insights for the touches
    assert run(engine, [message_event("MessageSent", "m1")], lambda_context) == {"batchItemFailures": []}
    assert engine.service.live().total.sent == 0
    assert [t.row for t in engine.store.touches("cus_1")] == ["campaign#cmp_1#A"]


def test_an_order_within_the_window_converts_once_and_adds_its_revenue(engine: Engine, lambda_context: Any) -> None:
    # Given a customer sent variant A by email, and a customer sent nothing
    run(engine, [message_event("MessageSent", "m1", customer_id="cus_1")], lambda_context)
    later = NOW + timedelta(minutes=5)
    engine.clock.at = later
    # When the first customer orders twice (the first order delivered twice) and the other once
    orders = [
        order_event("ord_1", "cus_1", 2500, later),
        order_event("ord_1", "cus_1", 2500, later),
        order_event("ord_2", "cus_1", 1000, later),
        order_event("ord_3", "cus_2", 9900, later),
    ]
    assert run(engine, orders, lambda_context) == {"batchItemFailures": []}
    # Then the variant, its channel and the total hold one conversion and both orders' revenue
    live = engine.service.live()
    (variant,) = live.campaigns
    for row in (variant, live.total, *live.channels):
        assert (row.converted, row.revenue) == (1, {"EUR": 3500})


def test_an_order_after_the_window_is_not_attributed(engine: Engine, lambda_context: Any) -> None:
    run(engine, [message_event("MessageSent", "m1")], lambda_context)
    late = NOW + timedelta(days=7, minutes=1)
    engine.clock.at = late
    run(engine, [order_event("ord_1", "cus_1", 2500, late)], lambda_context)
    assert engine.service.live(24 * 60).total.converted == 0


def test_unsubscriptions_count_on_their_channel(engine: Engine, lambda_context: Any) -> None:
    data = {
        "customer_id": "cus_1",
        "channel": "email",
        "purpose": "marketing",
        "method": "one_click",
        "occurred_at": NOW.isoformat(),
    }
    body = bus_event("ecrm.broadcast", "CustomerUnsubscribed", data, event_id="evt-u1")
    run(engine, [body, body], lambda_context)
    live = engine.service.live()
    assert (live.total.unsubscribed, [(c.channel, c.unsubscribed) for c in live.channels]) == (1, [("email", 1)])


def test_the_window_holds_whole_minutes_up_to_now(engine: Engine, lambda_context: Any) -> None:
    # Given sends 90 minutes, 59 minutes and 0 minutes ago (across three hours' partitions)
    events = [sent("MessageSent", f"m{minutes}", at=NOW - timedelta(minutes=minutes)) for minutes in (90, 59, 0)]
    run(engine, [window("win-1", *events)], lambda_context)
    # Then the last hour holds two, the last two hours three, the current minute one
    assert engine.service.live(60).total.sent == 2
    assert engine.service.live(120).total.sent == 3
    only_now = engine.service.live(1)
    assert (only_now.total.sent, only_now.since, only_now.until) == (
        1,
        "2026-11-23T10:00:00+00:00",
        "2026-11-23T10:00:00+00:00",
    )
    # And an hour later, nothing of them is live
    engine.clock.advance(hours=1, minutes=1)
    assert engine.service.live().total.sent == 0


class CrashingClient:
    """DynamoDB as a worker sees it when it dies: transactions fail after the first `survives` went through."""

    def __init__(self, client: Any, survives: int) -> None:
        self.client = client
        self.left = survives
        self.transactions: list[list[dict[str, Any]]] = []

    def transact_write_items(self, **kwargs: Any) -> Any:
        if self.left <= 0:
            raise ConnectionError("the worker lost DynamoDB")
        self.left -= 1
        self.transactions.append(kwargs["TransactItems"])
        return self.client.transact_write_items(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_a_window_that_crashed_half_way_then_came_back_counts_each_minute_once(
    engine: Engine, lambda_context: Any
) -> None:
    # Given a window of 60 sends over three minutes (a transaction each), and a worker that dies after the first
    events = [
        sent("MessageSent", f"m{n}", customer_id=f"cus_{n}", at=NOW - timedelta(minutes=n % 3)) for n in range(60)
    ]
    counts = window("win-1", *events)
    crashing = InsightsService(
        InsightsStore(CrashingClient(engine.client, survives=1), engine.store.table),
        engine.clock,
        engine.service.settings,
    )
    # When the window is consumed there (its record reported failed), then delivered again
    first = consume(sqs_batch([counts]), lambda_context, crashing)
    assert len(first["batchItemFailures"]) == 1
    assert engine.service.live().total.sent == 20  # the first minute's transaction landed whole
    assert run(engine, [counts], lambda_context) == {"batchItemFailures": []}
    # Then each send counted once
    live = engine.service.live()
    assert (live.total.sent, live.campaigns[0].sent, live.channels[0].sent) == (60, 60, 60)


def test_a_batch_mixing_a_counted_window_and_a_new_one_counts_only_the_new_one(
    engine: Engine, lambda_context: Any
) -> None:
    # Given a window counted (its batch answered, then the worker died before SQS deleted it)
    counted = window("win-1", *(sent("MessageSent", f"m{n}") for n in range(2)))
    run(engine, [counted], lambda_context)
    # When it comes back in a batch with the next window
    fresh = window(
        "win-2", *(sent("MessageDelivered", f"m{n}", status="delivered") for n in range(2)), sent("MessageSent", "m9")
    )
    assert run(engine, [counted, fresh], lambda_context) == {"batchItemFailures": []}
    # Then only the new one added, and each count published its metric once
    live = engine.service.live()
    assert (live.total.sent, live.total.delivered, live.campaigns[0].sent) == (3, 2, 3)
    assert sum(value for name, value, _ in engine.metrics if name == "Sent") == 3


def test_a_window_of_one_minute_is_one_transaction_with_one_marker_and_an_add_per_row(
    engine: Engine, lambda_context: Any
) -> None:
    # Given five sends and five deliveries of one campaign variant in one minute, by email
    events = [sent("MessageSent", f"m{n}") for n in range(5)]
    events += [sent("MessageDelivered", f"m{n}", status="delivered") for n in range(5)]
    client = CrashingClient(engine.client, survives=10)
    service = InsightsService(InsightsStore(client, engine.store.table), engine.clock, engine.service.settings)
    # When their window is consumed
    assert consume(sqs_batch([window("win-1", *events)]), lambda_context, service) == {"batchItemFailures": []}
    # Then one transaction held the window's one marker and one ADD on each of the three rows
    (actions,) = client.transactions
    puts = [a["Put"]["Item"]["pk"]["S"] for a in actions if "Put" in a]
    adds = [a["Update"]["ExpressionAttributeValues"] for a in actions if "Update" in a]
    assert puts == ["SEEN#win-1#20261123T1000#0"]
    assert len(adds) == 3
    assert all({v[":v0"]["N"], v[":v1"]["N"]} == {"5"} for v in adds)
    live = engine.service.live()
    assert (live.total.sent, live.total.delivered, live.campaigns[0].delivered) == (5, 5, 5)
