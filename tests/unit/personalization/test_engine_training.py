"""The training run without AWS: reading interactions, the held-out comparison, baskets, "for you", activation."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ecrm.core.clock import FixedClock
from ecrm.personalization.projection import HistoryPolicy
from ecrm.personalization.training import (
    Activation,
    Interactions,
    TrainingSettings,
    activation_decision,
    baskets_of,
    columns,
    for_you_lists,
    model_version,
    parse_time,
    read_interactions_csv,
    run_training,
    train_recommender,
)

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def tastes(customers: int = 80, seed: int = 7) -> Interactions:
    """Customers with one of four tastes: on their first day they buy the taste's first two items together, then
    see six more, five of their taste, one a bestseller everybody sees. An item-based model should find the
    taste, where popularity cannot."""
    rng = random.Random(seed)
    rows = []
    start = NOW.timestamp() - 60 * 86_400
    for c in range(customers):
        taste = c % 4
        later = [*rng.sample([f"g{taste}_{i}" for i in range(2, 12)], 5), f"best{rng.randrange(3)}"]
        rng.shuffle(later)
        picks = [f"g{taste}_0", f"g{taste}_1", *later]
        for n, item in enumerate(picks):
            at = start + c * 3_600 + max(0, n - 1) * 86_400 * 6 + n * 60
            kind = "order_completed" if n < 2 else "product_viewed"
            rows.append((f"cus_{c:03d}", item, at, kind, f"taste{taste}" if item.startswith("g") else "best"))
    return columns(rows)


def test_the_model_beats_popularity_on_held_out_interactions_and_is_trained_on_everything() -> None:
    data = tastes()

    trained = train_recommender(data, settings=TrainingSettings(), trained_at=NOW)

    assert trained.version == "20261123T030000000Z"
    assert trained.metrics["model"]["ndcg"] > 2 * trained.metrics["popularity"]["ndcg"]
    assert trained.evaluation["split"] == "time"
    assert trained.evaluation["test_customers"] > 0
    assert trained.data["interactions"] == len(data) == 640
    assert set(trained.model.neighbours["g0_0"][0][0].split("_")[:1]) == {"g0"}  # a neighbour of the same taste
    assert set(trained.model.popular_by_category) == {"taste0", "taste1", "taste2", "taste3", "best"}
    # bought together: purchases of one customer's day, the planted pair only
    assert [i for i, _ in trained.model.bought_together["g0_0"]] == ["g0_1"]
    assert set(trained.model.bought_together) == {f"g{t}_{i}" for t in range(4) for i in range(2)}


def test_too_few_interactions_train_without_metrics() -> None:
    data = columns([("a", "x", 1.0), ("a", "y", 2.0)])

    trained = train_recommender(data, settings=TrainingSettings(), trained_at=NOW)

    assert trained.metrics == {}
    assert "too few" in trained.evaluation["skipped"]
    with pytest.raises(ValueError, match="no interactions"):
        train_recommender(Interactions(), settings=TrainingSettings(), trained_at=NOW)


def test_baskets_are_one_customers_purchases_of_a_day() -> None:
    data = columns(
        [
            ("a", "x", 100.0, "order_completed"),
            ("a", "y", 200.0, "order_completed"),
            ("a", "z", 300.0, "product_viewed"),
            ("a", "w", 90_000.0, "order_completed"),
        ]
    )
    assert baskets_of(data, HistoryPolicy()) == ["a|0", "a|0", "#2", "a|1"]
    # without any purchase in the data, all of a day's interactions make the basket
    views = columns([("a", "x", 1.0, "product_viewed"), ("a", "y", 2.0, "product_viewed")])
    assert baskets_of(views, HistoryPolicy()) == ["a|0", "a|0"]


def test_for_you_lists_go_to_the_most_recently_active_customers_and_skip_their_items() -> None:
    data = tastes(customers=40)
    trained = train_recommender(data, settings=TrainingSettings(), trained_at=NOW)

    lists = for_you_lists(trained.model, data, TrainingSettings(for_you_size=5, for_you_customers=3))

    assert list(lists) == ["cus_039", "cus_038", "cus_037"]
    seen = {i for c, i in zip(data.customers, data.items, strict=True) if c == "cus_039"}
    assert len(lists["cus_039"]) == 5
    assert not seen & set(lists["cus_039"])
    assert all(item.startswith("g3_") for item in lists["cus_039"][:3])  # cus_039 has taste 3


def test_a_dry_run_reports_without_writing() -> None:
    report = run_training(tastes(), settings=TrainingSettings(), clock=FixedClock(NOW))

    assert (report.activated, report.artifact, report.written) == (False, None, {})
    assert report.reason.startswith("dry run")
    assert report.to_dict()["metrics"]["model"]["ndcg"] > 0


@pytest.mark.parametrize(
    ("metrics", "serving", "policy", "activated", "reason"),
    [
        ({}, None, "if_better", True, "no model was serving"),
        ({"model": {"ndcg": 0.1}, "popularity": {"ndcg": 0.2}}, None, "if_better", True, "no model was serving"),
        ({"model": {"ndcg": 0.3}, "popularity": {"ndcg": 0.2}}, "v1", "if_better", True, "beats popularity"),
        ({"model": {"ndcg": 0.1}, "popularity": {"ndcg": 0.2}}, "v1", "if_better", False, "not serving"),
        ({"model": {"ndcg": 0.1}, "popularity": {"ndcg": 0.2}}, "v1", "always", True, "forced"),
        ({}, "v1", "if_better", True, "too few"),
    ],
)
def test_activation_decision(
    metrics: dict[str, dict[str, float]], serving: str | None, policy: Activation, activated: bool, reason: str
) -> None:
    decided, why = activation_decision(metrics, serving=serving, policy=policy, k=10)
    assert decided is activated
    assert reason in why


def test_reading_a_csv_names_a_missing_column_and_skips_incomplete_rows(tmp_path: Path) -> None:
    path = tmp_path / "interactions.csv"
    path.write_text(
        "user,sku,when,type,category\n"
        "a,x,2026-11-01T10:00:00Z,order_completed,shoes\n"
        "b,y,1795000000,product_viewed,\n"
        ",z,2026-11-01,product_viewed,hats\n"
        "c,z,not a time,product_viewed,hats\n",
        encoding="utf-8",
    )

    data = read_interactions_csv(
        path, customer_col="user", item_col="sku", time_col="when", type_col="type", category_col="category"
    )

    assert (data.customers, data.items, data.kinds) == (["a", "b"], ["x", "y"], ["order_completed", "product_viewed"])
    assert data.times == [datetime(2026, 11, 1, 10, tzinfo=UTC).timestamp(), 1795000000.0]
    assert (data.categories, data.skipped) == ({"x": "shoes"}, 2)
    with pytest.raises(ValueError, match="no column 'customer'"):
        read_interactions_csv(path, customer_col="customer", item_col="sku", time_col="when")
    # without a time column, file order is time
    assert read_interactions_csv(path, customer_col="user", item_col="sku", time_col=None).times[:2] == [2.0, 3.0]


def test_times_and_versions() -> None:
    assert (
        parse_time("2026-11-23 10:15:30.123")
        == parse_time("2026-11-23 10:15:30.123+00")
        == parse_time("2026-11-23T10:15:30.123Z")
    )
    assert parse_time("") is None
    assert parse_time("nan") is None
    assert model_version(datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)) == "20260102T030405678Z"
