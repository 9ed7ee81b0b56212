"""Behavioural clusters: the planted groups come back, described by the features that set them apart."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from ecrm.analysis.artifacts import ModelArtifact
from ecrm.analysis.clusters import (
    ClusterTraining,
    assign_clusters,
    cluster_model_from_artifact,
    clusters_artifact,
    describe_cluster,
    train_clusters,
)
from ecrm.analysis.features import FeatureMatrix, customer_features
from ecrm_ops.analysis.synthetic import SyntheticData, synthetic_transactions
from sklearn.metrics import adjusted_rand_score


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return synthetic_transactions(20_000, seed=3)


@pytest.fixture(scope="module")
def features(data: SyntheticData) -> FeatureMatrix:
    return customer_features(data.transactions, data.cutoff_day)


@pytest.fixture(scope="module")
def training(features: FeatureMatrix) -> ClusterTraining:
    return train_clusters(features, k_min=2, k_max=8, seed=42)


def _cluster_of(data: SyntheticData, training: ClusterTraining, group_name: str) -> int:
    """The cluster holding most of a planted group."""
    members = data.group == data.group_names.index(group_name)
    return int(np.bincount(training.labels[members], minlength=training.k).argmax())


def test_recovers_the_planted_groups(data: SyntheticData, training: ClusterTraining) -> None:
    assert training.k == len(data.group_names)
    assert max(training.silhouette_by_k, key=lambda k: training.silhouette_by_k[k]) == training.k
    assert set(training.silhouette_by_k) == set(range(2, 9))
    assert adjusted_rand_score(data.group, training.labels) > 0.65
    # each planted group has its own cluster
    assert len({_cluster_of(data, training, name) for name in data.group_names}) == len(data.group_names)


def test_descriptions_name_the_distinguishing_features(data: SyntheticData, training: ClusterTraining) -> None:
    description = {name: training.profiles[_cluster_of(data, training, name)].description for name in data.group_names}

    assert "orders often (+" in description["frequent high spenders"]
    assert "spends much per order (+" in description["frequent high spenders"]
    assert "spends little per order (-" in description["bargain hunters"]
    assert "orders rarely (-" in description["occasional buyers"]
    assert "sticks to one category (+" in description["category specialists"]
    specialists = training.profiles[_cluster_of(data, training, "category specialists")]
    assert "specialist" in specialists.name


def test_profiles_are_numbered_by_size(training: ClusterTraining) -> None:
    sizes = [profile.size for profile in training.profiles]

    assert sizes == sorted(sizes, reverse=True)
    assert sum(sizes) == len(training.labels)
    assert [profile.cluster for profile in training.profiles] == list(range(training.k))
    assert len({profile.name for profile in training.profiles}) == training.k
    assert np.bincount(training.labels).tolist() == sizes


def test_assign_clusters_is_the_nearest_centroid(features: FeatureMatrix, training: ClusterTraining) -> None:
    assigned = assign_clusters(training.model, features)

    assert np.mean(assigned == training.labels) > 0.999


def test_artifact_round_trip(features: FeatureMatrix, training: ClusterTraining) -> None:
    artifact = clusters_artifact(training, trained_at=datetime(2026, 1, 5, tzinfo=UTC), data={"as_of": "2025-12-31"})
    model = cluster_model_from_artifact(ModelArtifact.from_json(artifact.to_json()))

    assert artifact.metrics["k"] == training.k
    assert model.names == training.model.names
    assert model.descriptions == training.model.descriptions
    assert np.array_equal(assign_clusters(model, features), assign_clusters(training.model, features))


def test_same_data_and_seed_same_clusters() -> None:
    data = synthetic_transactions(2_000, seed=8)
    features = customer_features(data.transactions, data.cutoff_day)

    first = train_clusters(features, k_max=4)
    again = train_clusters(features, k_max=4)

    assert first.silhouette_by_k == again.silhouette_by_k
    assert np.array_equal(first.labels, again.labels)
    assert first.model.names == again.model.names


def test_describe_cluster_words_and_order() -> None:
    text = describe_cluster({"orders_per_year": 1.62, "recency_days": -0.8, "average_order_value": 1.2, "x": 0.1})

    assert text == "orders often (+1.6 sd), spends much per order (+1.2 sd), bought recently (-0.8 sd)"
    assert describe_cluster({"orders_per_year": 0.1}) == "close to average on every feature"
    assert describe_cluster({"basket_size": 0.9}) == "high basket_size (+0.9 sd)"


def test_refuses_impossible_ranges(features: FeatureMatrix) -> None:
    with pytest.raises(ValueError, match="k_min"):
        train_clusters(features, k_min=5, k_max=3)
    with pytest.raises(ValueError, match="none of the clustering features"):
        train_clusters(FeatureMatrix(features.customer_ids, ("other",), features.values[:, :1]))
