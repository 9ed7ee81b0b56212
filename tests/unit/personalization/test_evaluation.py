"""The evaluation harness against values computed by hand on a tiny data set."""

from __future__ import annotations

import math

import pytest
from ecrm.personalization.evaluation import Split, evaluate, holdout, popularity, user_metrics


def test_metrics_of_one_ranking_computed_by_hand() -> None:
    # Given a top-3 of [a, b, c] and relevant items {a, c, z}
    precision, recall, ndcg, average_precision, hit = user_metrics(["a", "b", "c"], {"a", "c", "z"}, 3)
    # Then: hits at positions 1 and 3
    assert precision == pytest.approx(2 / 3)
    assert recall == pytest.approx(2 / 3)
    dcg = 1 / math.log2(2) + 1 / math.log2(4)  # 1 + 0.5
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg == pytest.approx(dcg / idcg)  # 1.5 / 2.1309 = 0.7039
    assert ndcg == pytest.approx(0.70391, abs=1e-5)
    assert average_precision == pytest.approx((1 / 1 + 2 / 3) / 3)  # 0.5556
    assert hit == 1.0


def test_no_hit_scores_zero_everywhere() -> None:
    assert user_metrics(["x", "y"], {"a"}, 2) == (0.0, 0.0, 0.0, 0.0, 0.0)


def test_evaluate_averages_over_users_and_excludes_training_items() -> None:
    # Given two users: u1 bought a (train) and holds out b; u2 bought b (train) and holds out c
    split = Split(train=[("u1", "a", 1), ("u2", "b", 1), ("u3", "b", 1)], test={"u1": {"b"}, "u2": {"c"}})

    def recommend(user: str, k: int, exclude: set[str]) -> list[str]:
        return ["a", "b", "c"]  # the harness must drop what the user already has

    metrics = evaluate(recommend, split, k=2, catalogue={"a", "b", "c", "d"})
    # u1 sees [b, c] -> hit at 1; u2 sees [a, c] -> hit at 2
    assert metrics.precision == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert metrics.recall == pytest.approx(1.0)
    assert metrics.hit_rate == pytest.approx(1.0)
    assert metrics.ndcg == pytest.approx((1.0 + 1 / math.log2(3)) / 2)
    assert metrics.map == pytest.approx((1.0 + 0.5) / 2)
    assert metrics.coverage == pytest.approx(3 / 4)  # a, b, c recommended out of four items


def test_popularity_ranks_by_count_and_skips_owned_items() -> None:
    recommend = popularity([("u1", "a", 1), ("u2", "a", 1), ("u3", "b", 1), ("u1", "c", 2), ("u2", "c", 3)])
    assert recommend("u9", 3, set()) == ["a", "c", "b"]
    assert recommend("u1", 2, {"a"}) == ["c", "b"]


def test_random_holdout_is_reproducible_and_keeps_every_pair_once() -> None:
    interactions = [(f"u{u}", f"i{i}", float(u * 10 + i)) for u in range(20) for i in range(5)]
    first = holdout(interactions, test_fraction=0.2, seed=7)
    again = holdout(interactions, test_fraction=0.2, seed=7)
    assert first == again
    held = sum(len(items) for items in first.test.values())
    assert len(first.train) + held == 100
    assert held == 20
    train_pairs = {(u, i) for u, i, _ in first.train}
    assert not any((u, i) in train_pairs for u, items in first.test.items() for i in items)


def test_time_holdout_holds_out_the_latest_interactions() -> None:
    interactions = [("u1", "a", 1), ("u1", "b", 2), ("u2", "a", 3), ("u2", "c", 4), ("u1", "d", 5)]
    split = holdout(interactions, method="time", test_fraction=0.4)
    assert split.test == {"u2": {"c"}, "u1": {"d"}}
    assert {(u, i) for u, i, _ in split.train} == {("u1", "a"), ("u1", "b"), ("u2", "a")}


def test_duplicates_count_once_and_bad_fractions_are_refused() -> None:
    split = holdout([("u", "a", 1), ("u", "a", 2), ("u", "b", 3), ("v", "a", 1)], test_fraction=0.34, seed=1)
    assert len(split.train) + sum(len(v) for v in split.test.values()) == 3
    with pytest.raises(ValueError, match="test_fraction"):
        holdout([("u", "a", 1)], test_fraction=1.5)
