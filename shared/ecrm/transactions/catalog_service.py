"""Catalogue use cases: products and vendors' offers, search by need, and a customer's comparison of offers.

A comparison reads two partitions: the product with its offers (one Query) and the customer's (one Query:
their stated preferences and their purchase history already counted). The history is counted when the
customer's orders change (`refresh_history`, from the order events' consumer): their recent orders through
the order service, whose skus are read as choices between offers (the sku index, then the products'
summaries: two batch gets). A customer whose history was never counted (orders from before it was kept) has
it counted by their first comparison. The cheapest and fastest offer a purchase is measured against are the
catalogue's when the history was counted: the catalogue keeps no price history. The personalization engine's
recommendations are asked at the start and taken beside the offers if they arrived in time
(`catalog_recommendations`).
"""

from __future__ import annotations

from typing import Protocol

from ecrm.core.clock import Clock
from ecrm.core.errors import Conflict, InvalidInput, NotFound, ServiceUnavailable
from ecrm.core.ids import new_id
from ecrm.transactions.catalog import (
    Alternative,
    ComparePreferences,
    ComparePreferencesIn,
    Comparison,
    Offer,
    OfferIn,
    Product,
    ProductIn,
    ProductWithOffers,
    SearchHit,
    SearchResult,
    default_sku,
    summarize,
)
from ecrm.transactions.catalog_recommendations import RecommendationsBeside
from ecrm.transactions.catalog_store import CatalogStore, SkuTaken, StaleProduct
from ecrm.transactions.comparison import (
    PurchaseHistory,
    PurchaseSignal,
    choose_currency,
    profile_from,
    rank_offers,
    summarize_history,
)
from ecrm.transactions.models import Order
from ecrm.transactions.need_matching import bm25, product_terms, query_terms

# Each round of conflicting writes to one product lets one writer win, so this many vendors posting to one
# product at the same instant all get through (a feed's bulk upload) before one is asked to retry.
ATTEMPTS = 16
HISTORY_ORDERS = 50
ALTERNATIVES = 4
LEARNED_FROM = ("placed", "paid", "shipped", "delivered", "returned")  # a cancelled order chose nothing


class OrderHistory(Protocol):
    def for_customer(self, customer_id: str, limit: int = 50) -> list[Order]: ...


class CatalogService:
    def __init__(
        self,
        store: CatalogStore,
        orders: OrderHistory,
        clock: Clock,
        recommendations: RecommendationsBeside | None = None,
    ) -> None:
        self.store = store
        self.orders = orders
        self.clock = clock
        self.recommendations = recommendations or RecommendationsBeside(None)

    # -- catalogue -----------------------------------------------------------------------------------------
    def save_product(self, body: ProductIn) -> tuple[Product, bool]:
        """A new product (True), or the one with that id replaced, keeping its offers and creation time."""
        product_id = body.product_id or new_id("prd_")
        terms = product_terms(body)
        for _ in range(ATTEMPTS):
            previous = self.store.product(product_id)
            now = self.clock.now()
            fields = {**body.model_dump(), "product_id": product_id, "updated_at": now}
            if previous is None:
                product = Product.model_validate({**fields, "created_at": now})
            else:
                old = previous.product
                product = Product.model_validate(
                    {**fields, "summary": old.summary, "created_at": old.created_at, "version": old.version + 1}
                )
            try:
                self.store.save_product(product, terms, previous)
                return product, previous is None
            except StaleProduct:
                continue
        raise ServiceUnavailable("the product is being changed concurrently; retry the request")

    def save_offer(self, product_id: str, body: OfferIn) -> tuple[Offer, bool]:
        """The vendor's offer (True when the vendor had none for the product), the product's summary with it."""
        for _ in range(ATTEMPTS):
            product, offers = self.store.product_with_offers(product_id)
            if product is None:
                raise NotFound(f"no product {product_id}")
            now = self.clock.now()
            offer = Offer.model_validate(
                {
                    **body.model_dump(),
                    "product_id": product_id,
                    "sku": body.sku or default_sku(product_id, body.vendor_id),
                    "updated_at": now,
                }
            )
            previous = next((o for o in offers if o.vendor_id == body.vendor_id), None)
            others = [o for o in offers if o.vendor_id != body.vendor_id]
            changed = product.model_copy(
                update={"summary": summarize([*others, offer]), "updated_at": now, "version": product.version + 1}
            )
            try:
                self.store.save_offer(
                    changed,
                    expected_version=product.version,
                    offer=offer,
                    replaced_sku=previous.sku if previous else None,
                )
                return offer, previous is None
            except StaleProduct:
                continue
            except SkuTaken:
                raise Conflict(f"the sku {offer.sku} is another offer's; give this offer its own sku") from None
        raise ServiceUnavailable("the product is being changed concurrently; retry the request")

    def product(self, product_id: str) -> ProductWithOffers:
        product, offers = self.store.product_with_offers(product_id)
        if product is None:
            raise NotFound(f"no product {product_id}")
        return ProductWithOffers(product=product, offers=offers)

    def search(self, query: str, limit: int = 10) -> SearchResult:
        """Products best matching a need in words, by BM25 over their names, categories and attributes."""
        ranked = self._match(query, limit)
        products = self.store.products(pid for pid, _ in ranked)
        hits = [SearchHit(product=products[pid], score=score) for pid, score in ranked if pid in products]
        return SearchResult(query=query, items=hits)

    # -- comparison ----------------------------------------------------------------------------------------
    def preferences(self, customer_id: str) -> ComparePreferences:
        return self.store.preferences(customer_id) or ComparePreferences()

    def set_preferences(self, customer_id: str, body: ComparePreferencesIn) -> ComparePreferences:
        preferences = ComparePreferences.model_validate({**body.model_dump(), "updated_at": self.clock.now()})
        self.store.save_preferences(customer_id, preferences)
        return preferences

    def compare(self, customer_id: str, *, product_id: str | None = None, query: str | None = None) -> Comparison:
        """Every vendor's offer for the product (named, or the best match of the need) ranked for this customer."""
        if (product_id is None) == (query is None):
            raise InvalidInput("name a product (product=) or describe what you need (q=), one of the two")
        asked = self.recommendations.ask(customer_id)  # answered while the comparison reads and ranks
        alternatives: list[Alternative] = []
        if query is not None:
            matches = self._match(query, ALTERNATIVES + 1)
            if not matches:
                raise NotFound(f"no product matches '{query}'")
            product_id = matches[0][0]
            names = self.store.products(pid for pid, _ in matches[1:])
            alternatives = [
                Alternative(product_id=pid, name=names[pid].name, score=score)
                for pid, score in matches[1:]
                if pid in names
            ]
        product, offers = self.store.product_with_offers(product_id or "")
        if product is None:
            raise NotFound(f"no product {product_id}")
        stated, history = self.store.shopper(customer_id)
        if history is None:
            history = self.refresh_history(customer_id)
        profile = profile_from(history, stated)
        currency = choose_currency(offers, stated.currency if stated else None, history.bought_in())
        ranked, left_out = rank_offers(offers, profile, currency)
        return Comparison(
            product=product,
            currency=currency,
            ranked=ranked,
            left_out=left_out,
            profile=profile,
            query=query,
            alternatives=alternatives,
            note=None if offers else "no vendor offers this product yet",
            recommendations=self.recommendations.collect(asked),
        )

    def refresh_history(self, customer_id: str) -> PurchaseHistory:
        """Count what the customer's recent orders say again and keep it for their comparisons."""
        history = summarize_history(self.purchase_signals(customer_id))
        self.store.save_history(customer_id, history, counted_at=self.clock.now().isoformat())
        return history

    def purchase_signals(self, customer_id: str) -> list[PurchaseSignal]:
        """The customer's recent order lines that bought a catalogue offer, against what else was on offer."""
        orders = [o for o in self.orders.for_customer(customer_id, HISTORY_ORDERS) if o.status in LEARNED_FROM]
        pointers = self.store.sku_pointers(line.sku for order in orders for line in order.lines)
        if not pointers:
            return []
        products = self.store.products(p.product_id for p in pointers.values())
        signals = []
        for order in orders:
            for line in order.lines:
                pointer = pointers.get(line.sku)
                product = products.get(pointer.product_id) if pointer else None
                if pointer is None or product is None:
                    continue
                cheapest = next(
                    (p.cheapest_minor for p in product.summary.prices if p.currency == order.currency), None
                )
                signals.append(
                    PurchaseSignal(
                        order_id=order.order_id,
                        vendor_id=pointer.vendor_id,
                        currency=order.currency,
                        paid_minor=line.unit_price_minor,
                        cheapest_minor=cheapest,
                        delivery_days=pointer.delivery_days,
                        fastest_days=product.summary.fastest_delivery_days,
                    )
                )
        return signals

    def _match(self, query: str, limit: int) -> list[tuple[str, float]]:
        terms = query_terms(query)
        if not terms:
            raise InvalidInput("the query has no words to search for (only very common words or punctuation)")
        documents, length = self.store.stats()
        postings = self.store.postings(terms)
        return bm25(terms, postings, documents=documents, average_length=length / max(documents, 1))[:limit]
