"""Vendors' offers for one product ranked by what this customer values, each rank with its reasons (pure).

What a customer values is a set of weights over an offer's qualities (price, speed, rating, return policy,
the vendor). They start from a default, move with what the customer's purchases show (did they buy at the
cheapest offer, at the fastest, from the same vendors again), scaled by how many purchases there are, and then
with what the customer said (`ComparePreferences`), which weighs more than history. Only offers in one
currency are compared (no exchange rates are kept); the others are left out with that reason. Out-of-stock
offers rank last. Equal scores are ordered by price, delivery, rating and vendor id, so a ranking never varies.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from ecrm.transactions.catalog import (
    ComparePreferences,
    LeftOutOffer,
    Offer,
    RankedOffer,
    ValueProfile,
    Weights,
)
from ecrm.transactions.ledger import major_units

BASE_WEIGHTS = {"price": 0.35, "speed": 0.25, "rating": 0.2, "returns": 0.05, "vendor": 0.15}
STATED_PRIORITY_FACTOR = 2.5  # a stated priority weighs at least this much more, and at least half of all
FAVOURITES_FACTOR = 1.5
CONFIDENCE_PURCHASES = 3  # purchases at which history moves the weights halfway to its full effect
LOYAL_PURCHASES = 3  # purchases from one vendor at which the vendor counts fully
RETURNS_HORIZON_DAYS = 30
CHEAPEST_TOLERANCE = 0.02  # paid within 2 % of the cheapest offer counts as buying the cheapest


@dataclass(frozen=True)
class PurchaseSignal:
    """One order line matched to a catalogue offer: what was paid and chosen against what was on offer."""

    order_id: str
    vendor_id: str
    currency: str
    paid_minor: int
    cheapest_minor: int | None  # the product's cheapest in-stock offer in that currency, None if unknown
    delivery_days: int
    fastest_days: int | None


@dataclass(frozen=True)
class PurchaseHistory:
    """What a customer's purchases say, counted once when their orders change and kept beside their preferences,
    so that a comparison reads one item instead of their orders, the skus' offers and the products'."""

    purchases: int = 0  # order lines matched to catalogue offers
    priced: int = 0  # of those, with a cheapest offer to measure against
    at_cheapest: int = 0
    timed: int = 0  # of those, with a fastest offer to measure against
    at_fastest: int = 0
    orders_by_vendor: dict[str, int] = field(default_factory=dict)  # orders, not lines
    currencies: dict[str, int] = field(default_factory=dict)  # lines bought per currency

    def bought_in(self) -> list[str]:
        return [currency for currency, lines in sorted(self.currencies.items()) for _ in range(lines)]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PurchaseHistory:
        return cls(**json.loads(text))


def summarize_history(signals: Sequence[PurchaseSignal]) -> PurchaseHistory:
    priced = [s for s in signals if s.cheapest_minor is not None]
    timed = [s for s in signals if s.fastest_days is not None]
    by_vendor = Counter(vendor for _, vendor in {(s.order_id, s.vendor_id) for s in signals})
    return PurchaseHistory(
        purchases=len(signals),
        priced=len(priced),
        at_cheapest=sum(s.paid_minor <= (s.cheapest_minor or 0) * (1 + CHEAPEST_TOLERANCE) for s in priced),
        timed=len(timed),
        at_fastest=sum(s.delivery_days <= (s.fastest_days or 0) for s in timed),
        orders_by_vendor=dict(sorted(by_vendor.items())),
        currencies=dict(sorted(Counter(s.currency for s in signals).items())),
    )


def learn_profile(signals: Sequence[PurchaseSignal], stated: ComparePreferences | None) -> ValueProfile:
    """The customer's weights: the default, moved by their purchases, then by what they said."""
    return profile_from(summarize_history(signals), stated)


def profile_from(history: PurchaseHistory, stated: ComparePreferences | None) -> ValueProfile:
    """The weights from a purchase history already counted (what a comparison request does)."""
    weights = dict(BASE_WEIGHTS)
    cheapest_share = fastest_share = None
    by_vendor = history.orders_by_vendor
    if history.purchases:
        confidence = history.purchases / (history.purchases + CONFIDENCE_PURCHASES)
        if history.priced:
            cheapest_share = history.at_cheapest / history.priced
            weights["price"] *= 1 + (cheapest_share - 0.5) * confidence
        if history.timed:
            fastest_share = history.at_fastest / history.timed
            weights["speed"] *= 1 + (fastest_share - 0.5) * confidence
        repeat_share = sum(n for n in by_vendor.values() if n > 1) / sum(by_vendor.values())
        weights["vendor"] *= 1 + repeat_share * confidence
    if stated is not None:
        if stated.priority in ("price", "speed"):
            others = sum(w for k, w in weights.items() if k != stated.priority)
            weights[stated.priority] = max(weights[stated.priority] * STATED_PRIORITY_FACTOR, others)
        if stated.favourite_vendors:
            weights["vendor"] *= FAVOURITES_FACTOR
    total = sum(weights.values())
    return ValueProfile(
        weights=Weights(**{k: round(v / total, 4) for k, v in weights.items()}),
        learned_from_purchases=history.purchases,
        cheapest_share=None if cheapest_share is None else round(cheapest_share, 3),
        fastest_share=None if fastest_share is None else round(fastest_share, 3),
        purchases_by_vendor=dict(sorted(by_vendor.items())),
        stated=stated,
    )


def choose_currency(offers: Iterable[Offer], stated: str | None, bought_in: Iterable[str]) -> str | None:
    """The stated currency if offered; else the one the customer buys in most; else the most offered in stock."""
    offers = list(offers)
    offered = {o.currency for o in offers}
    if stated in offered:
        return stated
    history = Counter(c for c in bought_in if c in offered)
    if history:
        return min(history, key=lambda c: (-history[c], c))
    in_stock = Counter(o.currency for o in offers if o.stock > 0) or Counter(o.currency for o in offers)
    return min(in_stock, key=lambda c: (-in_stock[c], c)) if in_stock else None


def rank_offers(
    offers: Sequence[Offer], profile: ValueProfile, currency: str | None
) -> tuple[list[RankedOffer], list[LeftOutOffer]]:
    """The offers in `currency` ranked best first with their reasons; the others left out with theirs."""
    comparable = [o for o in offers if o.currency == currency]
    left_out = [
        LeftOutOffer(
            offer=o,
            reason=f"priced in {o.currency}; this comparison is in {currency} and keeps no exchange rates",
        )
        for o in sorted(offers, key=lambda o: (o.currency, o.price_minor, o.vendor_id))
        if o.currency != currency
    ]
    if not comparable:
        return [], left_out
    context = _Context(comparable, profile)
    scored = sorted(
        ((context.score(o), o) for o in comparable),
        key=lambda pair: (
            pair[1].stock == 0,
            -pair[0],
            pair[1].price_minor,
            pair[1].delivery_days,
            -pair[1].vendor_rating,
            pair[1].vendor_id,
        ),
    )
    ranked = [
        RankedOffer(rank=n, offer=o, score=score, available=o.stock > 0, reasons=context.reasons(o))
        for n, (score, o) in enumerate(scored, start=1)
    ]
    return ranked, left_out


class _Context:
    """The ranges each quality is normalised over, and the customer's weights and vendors."""

    def __init__(self, offers: Sequence[Offer], profile: ValueProfile) -> None:
        self.weights = profile.weights.model_dump()
        self.bought = profile.purchases_by_vendor
        self.favourites = set(profile.stated.favourite_vendors) if profile.stated else set()
        self.prices = _Range([o.price_minor for o in offers])
        self.days = _Range([o.delivery_days for o in offers])
        in_stock = [o for o in offers if o.stock > 0]
        self.stocked_prices = sorted(o.price_minor for o in in_stock)
        self.fastest = min((o.delivery_days for o in in_stock), default=None)
        self.known: dict[str, dict[str, float]] = {}  # qualities per vendor (one offer each), for score and reasons

    def qualities(self, offer: Offer) -> dict[str, float]:
        known = self.known.get(offer.vendor_id)
        if known is None:
            known = self.known[offer.vendor_id] = self._qualities(offer)
        return known

    def _qualities(self, offer: Offer) -> dict[str, float]:
        return {
            "price": self.prices.lowness(offer.price_minor),
            "speed": self.days.lowness(offer.delivery_days),
            "rating": float(offer.vendor_rating) / 5,
            "returns": min(offer.return_days, RETURNS_HORIZON_DAYS) / RETURNS_HORIZON_DAYS,
            "vendor": self.affinity(offer.vendor_id),
        }

    def affinity(self, vendor_id: str) -> float:
        if vendor_id in self.favourites:
            return 1.0
        return min(self.bought.get(vendor_id, 0) / LOYAL_PURCHASES, 1.0)

    def score(self, offer: Offer) -> float:
        return round(sum(self.weights[k] * q for k, q in self.qualities(offer).items()), 6)

    def reasons(self, offer: Offer) -> list[str]:
        """Every quality said in words, the ones that weigh most in this customer's score first."""
        qualities = self.qualities(offer)
        said = {
            "price": self._price_reason(offer),
            "speed": self._speed_reason(offer),
            "rating": f"rated {offer.vendor_rating.normalize():f}",
            "returns": f"returns within {offer.return_days} days" if offer.return_days else "no returns",
            "vendor": self._vendor_reason(offer.vendor_id),
        }
        order = sorted(said, key=lambda k: -self.weights[k] * qualities[k])
        reasons = [reason for k in order if (reason := said[k])]
        return ["out of stock", *reasons] if offer.stock == 0 else reasons

    def _price_reason(self, offer: Offer) -> str:
        prices, currency = self.stocked_prices, offer.currency
        if offer.stock == 0 or not prices:
            return f"{_money(offer.price_minor, currency)}"
        cheapest = prices[0]
        if offer.price_minor > cheapest:
            return f"{_money(offer.price_minor - cheapest, currency)} more than the cheapest"
        others = prices[1:]
        if not others:
            return "the only one in stock at this price"
        if others[0] == cheapest:
            tied = others.count(cheapest)
            return f"cheapest, with {tied} other{'s' if tied > 1 else ''} at the same price"
        return f"cheapest by {_money(others[0] - cheapest, currency)}"

    def _speed_reason(self, offer: Offer) -> str:
        days = offer.delivery_days
        when = "arrives today" if days == 0 else f"arrives in {days} day{'s' if days != 1 else ''}"
        fastest = offer.stock and days == self.fastest and self.days.low != self.days.high
        return f"{when}, the fastest" if fastest else when

    def _vendor_reason(self, vendor_id: str) -> str | None:
        if vendor_id in self.favourites:
            return "one of your favourite vendors"
        times = self.bought.get(vendor_id, 0)
        if not times:
            return None
        return "you bought from this vendor once" if times == 1 else f"you bought from this vendor {times} times"


class _Range:
    def __init__(self, values: Sequence[int]) -> None:
        self.low, self.high = min(values), max(values)

    def lowness(self, value: int) -> float:
        """1 for the lowest value, 0 for the highest, linear between; 1 when they are all equal."""
        return 1.0 if self.high == self.low else (self.high - value) / (self.high - self.low)


def _money(minor: int, currency: str) -> str:
    return f"{major_units(minor, currency):f} {currency}"
