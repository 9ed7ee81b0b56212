"""The purchase history a comparison learns from, counted when the customer's orders change (on moto): a
comparison then reads two partitions and nothing of the customer's orders; a customer whose history was never
counted has it counted by their first comparison; the order events' consumer counts it again."""

from __future__ import annotations

import json
from typing import Any

from ecrm.core.clock import FixedClock
from ecrm.transactions.catalog import Recommendations, RecommendedItem
from ecrm.transactions.catalog_recommendations import RecommendationsBeside, RecommenderFailed
from ecrm.transactions.catalog_service import CatalogService
from ecrm.transactions.catalog_store import CatalogStore
from ecrm.transactions.comparison import PurchaseHistory
from ecrm.transactions.order_service import OrderService

from functions.transactions import on_order_event
from tests.integration.transactions.conftest import CUSTOMER, TABLE, Engine
from tests.integration.transactions.test_catalog import CountingClient, buy, kettle
from tests.samples import sqs_batch
from tests.unit.fakes import bus_event_from_entry


def test_a_counted_history_makes_a_comparison_two_queries_and_no_order_read(
    dynamodb: Any, orders: OrderService, clock: FixedClock
) -> None:
    client = CountingClient(dynamodb)
    catalog = CatalogService(CatalogStore(client, TABLE), orders, clock)
    product_id = kettle(catalog)
    buy(orders, f"{product_id}.quickco", 3000, "k1")
    # Given a customer whose history was never counted: their first comparison counts and keeps it
    client.calls.clear()
    first = catalog.compare(CUSTOMER, product_id=product_id)
    assert first.profile.purchases_by_vendor == {"quickco": 1}
    assert client.calls == ["query", "query", "batch_get_item", "batch_get_item", "put_item"]
    # When they compare again
    client.calls.clear()
    again = catalog.compare(CUSTOMER, product_id=product_id)
    # Then the product's partition and theirs are read, nothing else, and the answer is the same
    assert client.calls == ["query", "query"]
    assert again.model_dump(exclude={"recommendations"}) == first.model_dump(exclude={"recommendations"})


def test_the_order_events_consumer_counts_the_history_again(
    engine: Engine, dynamodb: Any, orders: OrderService, clock: FixedClock, lambda_context: Any
) -> None:
    catalog = CatalogService(CatalogStore(dynamodb, TABLE), orders, clock)
    product_id = kettle(catalog)
    catalog.refresh_history(CUSTOMER)
    assert catalog.store.shopper(CUSTOMER)[1] == PurchaseHistory()
    # Given two orders placed and their events relayed
    buy(orders, f"{product_id}.quickco", 3000, "k1")
    buy(orders, f"{product_id}.quickco", 3000, "k2")
    engine.relay()
    bodies = [json.dumps(bus_event_from_entry(e, f"eb-{n}")) for n, e in enumerate(engine.published)]
    # When the consumer takes them (each twice)
    handler: Any = on_order_event.handler
    assert handler(sqs_batch(bodies * 2), lambda_context, engine.loyalty, catalog) == {"batchItemFailures": []}
    # Then the kept history counts both orders, and the comparison learns from it
    history = catalog.store.shopper(CUSTOMER)[1]
    assert history is not None
    assert (history.purchases, history.orders_by_vendor, history.currencies) == (2, {"quickco": 2}, {"EUR": 2})
    ranked = catalog.compare(CUSTOMER, product_id=product_id).ranked
    assert "you bought from this vendor 2 times" in ranked[0].reasons


class Failing:
    def recommend(self, customer_id: str, k: int) -> Recommendations:
        raise RecommenderFailed("the recommend function failed")


class Teapots:
    def recommend(self, customer_id: str, k: int) -> Recommendations:
        return Recommendations(items=[RecommendedItem(item_id="teapot")], strategy="popular", note="popular items")


def test_the_recommendations_are_beside_the_offers_and_a_failing_recommender_fails_nothing(
    dynamodb: Any, orders: OrderService, clock: FixedClock
) -> None:
    store = CatalogStore(dynamodb, TABLE)
    product_id = kettle(CatalogService(store, orders, clock))
    # Given the recommender answers: its items are beside the ranked offers
    beside = CatalogService(store, orders, clock, RecommendationsBeside(Teapots())).compare(
        CUSTOMER, product_id=product_id
    )
    assert [i.item_id for i in beside.recommendations.items] == ["teapot"]
    # When it fails: the comparison is whole, the list empty with the reason
    failed = CatalogService(store, orders, clock, RecommendationsBeside(Failing())).compare(
        CUSTOMER, product_id=product_id
    )
    assert len(failed.ranked) == 3
    assert failed.recommendations == Recommendations(
        note="no recommendations: the recommender failed (RecommenderFailed)"
    )
