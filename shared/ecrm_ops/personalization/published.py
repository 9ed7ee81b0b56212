"""Published figures of classical item-based recommenders on public data, and how to reproduce their protocol.

`ecrm personalization evaluate` prints these beside our own figures when it recognises the data set (or
with `--compare-published NAME`), so a reader sees at once whether the default algorithm stands level
with them. Each entry says where the numbers come from, the protocol that produced them, and where ours
differs. `stratified_holdout` reproduces the published split exactly (numpy's RandomState permutation per
user, as pandas' `DataFrame.sample` draws it), and `published_map` the published MAP definition.

The data set itself is not in the repository: MovieLens' licence does not allow redistribution.
`fetch_movielens_100k` takes it from a package registry (the `recbole` wheel on PyPI ships ML-100K as
`recbole/dataset_example/ml-100k/ml-100k.inter`) into a directory of the caller's, at run time.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ecrm.personalization.evaluation import Interaction, Split


@dataclass(frozen=True)
class PublishedResult:
    algorithm: str
    precision: float
    recall: float
    ndcg: float
    map: float  # in the source's own definition: see PublishedBenchmark.map_definition


@dataclass(frozen=True)
class PublishedBenchmark:
    name: str
    data_set: str
    fingerprint: tuple[int, int, int]  # (rows, distinct users, distinct items) of the raw file
    source: str
    protocol: str
    map_definition: str
    reproduce: Mapping[str, object]  # our evaluate options that follow the published protocol
    differences: tuple[str, ...]
    results: tuple[PublishedResult, ...]


MOVIELENS_100K = PublishedBenchmark(
    name="movielens-100k",
    data_set="MovieLens 100K (GroupLens): 100,000 ratings 1-5 by 943 users of 1,682 movies, 1997-1998",
    fingerprint=(100_000, 943, 1_682),
    source=(
        "Microsoft Recommenders (recommenders-team/recommenders), README 'Algorithm Comparison' table, "
        "SAR row; the same figures are the output of examples/00_quick_start/sar_movielens.ipynb"
    ),
    protocol=(
        "all 100,000 ratings; python_stratified_split(ratio=0.75, seed=42): 75/25 of each user's ratings "
        "at random; SAR with Jaccard similarity, 30-day time decay, ratings as affinity weights; top 10 with "
        "the user's training items removed; every held-out rating is relevant; metrics averaged over the 943 users"
    ),
    map_definition=(
        "their `map`: sum of precision at each hit / number of held-out items (ours: / min(held-out, K)); "
        "column map* recomputes ours their way"
    ),
    reproduce={"split": "stratified", "test_fraction": 0.25, "seed": 42, "k": 10},
    differences=(
        "ours is trained on implicit feedback: the rating only filters (--min-rating), it is not a weight",
        "tied scores are ordered by our own deterministic rule, not by pandas' sort as in theirs",
    ),
    results=(PublishedResult("SAR (Jaccard, time decay)", 0.330753, 0.176385, 0.382461, 0.110591),),
)

PUBLISHED: dict[str, PublishedBenchmark] = {MOVIELENS_100K.name: MOVIELENS_100K}

RECBOLE_WHEEL = "recbole==1.2.1"
RECBOLE_ML100K = "recbole/dataset_example/ml-100k/ml-100k.inter"
ML100K_COLUMNS = ("user_id", "item_id", "rating", "timestamp")


def recognise(rows: int, users: int, items: int) -> PublishedBenchmark | None:
    """The benchmark whose raw file has exactly this many rows, users and items, if any."""
    return next((b for b in PUBLISHED.values() if b.fingerprint == (rows, users, items)), None)


def stratified_holdout(interactions: Iterable[Interaction], *, test_fraction: float = 0.25, seed: int = 42) -> Split:
    """Hold out `test_fraction` of each user's items, as Recommenders' `python_stratified_split` does.

    Per user, in file order, the pairs are shuffled by `RandomState(seed).permutation` (what pandas'
    `sample(frac=1, random_state=seed)` draws) and the first round(n * (1 - test_fraction)) train. On
    MovieLens 100K with 0.25 this gives their 74,992 / 25,008 ratings.
    """
    import numpy as np

    if not 0 < test_fraction < 1:
        raise ValueError("test_fraction must be between 0 and 1")
    pairs: dict[str, dict[str, float]] = defaultdict(dict)  # insertion order is file order
    for user, item, at in interactions:
        seen = pairs[user]
        seen[item] = max(at, seen.get(item, at))
    train: list[Interaction] = []
    test: dict[str, set[str]] = {}
    for user, items in pairs.items():
        ordered = list(items.items())
        permutation = np.random.RandomState(seed).permutation(len(ordered)).tolist()
        cut = round((1 - test_fraction) * len(ordered))
        train.extend((user, ordered[p][0], ordered[p][1]) for p in permutation[:cut])
        if cut and cut < len(ordered):
            test[user] = {ordered[p][0] for p in permutation[cut:]}
    return Split(train, test)


def published_map(rankings: Mapping[str, Sequence[str]], test: Mapping[str, set[str]], k: int) -> float:
    """MAP as Recommenders' `map` computes it: sum of precision at each hit / number of held-out items."""
    total = 0.0
    for user, relevant in test.items():
        hits = [i for i, item in enumerate(rankings.get(user, [])[:k], start=1) if item in relevant]
        total += sum((n + 1) / i for n, i in enumerate(hits)) / len(relevant)
    return total / len(test) if test else 0.0


def fetch_movielens_100k(directory: Path) -> Path:
    """MovieLens 100K as a CSV (user_id,item_id,rating,timestamp), taken from the recbole wheel on PyPI."""
    target = directory / "ml-100k.csv"
    if target.exists():
        return target
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(  # noqa: S603 - a fixed pip command, no user input
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", download, RECBOLE_WHEEL],
            check=True,
            capture_output=True,
        )
        wheel = next(Path(download).glob("recbole-*.whl"))
        with zipfile.ZipFile(wheel) as archive, archive.open(RECBOLE_ML100K) as raw:
            lines = raw.read().decode("utf-8").splitlines()
    rows = [line.split("\t") for line in lines[1:] if line]  # header: user_id:token item_id:token ...
    directory.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(ML100K_COLUMNS)
        writer.writerows(rows)
    return target
