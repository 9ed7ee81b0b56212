"""Recommendation lists for a customer: the use case behind `/customers/{id}/recommendations` and `/me/...`.

A request reads a bounded number of items, whatever the catalogue or the history: the customer (one query),
the active model version and its popular lists (cached: a version never changes), the neighbour lists of at
most `HISTORY_ITEMS` recent items (one BatchGetItem, cached per version and item), and the catalogue entries
of at most `CANDIDATES` candidates (one BatchGetItem). Scoring is `recommenders`' pure-Python request path; no
numpy is imported.

Slots:
- `for_you`: items the recent history points to (recency-weighted, purchases count double), then the list the
  training job precomputed from the customer's whole history in the lake, then popular items. A customer who
  objected to profiling gets popular items only, and so does one with no history.
- `similar`: the item's neighbours, filled with trending then popular items (of its category first).
- `bought_together`: what shares baskets with the item; nothing is made up when the data show no link.
The item-based slots read the item being shown, not the person's profile, so they do not depend on profiling
consent. Every list then goes through `selection` (bought, stock, country, diversity).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ecrm.core.clock import Clock
from ecrm.core.errors import InvalidInput
from ecrm.personalization.projection import CustomerProjection, HistoryPolicy
from ecrm.personalization.recommenders import RecommenderModel, recommend_for_user, similar_items
from ecrm.personalization.selection import SelectionRules, select_items
from ecrm.personalization.service_models import (
    CatalogueItem,
    Recommendations,
    RecommendedItem,
    Slot,
    Strategy,
)
from ecrm.personalization.store import CustomerRecord, ItemLists, PersonalizationStore, PopularLists

HISTORY_ITEMS = 20
CANDIDATES = 100  # at most one BatchGetItem of catalogue entries
MAX_K = 50
_NO_LISTS = ItemLists([], [])
_NO_POPULAR = PopularLists([], [])


@dataclass
class RecommendationService:
    store: PersonalizationStore
    clock: Clock
    rules: SelectionRules = field(default_factory=SelectionRules)
    history: HistoryPolicy = field(default_factory=HistoryPolicy)
    pointer_ttl_seconds: float = 60.0
    cache_size: int = 2_000  # item lists of 100 neighbours: ~15 KB each in memory
    monotonic: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._pointer: tuple[str | None, float] = (None, float("-inf"))
        self._popular: OrderedDict[str, PopularLists] = OrderedDict()
        self._lists: OrderedDict[tuple[str, str], ItemLists] = OrderedDict()
        self._categories: OrderedDict[tuple[str, str], list[tuple[str, float]]] = OrderedDict()

    # -- use cases ------------------------------------------------------------------------------------------------
    def recommend(
        self,
        customer_id: str,
        *,
        slot: Slot = "for_you",
        item: str | None = None,
        k: int = 10,
        record: CustomerRecord | None = None,
    ) -> Recommendations:
        if not 1 <= k <= MAX_K:
            raise InvalidInput(f"k must be between 1 and {MAX_K}")
        if slot != "for_you" and not item:
            raise InvalidInput(f"the {slot} slot needs the item it is about (item=...)")
        record = record or self.store.load_customer(customer_id)
        projection = record.projection or CustomerProjection(customer_id=customer_id)
        version = self.active_version()
        pool = min(CANDIDATES, max(4 * k, 40))  # headroom for the business rules, within one batch read
        seen: set[str] = set()
        if slot == "for_you":
            candidates, strategy, note, seen = self._for_you(version, projection, record)
            about: str | None = None
            candidates = [c for c in candidates if c not in seen][:pool]
            details = self.store.items(candidates)
        else:
            assert item is not None
            about = item
            details = self.store.items([item])
            candidates, strategy, note = self._about_item(version, slot, item, details.get(item))
            candidates = [c for c in candidates if c != item][:pool]
            details |= self.store.items(candidates)
        chosen = select_items(
            candidates,
            k=k,
            catalogue=details,
            country=projection.country,
            bought=projection.bought,
            rules=self.rules,
            exclude=seen | ({about} if about else set()),
        )
        if not candidates:
            strategy = "none"
        return Recommendations(
            customer_id=customer_id,
            slot=slot,
            item_id=about,
            model_version=version,
            strategy=strategy,
            note=note,
            items=[_recommended(i, details.get(i)) for i in chosen],
        )

    def upsert_items(self, items: Sequence[CatalogueItem]) -> int:
        self.store.put_items(items)
        return len(items)

    # -- slots ----------------------------------------------------------------------------------------------------
    def _for_you(
        self, version: str | None, projection: CustomerProjection, record: CustomerRecord
    ) -> tuple[list[str], Strategy, str, set[str]]:
        popular = [i for i, _ in self._popular_lists(version).popular]
        if version is None:
            return popular, "none", "no recommender model has been trained yet", set()
        if not projection.profiling_allowed:
            return popular, "popular", "the customer objected to profiling: popular items only", set()
        weights = projection.history_weights(self.clock.now(), self.history, limit=HISTORY_ITEMS)
        personal: list[str] = []
        if weights:
            lists = self.item_lists(version, list(weights))
            model = RecommenderModel(algorithm="", neighbours={i: lists[i].neighbours for i in weights})
            personal = recommend_for_user(model, weights, k=CANDIDATES)  # no popular list: no fill here
        precomputed = list(record.for_you)
        candidates = list(dict.fromkeys([*personal, *precomputed, *popular]))
        if personal or precomputed:
            note = "from the customer's recent items" if personal else "from the customer's history"
            return candidates, "personal", note, set(weights)
        note = "no history yet: popular items" if not weights else "the recent items have no neighbours: popular items"
        return candidates, "popular", note, set(weights)

    def _about_item(
        self, version: str | None, slot: Slot, item: str, details: CatalogueItem | None
    ) -> tuple[list[str], Strategy, str]:
        if version is None:
            return [], "none", "no recommender model has been trained yet"
        lists = self.item_lists(version, [item])[item]
        if slot == "bought_together":
            together = [i for i, _ in lists.together]
            return together, "item", "bought together with the item" if together else "no basket links the item yet"
        category = details.category if details is not None else None
        popular = self._popular_lists(version)
        model = RecommenderModel(
            algorithm="",
            neighbours={item: lists.neighbours},
            popular=popular.popular,
            trending=popular.trending,
            popular_by_category={category: self._category_popular(version, category)} if category else {},
        )
        similar = similar_items(model, item, k=CANDIDATES, category=category)
        if lists.neighbours:
            return similar, "item", "items similar to the item"
        return similar, "popular", "a new item: trending and popular items" + (" of its category" if category else "")

    # -- the model, cached: a version's lists never change --------------------------------------------------------
    def active_version(self) -> str | None:
        version, read_at = self._pointer
        now = self.monotonic()
        if now - read_at > self.pointer_ttl_seconds:
            version = self.store.active_model()
            self._pointer = (version, now)
        return version

    def item_lists(self, version: str, items: Sequence[str]) -> dict[str, ItemLists]:
        """The lists of `items` from the warm cache (least recently used out first), the rest in one read.

        Hits are marked used before the read's lists go in, so what the read evicts are other items; the
        lists returned are this request's whatever the cache keeps.
        """
        found: dict[str, ItemLists] = {}
        for i in items:
            key = (version, i)
            if key in self._lists:
                self._lists.move_to_end(key)
                found[i] = self._lists[key]
        missing = [i for i in dict.fromkeys(items) if i not in found]
        if missing:
            read = self.store.item_lists(version, missing)
            for i in missing:
                found[i] = read.get(i, _NO_LISTS)
                _remember(self._lists, (version, i), found[i], self.cache_size)
        return found

    def _popular_lists(self, version: str | None) -> PopularLists:
        if version is None:
            return _NO_POPULAR
        if version not in self._popular:
            _remember(self._popular, version, self.store.popular(version), 4)
        return self._popular[version]

    def _category_popular(self, version: str, category: str) -> list[tuple[str, float]]:
        key = (version, category)
        if key not in self._categories:
            _remember(self._categories, key, self.store.category_popular(version, category), 1_000)
        return self._categories[key]


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any, size: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)


def _recommended(item_id: str, details: CatalogueItem | None) -> RecommendedItem:
    if details is None:
        return RecommendedItem(item_id=item_id)
    return RecommendedItem(
        item_id=item_id,
        name=details.name,
        category=details.category,
        url=details.url,
        image_url=details.image_url,
        price=details.price,
        currency=details.currency,
    )
