"""Each ready-made journey starts on an event the platform really publishes: the engine's own event model,
made into the detail its outbox relays (`envelope_for`), handed to the journey runtime as the journey
queue's consumer hands it over, enters the customer; the same event with other data (another status, another
failure, another segment) enters nobody."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from ecrm.analysis.models import SegmentEntered
from ecrm.campaigns.journey_library import ENTRIES, draft
from ecrm.campaigns.models import LibraryDraftIn
from ecrm.core.events import DomainEvent, envelope_for
from ecrm.customers.models import CustomerCreated, InteractionRecorded
from ecrm.transactions.models import (
    BirthdayReached,
    OrderLineIn,
    OrderPlaced,
    OrderStatusChanged,
    PointsExpiring,
    PurchaseFailed,
)

from tests.integration.campaigns.conftest import Engine
from tests.integration.journeys.test_library_journeys import runtime

CUSTOMER = "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"
PARAMETERS = {"win_back": {"segment_id": "seg_churn"}}
EventFor = Callable[[datetime, bool], DomainEvent]


def order_status(now: datetime, starts: bool) -> DomainEvent:
    return OrderStatusChanged(
        order_id="ord_1",
        customer_id=CUSTOMER,
        previous_status="placed" if starts else "paid",
        status="paid" if starts else "shipped",
        currency="EUR",
        changed_at=now,
    )


def purchase_failed(now: datetime, starts: bool) -> DomainEvent:
    return PurchaseFailed(
        purchase_id="pur_1",
        customer_id=CUSTOMER,
        product_id="prd_1",
        vendor_id="ven_1",
        total_minor=1000,
        currency="EUR",
        reason="payment_declined" if starts else "vendor_refused",
        released=True,
        refunded=False,
        failed_at=now,
    )


def interaction(now: datetime, starts: bool) -> DomainEvent:
    kind = "checkout_started" if starts else "page_view"
    return InteractionRecorded(
        customer_id=CUSTOMER,
        interaction_id="int_1",
        type=kind,
        channel="web",
        record_source="collect",
        occurred_at=now,
        properties={},
    )


def order_placed(now: datetime, starts: bool) -> DomainEvent:
    line = OrderLineIn.model_validate({"sku": "CAP-1", "name": "Cap", "quantity": 1, "unit_price_minor": 5000})
    return OrderPlaced(
        order_id="ord_1",
        customer_id=CUSTOMER,
        currency="EUR",
        channel="web",
        lines=[line],
        total_minor=5000,
        placed_at=now,
    )


STARTS: dict[str, EventFor] = {
    "welcome_series": lambda now, _: CustomerCreated(
        customer_id=CUSTOMER, record_source="web", identity_types=["email"], created_at=now
    ),
    "birthday": lambda now, _: BirthdayReached(customer_id=CUSTOMER, year=2027, local_date=now.date(), reached_at=now),
    "abandoned_cart": interaction,
    "post_purchase_cross_sell": order_placed,
    "win_back": lambda now, starts: SegmentEntered(
        segment_id="seg_churn" if starts else "seg_other",
        segment_name="Churn risk",
        customer_id=CUSTOMER,
        entered_at=now,
        trigger="TraitsComputed",
    ),
    "points_expiring": lambda now, _: PointsExpiring(
        customer_id=CUSTOMER, points=40, expires_on=(now + timedelta(days=30)).date(), warned_at=now
    ),
    "order_delay_recovery": order_status,
    "failed_payment_recovery": purchase_failed,
}
# The entries whose trigger matches on the event's data: the same event with other data enters nobody.
MATCHED = {"abandoned_cart", "win_back", "order_delay_recovery", "failed_payment_recovery"}


def test_every_ready_made_journey_has_its_start_event_here() -> None:
    assert set(STARTS) == set(ENTRIES)


@pytest.mark.parametrize("name", sorted(STARTS))
def test_the_platform_s_event_starts_the_ready_made_journey(engine: Engine, name: str) -> None:
    # Given the ready-made journey, active
    created = engine.journeys.create(
        draft(name, LibraryDraftIn(parameters=PARAMETERS.get(name, {}))), actor="s", correlation_id=None
    )
    journey = engine.journeys.activate(created.journey_id, correlation_id=None)
    run = runtime(engine)
    now = engine.clock.now()

    # When its engine's event arrives with data that does not match, then with data that does
    if name in MATCHED:
        other = STARTS[name](now, False)
        assert run.handle(other.source, other.detail_type, envelope_for(other)) == []
    event = STARTS[name](now, True)
    outcome = run.handle(event.source, event.detail_type, envelope_for(event))

    # Then the customer entered it (and either waits or has been sent its first message)
    assert len(outcome) == 1
    assert outcome[0].startswith(f"{journey.journey_id}:")
    assert not outcome[0].endswith(("concurrency_cap", "no_reentry", "reentry_too_soon", "already_in_journey"))
    assert engine.journeys.report(journey.journey_id).entered == 1
