"""Live insights on the local cloud: broadcast's counts of a window (put on the bus twice), its send and an
order show in `GET /insights/live` on their campaign variant, their channel and the total within seconds, each
once, the order as a conversion with its revenue (attributed by the send). Broadcast's own counting of its
stream, and its rows of the lake's `message_outcomes`, are tested from real sends (`tests/e2e/test_campaigns.py`,
`tests/e2e/test_lake_erasure.py`, the tour's campaign).

The suite's clock has moved by the time this runs, so the events happen at the cloud's `now`, and the
channel and total are read against the counts read before them (the suite's own sends are in there too).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ecrm.core.ids import new_id
from ecrm_ops.tour.context import TourContext, expect, wait_for

from infra.local.cloud import LocalCloud
from tests import outcome_counts


def live(tour: TourContext, token: str, window: int = 60) -> dict[str, Any]:
    return dict(expect(tour.call("GET", f"/insights/live?window={window}", token=token), 200, "live insights").body)


def live_or_empty(tour: TourContext, token: str) -> dict[str, Any]:
    """The live view, or nothing while a busy local cloud answers a poll with a gateway error."""
    answer = tour.call("GET", "/insights/live", token=token)
    return dict(answer.body) if answer.status == 200 else {"campaigns": []}


def channel(view: dict[str, Any], name: str) -> dict[str, Any]:
    return next((row for row in view["channels"] if row["channel"] == name), {"sent": 0, "converted": 0})


def bus_entry(source: str, detail_type: str, data: dict[str, Any], event_id: str, at: datetime) -> dict[str, Any]:
    metadata = {"id": event_id, "version": "1", "correlation_id": "cor_e2e", "occurred_at": at.isoformat()}
    return {"Source": source, "DetailType": detail_type, "Detail": json.dumps({"metadata": metadata, "data": data})}


def message(detail_type: str, customer: str, campaign: str, at: datetime) -> dict[str, Any]:
    data = {
        "message_id": f"msg_{campaign}",
        "customer_id": customer,
        "channel": "email",
        "purpose": "marketing",
        "source": f"campaign:{campaign}",
        "step": "r1.B",
        "status": detail_type.removeprefix("Message").lower(),
        "occurred_at": at.isoformat(),
    }
    return bus_entry("ecrm.broadcast", detail_type, data, new_id("evt_"), at)


def test_windows_sends_and_orders_show_once_in_the_live_counters(
    cloud: LocalCloud, tour: TourContext, staff_token: str
) -> None:
    # Given the counters before
    before = live(tour, staff_token)
    run = new_id("i").lower()
    customer, campaign, now = f"cus_{run}", f"cmp_{run}", cloud.clock.now()

    # When a campaign's variant B message is requested, sent and delivered: its events, and broadcast's counts of
    # them (delivered twice), and its recipient orders
    requested = message("MessageRequested", customer, campaign, now)
    sent = message("MessageSent", customer, campaign, now)
    delivered = message("MessageDelivered", customer, campaign, now)
    (window,) = outcome_counts.counted(
        outcome_counts.message_event(t, f"msg_{campaign}", source=f"campaign:{campaign}", step="r1.B", at=now)
        for t in ("MessageRequested", "MessageSent", "MessageDelivered")
    )
    counts = bus_entry("ecrm.broadcast", window.detail_type, window.model_dump(mode="json"), new_id("evt_"), now)
    order = {
        "order_id": f"ord_{run}",
        "customer_id": customer,
        "currency": "EUR",
        "channel": "web",
        "lines": [{"sku": "KETTLE", "name": "Kettle", "quantity": 1, "unit_price_minor": 4200}],
        "total_minor": 4200,
        "placed_at": now.isoformat(),
    }
    bus = cloud.state.event_bus_name
    events = cloud.client("events")
    events.put_events(Entries=[{**e, "EventBusName": bus} for e in (requested, sent, delivered, counts, counts)])

    # Then the live view counts each once on the variant. The events may reach the consumer in several batches,
    # in any order, so the wait is for all three counters (a batch the suite's load made fail is retried
    # after the queue's visibility timeout, 180 s)
    def variant() -> dict[str, Any] | None:
        rows = [r for r in live_or_empty(tour, staff_token)["campaigns"] if r["campaign_id"] == campaign]
        return rows[0] if rows and min(rows[0][n] for n in ("targeted", "sent", "delivered")) >= 1 else None

    row = wait_for(variant, timeout=240, interval=0.5, what="the events in the live counters")
    assert (row["variant"], row["targeted"], row["sent"], row["delivered"]) == ("B", 1, 1, 1)
    assert row["rates"]["delivery"] == 1.0

    # And the send reached its touch: the consumer's queue is drained of every record of the batch
    sqs = cloud.client("sqs")
    queue = cloud.physical_id("AWS::SQS::Queue", "InsightsOutcomeConsumerQueue")
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]

    def drained() -> bool:
        counts = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=names)["Attributes"]
        return not any(int(counts[n]) for n in names)

    wait_for(drained, timeout=60, interval=0.5, what="the insights queue drained")

    # When the order arrives (after its send's touch, so it is attributed)
    placed = bus_entry("ecrm.transactions", "OrderPlaced", order, new_id("evt_"), now)
    events.put_events(Entries=[{**placed, "EventBusName": bus}])

    # Then the variant converted once, with the order's revenue; the channel and the total moved with it
    def converted() -> dict[str, Any] | None:
        view = live_or_empty(tour, staff_token)
        rows = [r for r in view["campaigns"] if r["campaign_id"] == campaign and r["converted"] == 1]
        return view if rows else None

    view = wait_for(converted, timeout=60, interval=0.5, what="the conversion in the live counters")
    (row,) = [r for r in view["campaigns"] if r["campaign_id"] == campaign]
    assert row["revenue"] == {"EUR": 4200}
    assert channel(view, "email")["sent"] >= channel(before, "email")["sent"] + 1
    assert channel(view, "email")["converted"] >= channel(before, "email")["converted"] + 1
    # And a window of no minutes is a problem, not counters
    assert tour.call("GET", "/insights/live?window=0", token=staff_token).status == 422
