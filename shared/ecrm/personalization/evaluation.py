"""Offline evaluation of recommenders: holdout splits and ranking metrics.

The protocol a data scientist can trust: hold out interactions (at random by interaction with a
seed, or by time), let every algorithm rank every item the user does not already have in
training, and compare the top K with what was held out. Metrics, per user then averaged over
users with at least one held-out item:

- precision@K = hits / K;  recall@K = hits / |held out|;  hit rate = 1 if any hit
- NDCG@K = DCG / IDCG with binary relevance, DCG = sum over hit positions i (1-based) of 1/log2(i+1)
- MAP@K = (sum over hit positions i of precision@i) / min(|held out|, K)
- coverage = distinct items recommended to anyone / items in the catalogue

Pure Python on purpose: the harness is also the reference the optimised paths are checked against.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Interaction = tuple[str, str, float]  # (user, item, timestamp or order)
Recommender = Callable[[str, int, set[str]], list[str]]  # (user, k, items to exclude) -> ranked items


@dataclass(frozen=True)
class Split:
    train: list[Interaction]
    test: dict[str, set[str]]

    @property
    def train_items_by_user(self) -> dict[str, set[str]]:
        seen: dict[str, set[str]] = defaultdict(set)
        for user, item, _ in self.train:
            seen[user].add(item)
        return dict(seen)


def holdout(
    interactions: Iterable[Interaction],
    *,
    method: Literal["random", "time"] = "random",
    test_fraction: float = 0.2,
    seed: int = 42,
) -> Split:
    """Hold out `test_fraction` of the (de-duplicated) user-item pairs: at random, or the latest ones."""
    if not 0 < test_fraction < 1:
        raise ValueError("test_fraction must be between 0 and 1")
    latest: dict[tuple[str, str], float] = {}
    for user, item, at in interactions:
        latest[(user, item)] = max(at, latest.get((user, item), at))
    pairs = sorted(latest.items())
    if method == "random":
        random.Random(seed).shuffle(pairs)  # noqa: S311 - a reproducible split, not security
        cut = len(pairs) - round(len(pairs) * test_fraction)
        train_pairs, test_pairs = pairs[:cut], pairs[cut:]
    else:
        ordered = sorted(pairs, key=lambda p: (p[1], p[0]))
        cut = len(ordered) - round(len(ordered) * test_fraction)
        train_pairs, test_pairs = ordered[:cut], ordered[cut:]
    train = [(u, i, at) for (u, i), at in train_pairs]
    known_users = {u for u, _, _ in train}
    test: dict[str, set[str]] = defaultdict(set)
    for (user, item), _ in test_pairs:
        if user in known_users:  # a user with nothing in training cannot be evaluated fairly
            test[user].add(item)
    return Split(train, dict(test))


@dataclass(frozen=True)
class Metrics:
    precision: float
    recall: float
    ndcg: float
    map: float
    hit_rate: float
    coverage: float
    users: int

    def as_dict(self) -> dict[str, float]:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "ndcg": self.ndcg,
            "map": self.map,
            "hit_rate": self.hit_rate,
            "coverage": self.coverage,
        }


def user_metrics(ranked: Sequence[str], relevant: set[str], k: int) -> tuple[float, float, float, float, float]:
    """(precision, recall, ndcg, average precision, hit) of one user's top `k`."""
    top = list(ranked[:k])
    hits = [i for i, item in enumerate(top, start=1) if item in relevant]
    precision = len(hits) / k
    recall = len(hits) / len(relevant)
    dcg = sum(1 / math.log2(i + 1) for i in hits)
    idcg = sum(1 / math.log2(i + 1) for i in range(1, min(len(relevant), k) + 1))
    average_precision = sum((n + 1) / i for n, i in enumerate(hits)) / min(len(relevant), k)
    return precision, recall, dcg / idcg, average_precision, 1.0 if hits else 0.0


def evaluate(recommend: Recommender, split: Split, *, k: int = 10, catalogue: set[str] | None = None) -> Metrics:
    """Rank for every test user, excluding what they have in training, and average the metrics."""
    seen = split.train_items_by_user
    items = (
        catalogue
        if catalogue is not None
        else {i for _, i, _ in split.train} | {i for rel in split.test.values() for i in rel}
    )
    totals = [0.0] * 5
    recommended: set[str] = set()
    for user, relevant in sorted(split.test.items()):
        exclude = seen.get(user, set())
        ranked = [i for i in recommend(user, k, exclude) if i not in exclude][:k]
        recommended.update(ranked)
        for n, value in enumerate(user_metrics(ranked, relevant, k)):
            totals[n] += value
    users = len(split.test)
    if users == 0:
        raise ValueError("no user has held-out items with something in training")
    precision, recall, ndcg, map_, hit_rate = (t / users for t in totals)
    return Metrics(precision, recall, ndcg, map_, hit_rate, len(recommended) / len(items) if items else 0.0, users)


def popularity(train: Iterable[Interaction]) -> Recommender:
    """The baseline every algorithm must beat: the most-interacted items, the same for everyone."""
    counts = Counter(item for _, item, _ in train)
    ranking = [item for item, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]

    def recommend(user: str, k: int, exclude: set[str]) -> list[str]:
        return [i for i in ranking if i not in exclude][:k]

    return recommend


def compare(algorithms: Mapping[str, Recommender], split: Split, *, k: int = 10) -> dict[str, dict[str, float]]:
    return {name: evaluate(algorithm, split, k=k).as_dict() for name, algorithm in algorithms.items()}
