"""The business rules between a ranked list of candidate items and what a customer is shown.

Owns, in this order: no item twice; not what the customer already bought (configurable); not out of stock;
not an item not sold in the customer's country; then diversity, at most `max_per_category` items of one
category while other categories still have candidates (past that, the best of the held-back items fill the
list, so a single-category shop still gets full lists). Items the catalogue does not know pass the stock and
country rules (the engine works before a catalogue feed exists) unless `require_catalogue` is set; an item
without a category is not capped. Pure logic: the caller reads the catalogue entries of the candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

from ecrm.personalization.service_models import CatalogueItem


@dataclass(frozen=True)
class SelectionRules:
    exclude_bought: bool = True
    max_per_category: int | None = 3
    require_catalogue: bool = False


def select_items(
    candidates: Iterable[str],
    *,
    k: int,
    catalogue: Mapping[str, CatalogueItem],
    country: str | None,
    bought: Collection[str],
    rules: SelectionRules,
    exclude: Collection[str] = (),
) -> list[str]:
    """The first `k` candidates (best first) the customer may be shown, diversified across categories."""
    seen = set(exclude)
    allowed: list[str] = []
    for item in candidates:
        if item in seen:
            continue
        seen.add(item)
        if rules.exclude_bought and item in bought:
            continue
        details = catalogue.get(item)
        if details is None:
            if rules.require_catalogue:
                continue
        elif not details.in_stock or not details.sold_in(country):
            continue
        allowed.append(item)

    def category_of(item: str) -> str | None:
        details = catalogue.get(item)
        return details.category if details is not None else None

    return diversify(allowed, k=k, category_of=category_of, max_per_category=rules.max_per_category)


def diversify(
    items: Iterable[str], *, k: int, category_of: Callable[[str], str | None], max_per_category: int | None
) -> list[str]:
    """At most `max_per_category` per category while others have candidates, then the best held back."""
    if k <= 0:
        return []
    if max_per_category is None:
        return list(items)[:k]
    chosen: list[str] = []
    held_back: list[str] = []
    counts: dict[str, int] = {}
    for item in items:
        category = category_of(item)
        if category is not None:
            if counts.get(category, 0) >= max_per_category:
                held_back.append(item)
                continue
            counts[category] = counts.get(category, 0) + 1
        chosen.append(item)
        if len(chosen) == k:
            return chosen
    return chosen + held_back[: k - len(chosen)]
