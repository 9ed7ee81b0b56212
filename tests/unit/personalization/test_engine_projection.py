"""Personalization's projection of a customer: each event applied once, in any order, and what it gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ecrm.personalization.projection import (
    CustomerProjection,
    HistoryPolicy,
    apply_consent,
    apply_interaction,
    apply_segment,
    apply_snapshot,
    apply_traits,
    items_of,
    merge_history,
    stamp,
)
from hypothesis import given, settings
from hypothesis import strategies as st

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
POLICY = HistoryPolicy(recent_size=5, bought_size=3)


def fresh() -> CustomerProjection:
    return CustomerProjection(customer_id="cus_1")


def view(
    projection: CustomerProjection, interaction_id: str, *items: str, minutes: int = 0, kind: str = "viewed"
) -> bool:
    properties = {"product_id": items[0]} if len(items) == 1 else {"products": list(items)}
    return apply_interaction(
        projection,
        interaction_id=interaction_id,
        kind=kind,
        occurred_at=NOW + timedelta(minutes=minutes),
        properties=properties,
        policy=POLICY,
    )


@pytest.mark.parametrize(
    ("properties", "items"),
    [
        ({"product_id": "sku1"}, ["sku1"]),
        ({"product_id": 42}, ["42"]),
        ({"products": ["a", "b", "a"]}, ["a", "b"]),
        ({"product_id": "a", "products": [{"product_id": "b"}, {"sku": "c"}, None, True]}, ["a", "b"]),
        ({"product_id": ""}, []),
        ({"category": "shoes"}, []),
    ],
)
def test_items_of_an_interaction(properties: dict[str, Any], items: list[str]) -> None:
    assert items_of(properties) == items


def test_history_is_newest_first_bounded_and_remembers_purchases() -> None:
    projection = fresh()
    for n in range(7):
        view(projection, f"i{n}", f"sku{n}", minutes=n, kind="order_completed" if n % 2 == 0 else "viewed")

    assert [r.item_id for r in projection.recent] == ["sku6", "sku5", "sku4", "sku3", "sku2"]
    assert set(projection.bought) == {"sku6", "sku4", "sku2"}  # the three newest of four purchases


def test_an_interaction_counts_once() -> None:
    projection = fresh()
    assert view(projection, "i1", "a", "b")
    assert not view(projection, "i1", "a", "b")
    assert len(projection.recent) == 2


def test_history_weights_favour_recent_purchases() -> None:
    projection = fresh()
    view(projection, "old", "a", minutes=-60 * 24 * 30, kind="order_completed")
    view(projection, "new", "b", kind="order_completed")
    view(projection, "look", "c")

    weights = projection.history_weights(NOW, HistoryPolicy(), limit=2)

    assert set(weights) == {"b", "c"}  # the two most recent items
    assert weights["b"] == pytest.approx(1.0)
    assert weights["c"] == pytest.approx(0.5)
    assert projection.history_weights(NOW, HistoryPolicy())["a"] == pytest.approx(0.5)  # one half-life old


def test_a_snapshot_applies_once_by_version() -> None:
    projection = fresh()
    assert apply_snapshot(projection, version=2, attributes={"country": "fr"}, consents={}, at=NOW)
    assert not apply_snapshot(projection, version=1, attributes={"country": "DE"}, consents={}, at=NOW)
    assert projection.country == "FR"


def test_an_objection_to_profiling_drops_the_history_and_stops_it() -> None:
    projection = fresh()
    view(projection, "i1", "a", kind="order_completed")
    apply_consent(projection, "email:marketing", "granted", NOW)

    apply_consent(projection, "web:profiling", "denied", NOW + timedelta(minutes=1))

    assert not projection.profiling_allowed
    assert (projection.recent, projection.bought) == ([], {})
    assert not view(projection, "i2", "b", minutes=2)
    assert projection.marketing_channels == {"email"}
    assert not projection.context().profiling_allowed
    # an older statement does not undo a newer one
    assert not apply_consent(projection, "web:profiling", "granted", NOW)
    assert apply_consent(projection, "web:profiling", "granted", NOW + timedelta(minutes=3))
    assert projection.profiling_allowed


def test_segment_moves_the_newest_wins() -> None:
    projection = fresh()
    apply_segment(projection, "vip", False, NOW + timedelta(hours=1))
    apply_segment(projection, "vip", True, NOW)  # the entry, delivered after the exit
    apply_segment(projection, "new", True, NOW)

    assert projection.segment_ids == {"new"}
    assert projection.context().segments == {"new"}


def test_traits_the_newest_computation_per_trait_wins_and_none_removes() -> None:
    projection = fresh()
    apply_traits(projection, {"churn_risk": 0.2, "rfm_segment": "loyal"}, NOW)
    assert not apply_traits(projection, {"churn_risk": 0.9}, NOW - timedelta(days=1))
    assert apply_traits(projection, {"rfm_segment": None}, NOW + timedelta(days=1))

    assert projection.traits == {"churn_risk": 0.2}
    assert projection.template_customer() == {"customer_id": "cus_1", "traits": {"churn_risk": 0.2}}


def test_a_merge_brings_the_losers_items() -> None:
    survivor, loser = fresh(), CustomerProjection(customer_id="cus_2")
    view(survivor, "s1", "a")
    view(loser, "l1", "b", minutes=5, kind="order_completed")

    assert merge_history(survivor, loser, POLICY)
    assert not merge_history(survivor, loser, POLICY)
    assert [r.item_id for r in survivor.recent] == ["b", "a"]
    assert set(survivor.bought) == {"b"}


@settings(max_examples=60, deadline=None)
@given(st.permutations(list(range(8))))
def test_the_history_does_not_depend_on_the_order_events_arrive_in(order: list[int]) -> None:
    # Given eight interactions at distinct times, two of them repeated
    events = [(f"i{n}", f"sku{n % 6}", n, "order_completed" if n % 3 == 0 else "viewed") for n in range(8)]
    deliveries = [events[n] for n in order] + [events[1], events[4]]

    projection = fresh()
    for interaction_id, item, minutes, kind in deliveries:
        view(projection, interaction_id, item, minutes=minutes, kind=kind)

    # Then the same history as delivering them in time order, once each
    expected = fresh()
    for interaction_id, item, minutes, kind in events:
        view(expected, interaction_id, item, minutes=minutes, kind=kind)
    assert projection.recent == expected.recent
    assert projection.bought == expected.bought


def test_stamps_compare_as_text() -> None:
    assert stamp(datetime(2026, 1, 1, 10, 0, 0, 123_456, tzinfo=UTC)) == "2026-01-01T10:00:00.123Z"
    assert stamp(datetime(2026, 1, 1)) < stamp(datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC))
