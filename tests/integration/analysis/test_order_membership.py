"""Order events in real time, on moto's DynamoDB: placed, delivered twice, returned, cancelled.

The membership consumer takes the transactions engine's events as it takes the customer store's
(`apply_customer_event`); the projection keeps their rows, so an order condition enters and leaves customers.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from ecrm.analysis.customer_events import apply_customer_event
from ecrm.analysis.membership import MembershipService
from ecrm.analysis.store import AnalysisStore
from ecrm.core.clock import FixedClock
from ecrm.customers.models import CustomersMerged, ProfileSnapshot
from ecrm.transactions.models import OrderLineIn, OrderPlaced, OrderReturned, OrderStatusChanged, ReturnedLine

from tests.integration.analysis.conftest import NOW, RecordingPublisher, created, saved_segment

CUSTOMER = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"
LOSER = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2F"
TWO_WEB_ORDERS = {
    "orders": {
        "where": [{"property": "channel", "op": "eq", "value": "web"}],
        "window": {"last_days": 30},
        "count": {"op": "gte", "value": 2},
    }
}
SPENT_200 = {"orders": {"spent": {"op": "gte", "value": 200}}}


def placed(order_id: str, price_minor: int, *, channel: str = "web") -> OrderPlaced:
    line = OrderLineIn(sku="BOOT", name="Boots", category="shoes", quantity=1, unit_price_minor=price_minor)
    return OrderPlaced(
        order_id=order_id,
        customer_id=CUSTOMER,
        currency="EUR",
        channel=channel,  # type: ignore[arg-type]
        store="shopweb",
        lines=[line],
        total_minor=price_minor,
        placed_at=NOW - timedelta(days=1),
    )


def test_order_events_move_customers_in_and_out_of_order_segments(
    membership: MembershipService, store: AnalysisStore, publisher: RecordingPublisher, clock: FixedClock
) -> None:
    two_web = saved_segment(store, "Two web orders", TWO_WEB_ORDERS)
    big_spender = saved_segment(store, "Spent 200", SPENT_200)
    apply_customer_event(membership, created(CUSTOMER, country="FR"))

    # When two web orders arrive, the first one delivered twice
    apply_customer_event(membership, placed("ord_1", 15000), event_id="evt_1")
    apply_customer_event(membership, placed("ord_1", 15000), event_id="evt_1")
    assert publisher.moves() == []  # one order (a redelivery is no second one)
    apply_customer_event(membership, placed("ord_2", 9000), event_id="evt_2")

    # Then the customer entered both segments, once each
    assert sorted(publisher.moves()) == sorted(
        [("SegmentEntered", two_web.segment_id, CUSTOMER), ("SegmentEntered", big_spender.segment_id, CUSTOMER)]
    )
    assert len(store.load_customer(CUSTOMER).orders) == 2

    # When the second order comes back in full: still two orders placed, but 150 spent
    returned = OrderReturned(
        order_id="ord_2",
        customer_id=CUSTOMER,
        return_id="ret_1",
        lines=[ReturnedLine(sku="BOOT", category="shoes", quantity=1, unit_price_minor=9000)],
        refund_minor=9000,
        currency="EUR",
        fully_returned=True,
        returned_at=NOW,
    )
    apply_customer_event(membership, returned, event_id="evt_3")
    assert publisher.moves()[-1] == ("SegmentExited", big_spender.segment_id, CUSTOMER)

    # When the first order is cancelled, it is no order at all: the customer leaves the two-orders segment
    clock.advance(minutes=5)
    cancelled = OrderStatusChanged(
        order_id="ord_1",
        customer_id=CUSTOMER,
        previous_status="paid",
        status="cancelled",
        refund_minor=15000,
        currency="EUR",
        changed_at=clock.now(),
    )
    apply_customer_event(membership, cancelled, event_id="evt_4")
    assert publisher.moves()[-1] == ("SegmentExited", two_web.segment_id, CUSTOMER)

    # And a status change that is not a cancellation changes nothing
    before = len(publisher.moves())
    apply_customer_event(membership, cancelled.model_copy(update={"status": "shipped"}), event_id="evt_5")
    assert len(publisher.moves()) == before


def test_a_merge_moves_the_losers_orders_to_the_survivor(
    membership: MembershipService, store: AnalysisStore, publisher: RecordingPublisher, clock: FixedClock
) -> None:
    # Given a segment on two web orders; the loser placed one web order, the survivor another
    two_web = saved_segment(store, "Two web orders", TWO_WEB_ORDERS)
    apply_customer_event(membership, created(CUSTOMER, country="FR"))
    apply_customer_event(membership, created(LOSER, country="FR"))
    apply_customer_event(membership, placed("ord_1", 4000), event_id="evt_1")
    apply_customer_event(membership, placed("ord_2", 6000).model_copy(update={"customer_id": LOSER}), event_id="evt_2")
    assert publisher.moves() == []

    # When the customer store merges the loser into the survivor, and the event is delivered twice
    clock.advance(minutes=1)
    merged = CustomersMerged(
        survivor_id=CUSTOMER,
        merged_ids=[LOSER],
        matched_by=["email"],
        reason="same email",
        merged_at=clock.now(),
        snapshot=ProfileSnapshot(version=2, attributes={"country": "FR"}, identity_types=["email"]),
    )
    apply_customer_event(membership, merged)
    apply_customer_event(membership, merged)

    # Then the survivor holds both orders, once each, and entered the segment once; the loser holds nothing
    assert sorted(row.order_id for row in store.load_customer(CUSTOMER).orders) == ["ord_1", "ord_2"]
    assert publisher.moves() == [("SegmentEntered", two_web.segment_id, CUSTOMER)]
    assert store.load_customer(LOSER).orders == []


def test_a_merge_that_crashes_once_the_loser_is_removed_loses_no_order_when_redelivered(
    membership: MembershipService, store: AnalysisStore, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a loser with one order, and a consumer that crashes right after removing the loser
    apply_customer_event(membership, created(CUSTOMER, country="FR"))
    apply_customer_event(membership, created(LOSER, country="FR"))
    apply_customer_event(membership, placed("ord_2", 6000).model_copy(update={"customer_id": LOSER}), event_id="evt_2")
    merged = CustomersMerged(
        survivor_id=CUSTOMER,
        merged_ids=[LOSER],
        matched_by=["email"],
        reason="same email",
        merged_at=clock.now(),
        snapshot=ProfileSnapshot(version=2, attributes={"country": "FR"}, identity_types=["email"]),
    )
    remove = membership.remove

    def crash(*args: Any, **kwargs: Any) -> list[Any]:
        remove(*args, **kwargs)
        raise RuntimeError("the consumer died")

    monkeypatch.setattr(membership, "remove", crash)
    with pytest.raises(RuntimeError):
        apply_customer_event(membership, merged)

    # When the event is delivered again to a healthy consumer
    monkeypatch.undo()
    apply_customer_event(membership, merged)

    # Then the survivor holds the loser's order, once
    assert [row.order_id for row in store.load_customer(CUSTOMER).orders] == ["ord_2"]
    assert store.load_customer(LOSER).orders == []


def test_an_order_of_the_loser_that_arrives_after_the_merge_is_the_survivors(
    membership: MembershipService, store: AnalysisStore, publisher: RecordingPublisher, clock: FixedClock
) -> None:
    # Given a segment on two web orders, a survivor with one web order and a loser merged into them
    two_web = saved_segment(store, "Two web orders", TWO_WEB_ORDERS)
    apply_customer_event(membership, created(CUSTOMER, country="FR"))
    apply_customer_event(membership, created(LOSER, country="FR"))
    apply_customer_event(membership, placed("ord_1", 4000), event_id="evt_1")
    merged = CustomersMerged(
        survivor_id=CUSTOMER,
        merged_ids=[LOSER],
        matched_by=["email"],
        reason="same email",
        merged_at=clock.now(),
        snapshot=ProfileSnapshot(version=2, attributes={"country": "FR"}, identity_types=["email"]),
    )
    apply_customer_event(membership, merged)
    assert publisher.moves() == []

    # When an order placed under the loser's id arrives after the merge (an order in flight, a shop's stale id)
    late = placed("ord_2", 6000).model_copy(update={"customer_id": LOSER})
    apply_customer_event(membership, late, event_id="evt_2")

    # Then it is the survivor's order, and the survivor entered the segment; the loser stays a tombstone
    assert sorted(row.order_id for row in store.load_customer(CUSTOMER).orders) == ["ord_1", "ord_2"]
    assert publisher.moves() == [("SegmentEntered", two_web.segment_id, CUSTOMER)]
    assert store.load_customer(LOSER).orders == []
