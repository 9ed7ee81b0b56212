"""The business rules between candidates and a list: bought, stock, country, diversity."""

from __future__ import annotations

from typing import Any

from ecrm.personalization.selection import SelectionRules, diversify, select_items
from ecrm.personalization.service_models import CatalogueItem
from hypothesis import given, settings
from hypothesis import strategies as st

CATALOGUE = {
    "s1": CatalogueItem(item_id="s1", category="shoes"),
    "s2": CatalogueItem(item_id="s2", category="shoes"),
    "s3": CatalogueItem(item_id="s3", category="shoes"),
    "h1": CatalogueItem(item_id="h1", category="hats"),
    "gone": CatalogueItem(item_id="gone", category="hats", in_stock=False),
    "de": CatalogueItem(item_id="de", countries=["DE", "AT"]),
}


def select(candidates: list[str], k: int = 10, **kwargs: Any) -> list[str]:
    rules = kwargs.pop("rules", SelectionRules(max_per_category=2))
    return select_items(candidates, k=k, catalogue=CATALOGUE, rules=rules, **{"country": "FR", "bought": ()} | kwargs)


def test_out_of_stock_and_not_sold_here_are_dropped_unknown_items_pass() -> None:
    assert select(["gone", "de", "unknown", "h1"]) == ["unknown", "h1"]
    assert select(["de"], country="at") == ["de"]
    assert select(["de"], country=None) == ["de"]  # an unknown country is not filtered


def test_bought_items_are_dropped_unless_the_rule_is_off() -> None:
    assert select(["s1", "h1"], bought={"s1"}) == ["h1"]
    assert select(["s1", "h1"], bought={"s1"}, rules=SelectionRules(exclude_bought=False)) == ["s1", "h1"]


def test_items_outside_the_catalogue_can_be_required() -> None:
    assert select(["unknown", "h1"], rules=SelectionRules(require_catalogue=True)) == ["h1"]


def test_at_most_n_per_category_while_others_have_candidates_then_the_best_held_back() -> None:
    assert select(["s1", "s2", "s3", "h1"], k=3) == ["s1", "s2", "h1"]
    assert select(["s1", "s2", "s3", "h1"], k=4) == ["s1", "s2", "h1", "s3"]
    assert select(["s1", "s2", "s3"], k=3, rules=SelectionRules(max_per_category=None)) == ["s1", "s2", "s3"]


def test_repeats_and_excluded_items_never_show() -> None:
    assert select(["s1", "s1", "h1", "s2"], exclude={"s2"}) == ["s1", "h1"]
    assert select(["s1"], k=0) == []


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "c", None]), min_size=0, max_size=30),
    st.integers(min_value=1, max_value=12),
    st.integers(min_value=1, max_value=4),
)
def test_diversify_keeps_order_size_and_the_cap_while_it_can(categories: list[str | None], k: int, cap: int) -> None:
    items = [f"i{n}" for n in range(len(categories))]
    category = dict(zip(items, categories, strict=True))

    chosen = diversify(items, k=k, category_of=category.get, max_per_category=cap)

    assert len(chosen) == min(k, len(items))
    assert len(set(chosen)) == len(chosen)
    counts: dict[str | None, int] = {c: sum(category[i] == c for i in chosen) for c in "abc"}
    if any(n > cap for n in counts.values()):
        # the cap gave way only because every item left out belongs to a category already at its cap
        left_out = [i for i in items if i not in chosen]
        assert all(category[i] is not None and counts[category[i]] >= cap for i in left_out)
    # within the items taken while the cap held, the candidates' order is kept
    kept = [i for i in chosen if category[i] is None or counts[category[i]] <= cap]
    assert kept == sorted(kept, key=items.index)
