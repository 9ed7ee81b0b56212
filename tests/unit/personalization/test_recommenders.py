"""Recommenders on data small enough to check by hand: neighbour scores, exclusions, fallbacks, JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from ecrm.personalization.recommenders import (
    RecommenderModel,
    TrainingConfig,
    bought_together,
    interaction_matrix,
    item_neighbours,
    popular_items,
    ranked_by_recency,
    recommend_for_user,
    significant,
    similar_items,
    train,
    trending_items,
)

# u1 has a, b; u2 has a, b, c; u3 has c, d. Counts: a 2, b 2, c 2, d 1. Co-occurrence: ab 2, ac 1, bc 1, cd 1.
USERS = ["u1", "u1", "u2", "u2", "u2", "u3", "u3"]
ITEMS = ["a", "b", "a", "b", "c", "c", "d"]


def model_of(algorithm: str, **config: object) -> RecommenderModel:
    return train(USERS, ITEMS, config=TrainingConfig(algorithm=algorithm, **config))  # type: ignore[arg-type]


def test_cosine_neighbours_computed_by_hand() -> None:
    model = model_of("cosine")
    # cos(a, b) = 2 / sqrt(2 * 2) = 1; cos(a, c) = 1 / 2; cos(c, d) = 1 / sqrt(2 * 1)
    assert model.neighbours["a"] == [("b", 1.0), ("c", 0.5)]
    assert model.neighbours["c"] == [("d", pytest.approx(1 / math.sqrt(2), rel=1e-5)), ("a", 0.5), ("b", 0.5)]
    assert model.neighbours["d"] == [("c", pytest.approx(1 / math.sqrt(2), rel=1e-5))]


def test_jaccard_neighbours_computed_by_hand() -> None:
    model = model_of("jaccard")
    # jaccard(a, b) = 2 / (2 + 2 - 2) = 1; (a, c) = 1 / (2 + 2 - 1); (c, d) = 1 / (2 + 1 - 1)
    assert model.neighbours["a"] == [("b", 1.0), ("c", pytest.approx(1 / 3, rel=1e-5))]
    assert model.neighbours["d"] == [("c", 0.5)]


def test_rp3beta_is_the_two_step_walk_divided_by_target_popularity() -> None:
    model = model_of("rp3beta", rp3_alpha=1.0, rp3_beta=0.5)
    # a -> its users (1/2 each) -> their items (u1: 1/2, u2: 1/3); to b: (1/2 * 1/2 + 1/2 * 1/3) / 2^0.5
    walk_a_b = (0.5 * 0.5 + 0.5 * (1 / 3)) / math.sqrt(2)
    walk_a_c = (0.5 * (1 / 3)) / math.sqrt(2)
    expected = {"b": pytest.approx(walk_a_b, rel=1e-5), "c": pytest.approx(walk_a_c, rel=1e-5)}
    assert dict(model.neighbours["a"]) == expected
    # d -> u3 (1) -> c (1/2), divided by 2^0.5
    assert model.neighbours["d"] == [("c", pytest.approx(0.5 / math.sqrt(2), rel=1e-5))]


def test_ease_matches_the_closed_form_and_keeps_negative_weights() -> None:
    rng = np.random.default_rng(7)
    dense = (rng.random((60, 12)) < 0.3).astype(np.float32)
    rows, cols = np.nonzero(dense)
    config = TrainingConfig(algorithm="ease", ease_lambda=5.0, neighbours=11, chunk_cells=12 * 5)  # blocks of 5 rows
    indptr, picked, values = item_neighbours(interaction_matrix(rows, cols, 12), "ease", config)
    # Reference: B = I - P diagMat(1 / diag(P)), P = (X'X + lambda I)^-1, diagonal zero
    p = np.linalg.inv(dense.T.astype(np.float64) @ dense + 5.0 * np.eye(12))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    for item in range(12):
        span = slice(indptr[item], indptr[item + 1])
        got = dict(zip(picked[span].tolist(), values[span], strict=True))
        expected = {j: b[item, j] for j in range(12) if j != item and b[item, j] != 0}
        assert got.keys() == expected.keys()
        assert [got[j] for j in expected] == pytest.approx(list(expected.values()), rel=1e-9)
    assert (values < 0).any()


def test_blocks_of_rows_give_the_same_lists_as_one_block() -> None:
    rng = np.random.default_rng(3)
    rows, cols = rng.integers(0, 200, 2000), rng.integers(0, 40, 2000)
    matrix = interaction_matrix(rows, cols, 40)
    for algorithm in ("rp3beta", "cosine", "jaccard"):
        whole = item_neighbours(matrix, algorithm, TrainingConfig(neighbours=7))
        chunked = item_neighbours(matrix, algorithm, TrainingConfig(neighbours=7, chunk_cells=40 * 3))
        for one, other in zip(whole, chunked, strict=True):
            np.testing.assert_allclose(one, other, rtol=1e-6)


def test_auto_chooses_ease_only_when_the_catalogue_fits() -> None:
    assert model_of("auto").algorithm == "ease"
    assert model_of("auto", ease_max_items=3).algorithm == "rp3beta"


def test_for_you_sums_neighbours_over_the_history_and_never_returns_it() -> None:
    model = model_of("cosine")
    # From a: b 1.0, c 0.5; the fourth slot is filled from popular (a, b, c, d by count then id): d
    assert recommend_for_user(model, ["a"], 3) == ["b", "c", "d"]
    assert recommend_for_user(model, ["a"], 3, exclude={"b"}) == ["c", "d"]
    # Weighted history: from c (x1) d .707, b .5; from a (x2) b 2.0 -> b 2.5, d .707
    assert recommend_for_user(model, {"c": 1.0, "a": 2.0}, 2) == ["b", "d"]


def test_new_customer_and_unknown_items_fall_back_to_popular_then_trending() -> None:
    model = model_of("cosine")
    assert recommend_for_user(model, [], 2) == ["a", "b"]
    assert recommend_for_user(model, ["never-seen"], 2) == ["a", "b"]
    assert similar_items(model, "never-seen", 2) == ["a", "b"]
    assert popular_items(model, 2, exclude={"a"}) == ["b", "c"]


def test_similar_items_is_the_neighbour_list_then_popular() -> None:
    model = model_of("cosine")
    assert similar_items(model, "a", 2) == ["b", "c"]
    assert similar_items(model, "a", 3) == ["b", "c", "d"]


def test_bought_together_uses_baskets_with_a_minimum_support_and_no_fill() -> None:
    # Orders: o1 a b, o2 a b, o3 a c (one order of a with c is not evidence)
    model = train(
        ["u1", "u1", "u2", "u2", "u1", "u1"],
        ["a", "b", "a", "b", "a", "c"],
        baskets=["o1", "o1", "o2", "o2", "o3", "o3"],
        config=TrainingConfig(algorithm="cosine"),
    )
    assert model.bought_together["a"] == [("b", pytest.approx(2 / math.sqrt(3 * 2), rel=1e-5))]
    assert bought_together(model, "a", 5) == ["b"]
    assert bought_together(model, "c", 5) == []
    assert bought_together(model, "a", 5, exclude={"b"}) == []


def test_trending_weighs_recent_interactions_and_popular_counts_customers() -> None:
    # y twice at t=8, x once at t=10; half-life 1: x 1.0, y 2 * 2^-2 = 0.5
    users, items, times = ["u1", "u2", "u3"], ["y", "y", "x"], [8.0, 8.0, 10.0]
    model = train(users, items, timestamps=times, config=TrainingConfig(algorithm="cosine", trending_half_life=1.0))
    assert model.popular == [("y", 2.0), ("x", 1.0)]
    assert model.trending == [("x", 1.0), ("y", 0.5)]
    assert ranked_by_recency(items, times, half_life=1.0) == model.trending
    assert trending_items(model, 1) == ["x"]
    assert recommend_for_user(model, [], 1, fallback="trending") == ["x"]


def test_category_popular_lists_come_first_when_a_category_is_asked() -> None:
    model = train(USERS, ITEMS, item_categories={"a": "shoes", "d": ["shoes", "sale"], "zz": "gone"})
    assert model.popular_by_category == {"sale": [("d", 1.0)], "shoes": [("a", 2.0), ("d", 1.0)]}
    assert recommend_for_user(model, [], 3, category="shoes") == ["a", "d", "b"]
    assert popular_items(model, 2, category="sale") == ["d", "a"]


def test_json_round_trip_keeps_every_list() -> None:
    model = train(USERS, ITEMS, timestamps=range(7), baskets=USERS, item_categories={"a": "shoes"})
    restored = RecommenderModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert restored == model
    assert recommend_for_user(restored, ["a"], 3) == recommend_for_user(model, ["a"], 3)
    with pytest.raises(ValueError, match="version"):
        RecommenderModel.from_dict(model.to_dict() | {"version": 99})


def test_repeated_events_count_once_and_bad_input_is_refused() -> None:
    once = train(USERS, ITEMS, config=TrainingConfig(algorithm="cosine"))
    twice = train(USERS * 2, ITEMS * 2, config=TrainingConfig(algorithm="cosine"))
    assert twice.neighbours == once.neighbours
    assert twice.stats == once.stats | {"interactions": 14}
    with pytest.raises(ValueError, match="same length"):
        train(["u1"], [])
    with pytest.raises(ValueError, match="unknown algorithm"):
        model_of("svd")


def test_scores_keep_six_significant_digits_with_short_json() -> None:
    rounded = significant(np.array([0.123456789, 1234567.0, -2.5e-7, 0.0, np.nan])).tolist()
    assert rounded == [0.123457, 1234570.0, -2.5e-7, 0.0, 0.0]
    assert json.dumps(rounded) == "[0.123457, 1234570.0, -2.5e-07, 0.0, 0.0]"
