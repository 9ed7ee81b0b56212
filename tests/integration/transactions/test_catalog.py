"""The catalogue and the comparison on moto: products and offers in the engine's table (one Query reads a
product's offers), the sku index that turns orders into choices, the need index kept in step with the
product, concurrent vendors each counted in the summary, and a comparison learned from orders placed
through the order service."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from ecrm.core.clock import FixedClock
from ecrm.core.errors import Conflict, InvalidInput, NotFound
from ecrm.transactions.catalog import ComparePreferencesIn, OfferIn, ProductIn
from ecrm.transactions.catalog_service import CatalogService
from ecrm.transactions.catalog_store import CatalogStore
from ecrm.transactions.models import OrderIn, StatusChangeIn
from ecrm.transactions.order_service import OrderService

from tests.integration.transactions.conftest import CUSTOMER, TABLE

VENDORS = {
    "cheapco": {"price_minor": 2590, "delivery_days": 5, "vendor_rating": "3.9"},
    "quickco": {"price_minor": 3000, "delivery_days": 1, "vendor_rating": "4.5"},
    "bestco": {"price_minor": 3400, "delivery_days": 2, "vendor_rating": "4.8"},
}


class CountingClient:
    """The DynamoDB client, counting its calls by operation and making one at a time: moto checks a
    transaction's conditions and then writes without a lock, where DynamoDB applies each request atomically."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                self.calls.append(name)
                return method(*args, **kwargs)

        return call


@pytest.fixture
def client(dynamodb: Any) -> CountingClient:
    return CountingClient(dynamodb)


@pytest.fixture
def catalog(client: CountingClient, orders: OrderService, clock: FixedClock) -> CatalogService:
    return CatalogService(CatalogStore(client, TABLE), orders, clock)


def offer_in(vendor: str, **overrides: Any) -> OfferIn:
    body = {
        "vendor_id": vendor,
        "vendor_name": vendor.title(),
        "currency": "EUR",
        "stock": 10,
        "return_days": 14,
        **VENDORS.get(vendor, {"price_minor": 1000, "delivery_days": 3, "vendor_rating": "4"}),
        **overrides,
    }
    return OfferIn.model_validate(body)


def kettle(catalog: CatalogService, product_id: str = "kettle-1") -> str:
    product, created = catalog.save_product(
        ProductIn(
            product_id=product_id, name="Quiet electric kettle", category="kitchen", attributes={"colour": "steel"}
        )
    )
    assert created
    for vendor in VENDORS:
        catalog.save_offer(product.product_id, offer_in(vendor))
    return product.product_id


def buy(orders: OrderService, sku: str, price: int, key: str) -> str:
    body = OrderIn.model_validate(
        {
            "customer_id": CUSTOMER,
            "currency": "EUR",
            "channel": "marketplace",
            "lines": [{"sku": sku, "name": "Kettle", "category": "kitchen", "quantity": 1, "unit_price_minor": price}],
        }
    )
    return orders.place(body, idempotency_key=key, caller="test", correlation_id="c").order.order_id


def test_a_products_offers_are_read_in_one_query_with_their_summary(
    catalog: CatalogService, client: CountingClient
) -> None:
    # Given a product with three vendors' offers
    product_id = kettle(catalog)
    # When it is read
    client.calls.clear()
    found = catalog.product(product_id)
    # Then one Query returns the product and every offer, the summary the cheapest and the fastest
    assert client.calls == ["query"]
    assert sorted(o.vendor_id for o in found.offers) == sorted(VENDORS)
    summary = found.product.summary
    assert (summary.offers, summary.prices[0].cheapest_minor, summary.fastest_delivery_days) == (3, 2590, 1)
    assert found.product.version == 4


def test_a_vendors_offer_is_replaced_and_its_old_sku_freed(catalog: CatalogService) -> None:
    product_id = kettle(catalog)
    # When cheapco changes its price and sku
    offer, created = catalog.save_offer(product_id, offer_in("cheapco", price_minor=3900, sku="CHEAP-77"))
    assert not created
    found = catalog.product(product_id)
    assert [o.price_minor for o in found.offers if o.vendor_id == "cheapco"] == [3900]
    assert found.product.summary.prices[0].cheapest_minor == 3000
    # Then the old default sku is free for another offer, the new one is not
    catalog.save_offer(product_id, offer_in("newco", sku=f"{product_id}.cheapco"))
    with pytest.raises(Conflict):
        catalog.save_offer(product_id, offer_in("other", sku="CHEAP-77"))
    assert "other" not in {o.vendor_id for o in catalog.product(product_id).offers}
    assert offer.sku == "CHEAP-77"


def test_an_offer_for_an_unknown_product_is_a_404(catalog: CatalogService) -> None:
    with pytest.raises(NotFound):
        catalog.save_offer("nothing", offer_in("cheapco"))


def test_vendors_offering_at_once_are_all_counted_in_the_summary(catalog: CatalogService) -> None:
    # Given a product / When 12 vendors post their offers concurrently
    product, _ = catalog.save_product(ProductIn(name="Teapot", category="kitchen"))
    with ThreadPoolExecutor(max_workers=12) as pool:
        list(
            pool.map(
                lambda n: catalog.save_offer(product.product_id, offer_in(f"v{n}", price_minor=100 + n)), range(12)
            )
        )
    # Then every offer is saved and the summary, rewritten by each, counts all twelve
    found = catalog.product(product.product_id)
    assert len(found.offers) == 12
    assert (found.product.summary.offers, found.product.summary.prices[0].cheapest_minor) == (12, 100)


def test_search_follows_a_product_that_is_renamed(catalog: CatalogService) -> None:
    kettle(catalog)
    catalog.save_product(ProductIn(product_id="shoe-1", name="Trail running shoes", category="shoes"))
    assert [h.product.product_id for h in catalog.search("quiet kettle").items] == ["kettle-1"]
    # When the kettle is renamed to a teapot
    renamed, created = catalog.save_product(
        ProductIn(product_id="kettle-1", name="Porcelain teapot", category="kitchen")
    )
    # Then it is found by its new name only, keeps its offers, and the index still counts two products
    assert not created
    assert renamed.summary.offers == 3
    assert catalog.search("kettle").items == []
    assert [h.product.product_id for h in catalog.search("teapot").items] == ["kettle-1"]
    assert catalog.store.stats()[0] == 2
    with pytest.raises(InvalidInput):
        catalog.search("the of a")


def test_a_comparison_learns_from_orders_placed_through_the_order_service(
    catalog: CatalogService, orders: OrderService
) -> None:
    # Given a customer who bought the kettle twice from quickco and once (cancelled) from cheapco
    product_id = kettle(catalog)
    buy(orders, f"{product_id}.quickco", 3000, "k1")
    buy(orders, f"{product_id}.quickco", 3000, "k2")
    cancelled = buy(orders, f"{product_id}.cheapco", 2590, "k3")
    orders.change_status(cancelled, StatusChangeIn(status="cancelled"), correlation_id="c")
    # When they compare the kettle's offers
    comparison = catalog.compare(CUSTOMER, product_id=product_id)
    # Then quickco comes first, saying why; the cancelled order taught nothing
    first = comparison.ranked[0]
    assert first.offer.vendor_id == "quickco"
    assert "you bought from this vendor 2 times" in first.reasons
    assert "arrives in 1 day, the fastest" in first.reasons
    assert comparison.profile.purchases_by_vendor == {"quickco": 2}
    assert (comparison.profile.fastest_share, comparison.profile.cheapest_share) == (1.0, 0.0)
    assert comparison.currency == "EUR"


def test_stated_preferences_are_kept_and_change_the_ranking(catalog: CatalogService) -> None:
    product_id = kettle(catalog)
    catalog.save_offer(product_id, offer_in("usshop", currency="USD", price_minor=1))
    assert catalog.preferences(CUSTOMER).priority == "balanced"
    catalog.set_preferences(CUSTOMER, ComparePreferencesIn(priority="price"))
    comparison = catalog.compare(CUSTOMER, product_id=product_id)
    assert comparison.ranked[0].offer.vendor_id == "cheapco"
    assert comparison.ranked[0].reasons[0] == "cheapest by 4.10 EUR"
    assert [lo.offer.vendor_id for lo in comparison.left_out] == ["usshop"]
    # When they ask for dollars, the dollar offer is compared and the euro ones left out
    catalog.set_preferences(CUSTOMER, ComparePreferencesIn(priority="price", currency="USD"))
    comparison = catalog.compare(CUSTOMER, product_id=product_id)
    assert [r.offer.vendor_id for r in comparison.ranked] == ["usshop"]
    assert len(comparison.left_out) == 3


def test_a_need_in_words_is_compared_with_the_other_matches_beside_it(catalog: CatalogService) -> None:
    kettle(catalog)
    catalog.save_product(ProductIn(product_id="kettle-2", name="Stovetop kettle", category="kitchen"))
    comparison = catalog.compare(CUSTOMER, query="a quiet kettle for tea")
    assert comparison.product.product_id == "kettle-1"
    assert [a.product_id for a in comparison.alternatives] == ["kettle-2"]
    assert len(comparison.ranked) == 3
    empty = catalog.compare(CUSTOMER, product_id="kettle-2")
    assert (empty.ranked, empty.note) == ([], "no vendor offers this product yet")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({}, InvalidInput), ({"product_id": "a", "query": "b"}, InvalidInput), ({"product_id": "none"}, NotFound)],
)
def test_a_comparison_names_one_known_product_or_one_need(
    catalog: CatalogService, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        catalog.compare(CUSTOMER, **kwargs)
    with pytest.raises(NotFound):
        catalog.compare(CUSTOMER, query="submarine")
