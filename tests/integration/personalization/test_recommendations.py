"""Recommendation lists on moto: the projection fed by events, the model lists, the business rules, the reads."""

from __future__ import annotations

from datetime import timedelta

import pytest
from ecrm.core.clock import FixedClock
from ecrm.core.errors import InvalidInput
from ecrm.personalization.customer_events import ProjectionService
from ecrm.personalization.recommendation_service import RecommendationService
from ecrm.personalization.selection import SelectionRules
from ecrm.personalization.service_models import CatalogueItem, Recommendations
from ecrm.personalization.store import PersonalizationStore

from tests.integration.personalization.conftest import (
    NOW,
    VERSION,
    CountingClient,
    consent,
    created,
    customer_id,
    interaction,
    write_model,
)


def ids(recommendations: Recommendations) -> list[str]:
    return [item.item_id for item in recommendations.items]


def test_without_a_model_a_list_is_empty_and_says_why(recommendations: RecommendationService) -> None:
    # Given no training ever ran; When
    listed = recommendations.recommend(customer_id(), k=5)

    # Then
    assert listed.items == []
    assert listed.strategy == "none"
    assert listed.model_version is None
    assert "no recommender model" in listed.note


def test_a_new_customer_gets_popular_items(recommendations: RecommendationService, store: PersonalizationStore) -> None:
    # Given a model and a customer the engine knows nothing of
    write_model(store)

    # When
    listed = recommendations.recommend(customer_id(), k=3)

    # Then
    assert ids(listed) == ["p1", "p2", "s1"]
    assert (listed.strategy, listed.model_version) == ("popular", VERSION)


def test_for_you_follows_the_recent_items_and_never_repeats_them(
    recommendations: RecommendationService, store: PersonalizationStore, projections: ProjectionService
) -> None:
    # Given a customer who viewed s1, and a catalogue that knows the categories
    write_model(store)
    recommendations.upsert_items(
        [CatalogueItem(item_id=i, category="shoes") for i in ("s1", "s2", "s3", "s4")]
        + [CatalogueItem(item_id=i, category="hats") for i in ("h1", "h2", "h3")]
    )
    customer = customer_id()
    projections.apply(created(customer, country="FR"))
    projections.apply(interaction(customer, "s1", at=NOW - timedelta(days=1)))

    # When
    listed = recommendations.recommend(customer, k=4)

    # Then s1's neighbours come first, at most two shoes (the diversity rule), and s1 itself is not shown
    assert listed.strategy == "personal"
    assert ids(listed) == ["s2", "s3", "h1", "p1"]


def test_the_business_rules_drop_bought_out_of_stock_and_not_sold_here(
    recommendations: RecommendationService, store: PersonalizationStore, projections: ProjectionService
) -> None:
    # Given s2 bought, s3 out of stock, s4 sold in Germany only, and a French customer who viewed s1
    write_model(store)
    recommendations.upsert_items(
        [
            CatalogueItem(item_id="s1", category="shoes"),
            CatalogueItem(item_id="s2", category="shoes"),
            CatalogueItem(item_id="s3", category="shoes", in_stock=False),
            CatalogueItem(item_id="s4", category="shoes", countries=["de"]),
            CatalogueItem(item_id="h1", category="hats", name="Wool hat", price=19.5, currency="EUR"),
        ]
    )
    customer = customer_id()
    projections.apply(created(customer, country="FR"))
    projections.apply(interaction(customer, "s2", kind="order_completed", at=NOW - timedelta(days=10)))
    projections.apply(interaction(customer, "s1", at=NOW - timedelta(hours=1)))

    # When
    listed = recommendations.recommend(customer, k=3)

    # Then
    assert "s2" not in ids(listed)
    assert "s3" not in ids(listed)
    assert "s4" not in ids(listed)
    assert ids(listed)[0] == "h1"
    assert listed.items[0].name == "Wool hat"
    assert listed.items[0].price == 19.5


def test_a_customer_without_profiling_consent_gets_popular_items_only(
    recommendations: RecommendationService, store: PersonalizationStore, projections: ProjectionService
) -> None:
    # Given a customer with history, who then objects to profiling
    write_model(store)
    customer = customer_id()
    projections.apply(created(customer, country="FR"))
    projections.apply(interaction(customer, "s1"))
    projections.apply(consent(customer, "email", "profiling", "denied", at=NOW + timedelta(minutes=1)))
    projections.apply(interaction(customer, "h1", at=NOW + timedelta(minutes=2)))

    # When
    listed = recommendations.recommend(customer, k=3)

    # Then
    assert listed.strategy == "popular"
    assert "profiling" in listed.note
    assert ids(listed) == ["p1", "p2", "s1"]
    projection = store.projection(customer)
    assert projection is not None
    assert projection.recent == []  # the history was dropped, and none recorded since


def test_the_precomputed_list_serves_a_customer_whose_history_is_only_in_the_lake(
    recommendations: RecommendationService, store: PersonalizationStore
) -> None:
    # Given a training job that precomputed a list for the customer
    write_model(store)
    customer = customer_id()
    store.write_for_you(VERSION, {customer: ["h3", "h2"]}, expires_at=2_000_000_000)

    # When
    listed = recommendations.recommend(customer, k=3)

    # Then the list comes first, popular items fill
    assert (listed.strategy, ids(listed)) == ("personal", ["h3", "h2", "p1"])


def test_similar_items_and_bought_together(recommendations: RecommendationService, store: PersonalizationStore) -> None:
    # Given a model and a catalogue that puts s1 in shoes
    write_model(store)
    recommendations.upsert_items([CatalogueItem(item_id="s1", category="shoes")])
    customer = customer_id()

    # When / Then: similar reads the item's neighbours
    similar = recommendations.recommend(customer, slot="similar", item="s1", k=2)
    assert (similar.strategy, similar.item_id, ids(similar)) == ("item", "s1", ["s2", "s3"])

    # a new item of a known category is filled with its category's bestsellers, then trending items
    recommendations.upsert_items([CatalogueItem(item_id="new", category="shoes")])
    fresh = recommendations.recommend(customer, slot="similar", item="new", k=3)
    assert (fresh.strategy, ids(fresh)) == ("popular", ["s4", "s3", "t1"])

    # bought together shows basket links only, and nothing when there are none
    together = recommendations.recommend(customer, slot="bought_together", item="s1", k=5)
    assert ids(together) == ["h1", "s2"]
    assert recommendations.recommend(customer, slot="bought_together", item="h3").items == []


def test_an_item_slot_without_an_item_is_refused(recommendations: RecommendationService) -> None:
    with pytest.raises(InvalidInput, match="needs the item"):
        recommendations.recommend(customer_id(), slot="similar")
    with pytest.raises(InvalidInput, match="k must be"):
        recommendations.recommend(customer_id(), k=0)


def test_a_request_reads_a_bounded_number_of_items_whatever_the_history(
    store: PersonalizationStore,
    projections: ProjectionService,
    clock: FixedClock,
    rules: SelectionRules,
    dynamodb: CountingClient,
) -> None:
    # Given a customer with a long history
    write_model(store)
    customer = customer_id()
    projections.apply(created(customer, country="FR"))
    for n in range(60):
        projections.apply(interaction(customer, f"x{n}", "s1", at=NOW - timedelta(minutes=n)))
    service = RecommendationService(store, clock, rules=rules, pointer_ttl_seconds=60)

    # When a first and a second request are served
    dynamodb.calls.clear()
    service.recommend(customer, k=10)
    first = list(dynamodb.calls)
    dynamodb.calls.clear()
    service.recommend(customer, k=10)
    second = list(dynamodb.calls)

    # Then the first reads the customer, the pointer, the popular lists, the neighbours of at most 20 items in one
    # batch and the candidates' catalogue entries in one batch; the second only the customer and the catalogue
    assert first == ["query", "get_item", "get_item", "batch_get_item", "batch_get_item"]
    assert second == ["query", "batch_get_item"]


def test_a_warm_cache_smaller_than_a_request_still_serves_every_list(
    store: PersonalizationStore, projections: ProjectionService, clock: FixedClock, rules: SelectionRules
) -> None:
    # Given a service whose cache of item lists holds 2, warmed with the lists of s1 and h1
    write_model(store)
    service = RecommendationService(store, clock, rules=rules, pointer_ttl_seconds=60, cache_size=2)
    first, second = customer_id(), customer_id()
    for customer, items in ((first, ("s1", "h1")), (second, ("s1", "h1", "s2"))):
        projections.apply(created(customer, country="FR"))
        for n, item in enumerate(items):
            projections.apply(interaction(customer, item, at=NOW - timedelta(hours=3 - n)))
    service.recommend(first, k=4)

    # When a customer's list needs both cached lists and s2's, which the cache cannot all keep (reading s2's once
    # evicted a hit before it was marked used: KeyError)
    served = [item.item_id for item in service.recommend(second, k=4).items]
    again = [item.item_id for item in service.recommend(second, k=4).items]

    # Then the list comes from the neighbours of all three, the same each time
    assert served == again
    assert set(served) <= {"s3", "s4", "h2", "h3"}, served
    assert {"s3", "h2"} <= set(served)
