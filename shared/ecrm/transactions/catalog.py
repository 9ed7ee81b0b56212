"""The catalogue's contract and its pure rules: products, vendors' offers, a product's offer summary, and what a
comparison answers.

A product is what a customer asks for (a kettle); an offer is one vendor selling it (price, stock, delivery,
rating, return policy). An offer carries the vendor's `sku`: an order line with that sku is a purchase of that
offer, which is how a customer's order history teaches the comparison what they value (`comparison`).
Money is integer minor units of an ISO 4217 currency, as everywhere in the engine (ADR 13).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from ecrm.core.contract import Contract
from ecrm.transactions.models import Category, Currency, MinorUnits, ShortText, Sku, VendorId

PRODUCT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
ProductId = Annotated[str, StringConstraints(pattern=PRODUCT_ID_PATTERN)]
AttributeName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
AttributeValue = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Priority = Literal["price", "speed", "balanced"]

MAX_ATTRIBUTES = 20
MAX_FAVOURITES = 20


class _Strict(Contract):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- products and offers ---------------------------------------------------------------------------------------
class ProductIn(_Strict):
    """`POST /catalog/products`: a product; with a `product_id` already known it replaces that product."""

    product_id: ProductId | None = Field(default=None, description="Omitted: the catalogue gives one (prd_...)")
    name: ShortText
    category: Category
    attributes: dict[AttributeName, AttributeValue] = Field(default_factory=dict, max_length=MAX_ATTRIBUTES)
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = ""


class CurrencyPrice(_Strict):
    currency: str
    cheapest_minor: int
    offers: int


class OfferSummary(_Strict):
    """What a product's offers add up to, kept on the product so that search and history read it in one get."""

    offers: int = 0
    in_stock: int = 0
    prices: list[CurrencyPrice] = Field(default_factory=list, description="Cheapest in-stock offer per currency")
    fastest_delivery_days: int | None = None


class Product(ProductIn):
    product_id: ProductId
    summary: OfferSummary = Field(default_factory=OfferSummary)
    created_at: datetime
    updated_at: datetime
    version: int = 1


class OfferIn(_Strict):
    """`POST /catalog/products/{id}/offers`: a vendor's offer for the product, replacing that vendor's last one."""

    vendor_id: VendorId
    vendor_name: ShortText
    sku: Sku | None = Field(
        default=None, description="The vendor's sku, the one order lines carry; omitted: <product id>.<vendor id>"
    )
    price_minor: MinorUnits
    currency: Currency
    stock: int = Field(ge=0, le=10**9)
    delivery_days: int = Field(ge=0, le=365)
    vendor_rating: Decimal = Field(ge=0, le=5, max_digits=3, decimal_places=2, description="0 to 5")
    return_days: int = Field(ge=0, le=365, description="Days to return it; 0: no returns")


class Offer(OfferIn):
    product_id: ProductId
    sku: Sku
    updated_at: datetime


class ProductWithOffers(_Strict):
    product: Product
    offers: list[Offer]


class SearchHit(_Strict):
    product: Product
    score: float = Field(description="BM25 relevance of the product's name, category and attributes to the query")


class SearchResult(_Strict):
    query: str
    items: list[SearchHit]


# -- comparison -------------------------------------------------------------------------------------------------
class ComparePreferencesIn(_Strict):
    """`PUT /me/compare/preferences`: what the customer says they value; it weighs more than their history."""

    priority: Priority = "balanced"
    favourite_vendors: list[VendorId] = Field(default_factory=list, max_length=MAX_FAVOURITES)
    currency: Currency | None = Field(default=None, description="Compare in this currency when offers are in several")

    @model_validator(mode="after")
    def _unique_favourites(self) -> ComparePreferencesIn:
        if len(set(self.favourite_vendors)) != len(self.favourite_vendors):
            raise ValueError("each favourite vendor appears once")
        return self


class ComparePreferences(ComparePreferencesIn):
    updated_at: datetime | None = None


class Weights(_Strict):
    """How much each quality of an offer counts for this customer (they sum to 1)."""

    price: float
    speed: float
    rating: float
    returns: float
    vendor: float


class ValueProfile(_Strict):
    """What the comparison learned about the customer and what they said, with where each weight came from."""

    weights: Weights
    learned_from_purchases: int = Field(description="Order lines matched to catalogue offers")
    cheapest_share: float | None = Field(default=None, description="Of those, the share bought at the cheapest")
    fastest_share: float | None = Field(default=None, description="Of those, the share bought at the fastest")
    purchases_by_vendor: dict[str, int] = Field(default_factory=dict)
    stated: ComparePreferences | None = None


class RankedOffer(_Strict):
    rank: int
    offer: Offer
    score: float = Field(description="0 to 1: the offer's qualities weighed by what this customer values")
    available: bool
    reasons: list[str]


class LeftOutOffer(_Strict):
    offer: Offer
    reason: str


class Alternative(_Strict):
    product_id: str
    name: str
    score: float


class RecommendedItem(Contract):
    """An item the personalization engine recommends, as its list names it (fields it adds later are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    item_id: str
    name: str | None = None
    category: str | None = None
    url: str | None = None
    image_url: str | None = None
    price: float | None = None
    currency: str | None = None


class Recommendations(_Strict):
    """The personalization engine's recommendations beside a comparison; empty, with why, when it could not
    answer in time (a comparison never waits on it, nor fails with it)."""

    items: list[RecommendedItem] = Field(default_factory=list)
    strategy: str | None = Field(default=None, description="personal, popular, item or none, as the engine says")
    note: str = Field(description="Why these items, or why none")


class Comparison(_Strict):
    product: Product
    currency: str | None = Field(description="The one currency the ranked offers are compared in")
    ranked: list[RankedOffer] = Field(description="Best first; out-of-stock offers last")
    left_out: list[LeftOutOffer] = Field(description="Offers in other currencies, not comparable without rates")
    profile: ValueProfile
    query: str | None = None
    alternatives: list[Alternative] = Field(default_factory=list, description="Other products matching the query")
    note: str | None = None
    recommendations: Recommendations = Field(
        default_factory=lambda: Recommendations(note="no recommender was asked"),
        description="The personalization engine's recommendations for the customer, beside the offers",
    )


# -- pure rules -------------------------------------------------------------------------------------------------
def default_sku(product_id: str, vendor_id: str) -> str:
    return f"{product_id}.{vendor_id}"[:64]


def summarize(offers: list[Offer]) -> OfferSummary:
    """The cheapest in-stock price per currency and the fastest in-stock delivery, over every vendor's offer."""
    in_stock = [o for o in offers if o.stock > 0]
    by_currency: dict[str, list[int]] = {}
    for offer in in_stock:
        by_currency.setdefault(offer.currency, []).append(offer.price_minor)
    return OfferSummary(
        offers=len(offers),
        in_stock=len(in_stock),
        prices=[
            CurrencyPrice(currency=currency, cheapest_minor=min(prices), offers=len(prices))
            for currency, prices in sorted(by_currency.items())
        ],
        fastest_delivery_days=min((o.delivery_days for o in in_stock), default=None),
    )
