"""Recommender training at Lambda scale, the request path's latency, and quality on public data.

Workload (generated, seed 7): ECRM_BENCH_REC_USERS customers (default 1,000,000) with
ECRM_BENCH_REC_INTERACTIONS interactions (default 10,000,000) over ECRM_BENCH_REC_ITEMS items (default
50,000, in 200 categories). Activity per customer is log-normal; each customer has a favourite category
that draws 70% of their interactions, the rest follow a global Zipf popularity; every interaction has a
timestamp within a year and one of up to four baskets of its customer. Ids are strings ("u0000042",
"p00042"), as the job reads them from an export. Smaller through the env vars for quick runs.

Measured, each in a fresh process (so peak RSS is that step's alone, the loaded input included):
- Reference: encoding the ids (`np.unique`) and building the sparse customer x item matrix, the floor
  of any training on this data.
- `train` with the defaults (50k items is past `ease_max_items`, so rp3beta), bought-together over
  baskets, trending, popular per category: everything the engine stores.
- Serialising the model (`to_dict` + `json.dumps`), what storing it costs.
Peak RSS is set beside Lambda's 10 GB, the time beside its 15 minutes.

Then `recommend_for_user` per call over 2,000 customers' real histories from the workload (p50/p99 in
microseconds), beside the reference of the same dict reads alone (fetching each history item's list).

Quality: `ecrm personalization evaluate` on MovieLens 100K under the published protocol, beside
popularity and the published SAR figures; the data comes from the recbole wheel on PyPI at run time
(the test is skipped when the registry cannot be reached).

Nothing asserts on time; the quality test asserts the default's margin over popularity.
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.bench.harness import Measurement, measure, report

REPO = Path(__file__).resolve().parents[2]
USERS = int(os.environ.get("ECRM_BENCH_REC_USERS", "1000000"))
INTERACTIONS = int(os.environ.get("ECRM_BENCH_REC_INTERACTIONS", "10000000"))
ITEMS = int(os.environ.get("ECRM_BENCH_REC_ITEMS", "50000"))
CATEGORIES = 200
SEED = 7
LAMBDA_MEMORY_MB = 10_240
LAMBDA_SECONDS = 900
LATENCY_CALLS = 2_000


def generate(directory: Path) -> Path:
    """The workload as .npy columns (string ids, float timestamps, int basket codes) and item categories."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    activity = rng.lognormal(0.0, 1.0, USERS)
    user_codes = np.searchsorted(np.cumsum(activity / activity.sum()), rng.random(INTERACTIONS), side="right")
    user_codes = np.minimum(user_codes, USERS - 1)
    item_category = rng.integers(0, CATEGORIES, ITEMS)
    popularity = 1.0 / (np.arange(ITEMS) + 10.0)
    global_items = np.searchsorted(np.cumsum(popularity / popularity.sum()), rng.random(INTERACTIONS), side="right")
    members = [np.flatnonzero(item_category == c) for c in range(CATEGORIES)]
    taste = rng.integers(0, CATEGORIES, USERS)[user_codes]
    own = rng.random(INTERACTIONS) < 0.7
    within = np.minimum((rng.pareto(1.2, INTERACTIONS) * 3).astype(np.int64), 10**9)
    sizes = np.array([len(m) for m in members])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    flat = np.concatenate(members)
    from_taste = flat[offsets[taste] + within % sizes[taste]]
    item_codes = np.where(own, from_taste, np.minimum(global_items, ITEMS - 1))
    user_labels = np.array([f"u{n:07d}" for n in range(USERS)])
    item_labels = np.array([f"p{n:05d}" for n in range(ITEMS)])
    np.save(directory / "users.npy", user_labels[user_codes])
    np.save(directory / "items.npy", item_labels[item_codes])
    np.save(directory / "timestamps.npy", 1_700_000_000 + rng.random(INTERACTIONS) * 365 * 86_400)
    np.save(directory / "baskets.npy", user_codes.astype(np.int64) * 4 + rng.integers(0, 4, INTERACTIONS))
    categories = {str(item_labels[i]): f"c{item_category[i]:03d}" for i in range(ITEMS)}
    (directory / "categories.json").write_text(json.dumps(categories))
    return directory


def child(step: str, directory: str) -> None:
    """One step in a fresh process; prints its figures as JSON (peak RSS from getrusage, in MB)."""
    import numpy as np
    from ecrm.personalization import recommenders as rec

    folder = Path(directory)
    users, items = np.load(folder / "users.npy"), np.load(folder / "items.npy")
    timestamps, baskets = np.load(folder / "timestamps.npy"), np.load(folder / "baskets.npy")
    categories = json.loads((folder / "categories.json").read_text())
    figures: dict[str, Any] = {"loaded_mb": peak_mb()}
    started = time.perf_counter()
    if step == "matrix":
        _, item_codes = np.unique(items, return_inverse=True)
        _, user_codes = np.unique(users, return_inverse=True)
        matrix = rec.interaction_matrix(user_codes, item_codes, int(item_codes.max()) + 1)
        figures |= {"seconds": time.perf_counter() - started, "pairs": int(matrix.nnz)}
    else:
        model = rec.train(users, items, timestamps=timestamps, baskets=baskets, item_categories=categories)
        figures |= {"seconds": time.perf_counter() - started, "stats": model.stats, "algorithm": model.algorithm}
        figures["neighbour_entries"] = sum(len(n) for n in model.neighbours.values())
        figures["together_entries"] = sum(len(n) for n in model.bought_together.values())
        figures["train_peak_mb"] = peak_mb()
        started = time.perf_counter()
        text = json.dumps(model.to_dict())
        figures |= {"serialise_seconds": time.perf_counter() - started, "json_mb": len(text) / 2**20}
        (folder / "model.json").write_text(text)
    figures["peak_mb"] = peak_mb()
    print(json.dumps(figures))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def run_child(step: str, directory: Path) -> dict[str, Any]:
    code = f"from tests.bench.test_recommender_training import child; child({step!r}, {str(directory)!r})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(3600)
def test_training_at_lambda_scale_and_request_latency(tmp_path: Path) -> None:
    started = time.perf_counter()
    generate(tmp_path)
    elapsed = time.perf_counter() - started
    print(f"\nworkload: {USERS} users x {INTERACTIONS} interactions x {ITEMS} items, generated in {elapsed:.0f}s")
    steps: dict[str, dict[str, Any]] = {}

    def step(name: str) -> float:
        steps[name] = run_child(name, tmp_path)
        return float(steps[name]["seconds"])

    reference = measure("ids + sparse matrix (reference)", lambda: step("matrix"), repeat=1, unit="s")
    training = measure("train (all lists)", lambda: step("train"), repeat=1, unit="s")
    serialise = Measurement("to_dict + json.dumps", [steps["train"]["serialise_seconds"]], unit="s")
    report("Recommender training, one process each (seconds)", [training, serialise], reference)
    trained = steps["train"]
    print(
        f"  peak RSS: reference {steps['matrix']['peak_mb']:.0f} MB; train {trained['train_peak_mb']:.0f} MB, "
        f"with serialising {trained['peak_mb']:.0f} MB (input loaded: {trained['loaded_mb']:.0f} MB); "
        f"Lambda {LAMBDA_MEMORY_MB} MB -> {trained['peak_mb'] / LAMBDA_MEMORY_MB:.0%} used"
    )
    print(
        f"  train {trained['seconds']:.0f}s of Lambda's {LAMBDA_SECONDS}s; {trained['algorithm']}; {trained['stats']}; "
        f"neighbour entries {trained['neighbour_entries']}, bought-together {trained['together_entries']}; "
        f"model JSON {trained['json_mb']:.0f} MB"
    )
    latency(tmp_path)


def latency(directory: Path) -> None:
    """recommend_for_user per call over real histories, beside the same dict reads alone."""
    import numpy as np
    from ecrm.personalization.recommenders import RecommenderModel, recommend_for_user

    model = RecommenderModel.from_dict(json.loads((directory / "model.json").read_text()))
    users, items = np.load(directory / "users.npy"), np.load(directory / "items.npy")
    chosen = np.unique(users[np.random.default_rng(SEED).integers(0, len(users), LATENCY_CALLS)])
    mask = np.isin(users, chosen)
    histories: dict[str, list[str]] = {}
    for user, item in zip(users[mask].tolist(), items[mask].tolist(), strict=True):
        histories.setdefault(user, []).append(item)
    calls = list(histories.values())
    random.Random(SEED).shuffle(calls)
    neighbours = model.neighbours

    def timed(call: Any) -> Measurement:
        samples = []
        for history in calls:
            begun = time.perf_counter_ns()
            call(history)
            samples.append((time.perf_counter_ns() - begun) / 1000)
        return Measurement("", samples, unit="us")

    def reads(history: list[str]) -> None:
        for item in history:
            neighbours.get(item, ())

    for history in calls[:200]:  # warm up
        recommend_for_user(model, history, 10)
    reference = timed(reads)
    recommend = timed(lambda history: recommend_for_user(model, history, 10))
    reference = Measurement("dict reads of the history's lists (reference)", reference.samples, "us")
    recommend = Measurement("recommend_for_user, k=10", recommend.samples, "us")
    report(f"Request path per call ({len(calls)} customers' histories; microseconds)", [recommend], reference)
    sizes = sorted(len(h) for h in calls)
    for row in (reference, recommend):
        print(f"  {row.name}: p50 {row.median:.1f} us, p99 {row.p99:.1f} us")
    print(f"  history length: median {sizes[len(sizes) // 2]}, p99 {sizes[int(len(sizes) * 0.99)]}")


def test_quality_on_movielens_100k_beside_popularity_and_published(tmp_path: Path) -> None:
    from ecrm_ops.cli import main
    from ecrm_ops.personalization.published import fetch_movielens_100k

    try:
        data = fetch_movielens_100k(tmp_path)
    except (subprocess.CalledProcessError, OSError) as failed:
        pytest.skip(f"MovieLens 100K not reachable from the package registry: {failed}")
    args = ["personalization", "evaluate", "--interactions", str(data), "--user-col", "user_id"]
    args += [
        "--item-col",
        "item_id",
        "--timestamp-col",
        "timestamp",
        "--split",
        "stratified",
        "--test-fraction",
        "0.25",
    ]
    table = CliRunner().invoke(main, args)
    assert table.exit_code == 0, table.output
    print("\n" + table.output)
    result = CliRunner().invoke(main, [*args, "--json"])
    figures = json.loads(result.output)
    published = figures["published"]["results"]["SAR (Jaccard, time decay)"]
    for name in ("ease", "rp3beta"):
        assert figures[name]["ndcg"] > 1.5 * figures["popularity"]["ndcg"]
        assert figures[name]["ndcg"] > published["ndcg"]
        assert figures[name]["precision"] > published["precision"]
