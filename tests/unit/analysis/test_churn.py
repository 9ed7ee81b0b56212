"""Churn propensity: finds the planted signal on held-out customers, is calibrated, scores without scikit-learn."""

from __future__ import annotations

import itertools
import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import pytest
from ecrm.analysis.artifacts import ModelArtifact
from ecrm.analysis.churn import (
    ChurnTraining,
    calibration_table,
    churn_artifact,
    churn_labels,
    churn_model_from_artifact,
    score_churn,
    train_churn,
)
from ecrm.analysis.features import SHARE_PREFIX, customer_features
from ecrm.analysis.transactions import Transactions
from ecrm_ops.analysis.synthetic import SyntheticData, synthetic_transactions

TRAINED_AT = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return synthetic_transactions(20_000, seed=7)


@pytest.fixture(scope="module")
def training(data: SyntheticData) -> ChurnTraining:
    return train_churn(data.transactions, cutoff_day=data.cutoff_day, window_days=90, seed=42)


def test_finds_the_planted_signal_on_held_out_customers(training: ChurnTraining) -> None:
    report = training.report

    assert report.roc_auc > 0.75
    assert report.brier < 0.75 * report.brier_base_rate  # clearly better than predicting the base rate
    assert report.log_loss < 0.6
    assert report.test_customers == 5_000
    assert report.train_customers == 15_000
    assert abs(report.test_base_rate - report.base_rate) < 0.005  # stratified


def test_calibration_table_is_sensible(training: ChurnTraining) -> None:
    table = training.report.calibration

    assert len(table) == 10
    assert sum(row.count for row in table) == training.report.test_customers
    observed = [row.observed_rate for row in table]
    assert all(later >= earlier - 0.02 for earlier, later in itertools.pairwise(observed))
    assert observed[-1] - observed[0] > 0.5
    for row in table:
        assert row.min_predicted <= row.mean_predicted <= row.max_predicted
        assert abs(row.mean_predicted - row.observed_rate) < 0.08


def test_influential_features_are_the_planted_ones(training: ChurnTraining) -> None:
    top = [influence.feature for influence in training.report.top_features]
    by_name = {influence.feature: influence for influence in training.report.top_features}

    assert len(top) == 10
    assert {"orders_per_year", "orders", "recency_days", "order_trend"} & set(top[:4])
    drops = [influence.auc_drop for influence in training.report.top_features]
    assert drops == sorted(drops, reverse=True)
    assert by_name["orders_per_year"].coefficient < 0  # buying often keeps customers
    assert not any(name.startswith(SHARE_PREFIX) for name in training.model.feature_names)


def test_labels_are_no_purchase_in_the_window(data: SyntheticData, training: ChurnTraining) -> None:
    active, labels = churn_labels(data.transactions, cutoff_day=data.cutoff_day, window_days=90)

    assert len(active) == training.report.customers == 20_000
    assert labels.sum() == training.report.churned
    assert np.all(labels[data.churned[active]] == 1)  # whoever stopped buying is labelled churned


def test_score_churn_reproduces_the_model(data: SyntheticData, training: ChurnTraining) -> None:
    features = customer_features(data.transactions, data.cutoff_day)
    probabilities = score_churn(training.model, features)

    assert probabilities.shape == (len(features),)
    assert np.all((probabilities > 0) & (probabilities < 1))
    _, labels = churn_labels(data.transactions, cutoff_day=data.cutoff_day, window_days=90)
    assert probabilities[labels == 1].mean() > probabilities[labels == 0].mean() + 0.3


def test_artifact_round_trip_scores_identically(data: SyntheticData, training: ChurnTraining) -> None:
    artifact = churn_artifact(training, trained_at=TRAINED_AT, data={"source": "synthetic"})
    loaded = churn_model_from_artifact(ModelArtifact.from_json(artifact.to_json()))
    features = customer_features(data.transactions, data.cutoff_day)

    assert artifact.kind == "churn"
    assert artifact.version == "20260105T030000000Z"
    assert artifact.metrics["roc_auc"] == training.report.roc_auc
    assert artifact.data["source"] == "synthetic"
    assert artifact.data["window_days"] == 90
    assert np.array_equal(score_churn(loaded, features), score_churn(training.model, features))


def test_scoring_imports_no_scikit_learn(training: ChurnTraining) -> None:
    # Given a stored model, in a fresh interpreter that loads and scores it
    artifact = churn_artifact(training, trained_at=TRAINED_AT).to_json()
    program = (
        "import sys\n"
        "from ecrm.analysis.artifacts import ModelArtifact\n"
        "from ecrm.analysis.churn import churn_model_from_artifact, score_churn\n"
        "from ecrm.analysis.features import customer_features\n"
        "from ecrm_ops.analysis.synthetic import synthetic_transactions\n"
        "data = synthetic_transactions(300, seed=1)\n"
        "model = churn_model_from_artifact(ModelArtifact.from_json(sys.stdin.read()))\n"
        "score_churn(model, customer_features(data.transactions, data.cutoff_day))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], input=artifact, capture_output=True, text=True, check=True, timeout=120
    )

    assert result.stdout.strip() == "[]"


def test_refuses_a_window_the_data_does_not_cover(data: SyntheticData) -> None:
    with pytest.raises(ValueError, match="before the churn window closes"):
        train_churn(data.transactions, cutoff_day=data.cutoff_day, window_days=120)


def test_refuses_too_few_customers_of_a_class() -> None:
    tx = Transactions.from_rows(["a", "b", "a", "b"], [1, 1, 50, 50], [1.0, 1.0, 1.0, 1.0])

    with pytest.raises(ValueError, match="too few customers"):
        train_churn(tx, cutoff_day=10, window_days=30)


def test_calibration_table_by_hand() -> None:
    predicted = np.array([0.9, 0.1, 0.2, 0.8])
    labels = np.array([1, 0, 1, 1])

    table = calibration_table(labels, predicted, bins=2)

    assert [(row.count, row.observed_rate) for row in table] == [(2, 0.5), (2, 1.0)]
    assert table[0].mean_predicted == pytest.approx(0.15)
    assert (table[1].min_predicted, table[1].max_predicted) == (0.8, 0.9)
