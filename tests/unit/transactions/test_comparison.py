"""The comparison without AWS: weights learned from purchases and stated preferences, ranks with their reasons,
one currency compared, out-of-stock offers last, and a ranking that never depends on the offers' order."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from ecrm.transactions.catalog import ComparePreferences, ComparePreferencesIn, Offer, OfferIn, summarize
from ecrm.transactions.comparison import PurchaseSignal, choose_currency, learn_profile, rank_offers
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def offer(vendor: str, price: int, *, days: int = 3, rating: str = "4.0", stock: int = 5, **extra: Any) -> Offer:
    return Offer.model_validate(
        {
            "product_id": "kettle-1",
            "vendor_id": vendor,
            "vendor_name": vendor.title(),
            "sku": f"kettle-1.{vendor}",
            "price_minor": price,
            "currency": extra.pop("currency", "EUR"),
            "stock": stock,
            "delivery_days": days,
            "vendor_rating": Decimal(rating),
            "return_days": extra.pop("return_days", 14),
            "updated_at": NOW,
        }
    )


def signal(vendor: str, paid: int, cheapest: int, days: int, fastest: int, order: str = "o1") -> PurchaseSignal:
    return PurchaseSignal(order, vendor, "EUR", paid, cheapest, days, fastest)


OFFERS = [
    offer("cheapco", 2590, days=5, rating="3.9"),
    offer("quickco", 3000, days=1, rating="4.5"),
    offer("bestco", 3400, days=2, rating="4.8", return_days=30),
]


def ranking(offers: list[Offer], profile: Any, currency: str | None = "EUR") -> list[str]:
    ranked, _ = rank_offers(offers, profile, currency)
    return [r.offer.vendor_id for r in ranked]


def test_a_customer_who_always_buys_the_cheapest_gets_the_cheapest_first_with_by_how_much() -> None:
    # Given five purchases each at the cheapest offer and none at the fastest
    signals = [signal("cheapco", 1000, 1000, 5, 1, order=f"o{n}") for n in range(5)]
    profile = learn_profile(signals, None)
    # When the kettle's offers are compared / Then the cheapest wins and says by how much and how often they bought
    ranked, left_out = rank_offers(OFFERS, profile, "EUR")
    assert next(r.offer.vendor_id for r in ranked) == "cheapco"
    assert ranked[0].reasons[:2] == ["cheapest by 4.10 EUR", "you bought from this vendor 5 times"]
    assert profile.cheapest_share == 1.0
    assert profile.fastest_share == 0.0
    assert profile.weights.price > 0.35 > profile.weights.speed
    assert not left_out


def test_a_customer_who_pays_for_speed_gets_the_fastest_first() -> None:
    signals = [signal("quickco", 1400, 1000, 1, 1, order=f"o{n}") for n in range(4)]
    ranked, _ = rank_offers(OFFERS, learn_profile(signals, None), "EUR")
    assert ranked[0].offer.vendor_id == "quickco"
    assert "arrives in 1 day, the fastest" in ranked[0].reasons
    assert "4.10 EUR more than the cheapest" in ranked[0].reasons


def test_stated_preferences_outweigh_history_and_favourite_vendors_say_so() -> None:
    # Given a history of cheapest buys but a stated priority for speed
    signals = [signal("cheapco", 1000, 1000, 5, 1, order=f"o{n}") for n in range(5)]
    stated = ComparePreferences(priority="speed")
    assert ranking(OFFERS, learn_profile(signals, stated))[0] == "quickco"
    # Given no history and a favourite vendor
    favourite = learn_profile([], ComparePreferences(favourite_vendors=["bestco"]))
    ranked, _ = rank_offers(OFFERS, favourite, "EUR")
    best = next(r for r in ranked if r.offer.vendor_id == "bestco")
    assert "one of your favourite vendors" in best.reasons
    assert "rated 4.8" in best.reasons
    assert "returns within 30 days" in best.reasons


def test_history_counts_orders_not_lines_and_few_purchases_move_weights_little() -> None:
    one = learn_profile([signal("cheapco", 1000, 1000, 5, 1)], None)
    many = learn_profile([signal("cheapco", 1000, 1000, 5, 1, order=f"o{n}") for n in range(20)], None)
    assert 0.35 < one.weights.price < many.weights.price
    two_lines_one_order = learn_profile([signal("quickco", 1, 1, 1, 1), signal("quickco", 1, 1, 1, 1)], None)
    assert two_lines_one_order.purchases_by_vendor == {"quickco": 1}
    assert abs(sum(many.weights.model_dump().values()) - 1) < 1e-3


def test_out_of_stock_offers_rank_last_with_the_reason() -> None:
    offers = [*OFFERS, offer("gone", 100, days=0, rating="5", stock=0)]
    ranked, _ = rank_offers(offers, learn_profile([], None), "EUR")
    assert ranked[-1].offer.vendor_id == "gone"
    assert not ranked[-1].available
    assert ranked[-1].reasons[0] == "out of stock"
    # the cheapest in stock is still the cheapest: an offer nobody can buy is not a price to beat
    assert "cheapest by 4.10 EUR" in next(r for r in ranked if r.offer.vendor_id == "cheapco").reasons


def test_only_one_currency_is_compared_and_the_others_are_left_out_with_why() -> None:
    offers = [*OFFERS, offer("usshop", 100, currency="USD")]
    ranked, left_out = rank_offers(offers, learn_profile([], None), "EUR")
    assert {r.offer.currency for r in ranked} == {"EUR"}
    assert [lo.offer.vendor_id for lo in left_out] == ["usshop"]
    assert left_out[0].reason == "priced in USD; this comparison is in EUR and keeps no exchange rates"


def test_the_currency_is_the_stated_one_then_the_one_bought_in_then_the_most_offered() -> None:
    offers = [*OFFERS, offer("usshop", 100, currency="USD"), offer("jp", 100, currency="JPY")]
    assert choose_currency(offers, "USD", ["EUR"]) == "USD"
    assert choose_currency(offers, "GBP", ["JPY", "JPY", "EUR"]) == "JPY"
    assert choose_currency(offers, None, []) == "EUR"
    assert choose_currency([], None, []) is None


def test_money_is_said_with_the_currency_exponent() -> None:
    yen = [offer("a", 1000, currency="JPY"), offer("b", 1250, currency="JPY")]
    ranked, _ = rank_offers(yen, learn_profile([], ComparePreferences(priority="price")), "JPY")
    assert ranked[0].reasons[0] == "cheapest by 250 JPY"
    dinar = [offer("a", 1000, currency="KWD"), offer("b", 1250, currency="KWD")]
    ranked, _ = rank_offers(dinar, learn_profile([], ComparePreferences(priority="price")), "KWD")
    assert ranked[0].reasons[0] == "cheapest by 0.250 KWD"


def test_equal_offers_are_ordered_by_vendor_id_and_say_they_share_the_price() -> None:
    twins = [offer("zeta", 1000), offer("alpha", 1000)]
    ranked, _ = rank_offers(twins, learn_profile([], None), "EUR")
    assert [r.offer.vendor_id for r in ranked] == ["alpha", "zeta"]
    assert ranked[0].score == ranked[1].score
    assert "cheapest, with 1 other at the same price" in ranked[0].reasons


@given(st.permutations([*OFFERS, offer("twin", 2590, days=5, rating="3.9"), offer("gone", 10, stock=0)]))
def test_the_ranking_never_depends_on_the_order_offers_are_read_in(offers: list[Offer]) -> None:
    profile = learn_profile([signal("quickco", 3000, 2590, 1, 1)], None)
    assert ranking(offers, profile) == ranking(sorted(offers, key=lambda o: o.vendor_id), profile)


def test_the_summary_is_the_cheapest_in_stock_per_currency_and_the_fastest() -> None:
    summary = summarize([*OFFERS, offer("gone", 10, days=0, stock=0), offer("us", 999, currency="USD", days=4)])
    assert [(p.currency, p.cheapest_minor, p.offers) for p in summary.prices] == [("EUR", 2590, 3), ("USD", 999, 1)]
    assert (summary.offers, summary.in_stock, summary.fastest_delivery_days) == (5, 4, 1)


@pytest.mark.parametrize(
    "body",
    [
        {"priority": "cheap"},
        {"favourite_vendors": ["a", "a"]},
        {"favourite_vendors": ["Not A Vendor"]},
        {"currency": "euro"},
        {"priority": "price", "extra": 1},
    ],
)
def test_bad_preferences_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ComparePreferencesIn.model_validate(body)


@pytest.mark.parametrize(
    "change",
    [{"vendor_rating": "5.5"}, {"price_minor": -1}, {"price_minor": 1.5}, {"currency": "eur"}, {"stock": -1}],
)
def test_bad_offers_are_refused(change: dict[str, Any]) -> None:
    body = {
        "vendor_id": "cheapco",
        "vendor_name": "Cheap Co",
        "price_minor": 2590,
        "currency": "EUR",
        "stock": 1,
        "delivery_days": 2,
        "vendor_rating": "4.1",
        "return_days": 14,
    }
    OfferIn.model_validate(body)
    with pytest.raises(ValidationError):
        OfferIn.model_validate({**body, **change})


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["cheapco", "quickco", "bestco"]),
            st.integers(1, 5000),
            st.one_of(st.none(), st.integers(1, 5000)),
            st.integers(0, 9),
            st.one_of(st.none(), st.integers(0, 9)),
            st.sampled_from(["o1", "o2", "o3", "o4"]),
        ),
        max_size=12,
    ),
    st.sampled_from([None, ComparePreferences(priority="price"), ComparePreferences(favourite_vendors=["bestco"])]),
)
def test_a_history_counted_and_kept_learns_what_the_purchases_themselves_teach(
    rows: list[tuple[str, int, int | None, int, int | None, str]], stated: ComparePreferences | None
) -> None:
    from ecrm.transactions.comparison import PurchaseHistory, profile_from, summarize_history

    signals = [
        PurchaseSignal(order, vendor, "EUR", paid, cheapest, days, fastest)
        for vendor, paid, cheapest, days, fastest, order in rows
    ]
    kept = PurchaseHistory.from_json(summarize_history(signals).to_json())
    assert profile_from(kept, stated) == learn_profile(signals, stated)
    assert kept.bought_in() == ["EUR"] * len(signals)
