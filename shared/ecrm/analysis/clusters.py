"""Behavioural clusters: groups of customers who buy alike, each named and described in words.

KMeans runs on standardised `signed_log1p` features (a few behaviour dimensions by default: how
often, how much per order, how recently, how broadly), so a feature with a long tail or a large
unit does not dominate the distance. The number of clusters k is the one in the range with the
highest mean silhouette, measured on a seeded sample (silhouette is quadratic in the rows; the
candidates are fitted on a larger seeded sample), then the chosen k is refitted on everyone
starting from the sample's centroids. Same data and seed, same clusters: clusters are numbered by
size, largest first.

A cluster is described by the features whose cluster mean lies furthest from the overall mean,
in standard deviations of the transformed feature, e.g. "orders often (+1.6 sd), spends much per
order (+1.2 sd), bought recently (-0.8 sd)". Assigning customers to a stored model is nearest
centroid in numpy, without scikit-learn.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np

from ecrm.analysis.artifacts import ModelArtifact
from ecrm.analysis.features import FeatureMatrix, signed_log1p, standardisation

TRANSFORM = "signed_log1p"
DEFAULT_CLUSTER_FEATURES = (
    "orders_per_year",
    "average_order_value",
    "recency_days",
    "distinct_categories",
    "favourite_category_share",
)
CANDIDATE_SAMPLE = 20_000  # rows the candidate k are fitted on
SILHOUETTE_SAMPLE = 5_000  # rows the silhouette is measured on (pairwise distances: quadratic)
CANDIDATE_STARTS = 3  # KMeans restarts per candidate k
# Deviations smaller than this (in sd) do not describe a cluster.
NOTABLE_DEVIATION = 0.3
DESCRIBED_FEATURES = 3

# (above the mean, below the mean): phrases for descriptions and words for names.
PHRASES: dict[str, tuple[str, str]] = {
    "orders_per_year": ("orders often", "orders rarely"),
    "orders": ("many orders", "few orders"),
    "orders_last_30": ("ordered this month", "no order this month"),
    "orders_last_90": ("ordered lately", "few orders lately"),
    "orders_last_365": ("ordered a lot this year", "few orders this year"),
    "average_order_value": ("spends much per order", "spends little per order"),
    "total_spend": ("spends much", "spends little"),
    "spend_last_90": ("spent much lately", "spent little lately"),
    "recency_days": ("bought long ago", "bought recently"),
    "tenure_days": ("long-standing", "new"),
    "mean_days_between_orders": ("long gaps between orders", "short gaps between orders"),
    "order_trend": ("buying more lately", "buying less lately"),
    "distinct_categories": ("buys across many categories", "buys few categories"),
    "favourite_category_share": ("sticks to one category", "spreads spend across categories"),
}
NAME_WORDS: dict[str, tuple[str, str]] = {
    "orders_per_year": ("frequent", "occasional"),
    "orders": ("frequent", "occasional"),
    "average_order_value": ("big-basket", "bargain"),
    "total_spend": ("high-value", "low-value"),
    "recency_days": ("lapsing", "recent"),
    "tenure_days": ("loyal", "new"),
    "order_trend": ("growing", "fading"),
    "distinct_categories": ("broad", "narrow"),
    "favourite_category_share": ("specialist", "browsing"),
}


@dataclass(frozen=True)
class ClusterProfile:
    cluster: int
    size: int
    share: float
    name: str
    description: str
    deviations: dict[str, float]  # cluster mean - overall mean, in sd of the transformed feature
    means: dict[str, float]  # cluster mean of the raw feature


@dataclass(frozen=True)
class ClusterModel:
    feature_names: tuple[str, ...]
    means: np.ndarray
    scales: np.ndarray
    centroids: np.ndarray  # (k, features), in the standardised space
    names: tuple[str, ...]
    descriptions: tuple[str, ...]

    def to_parameters(self) -> dict[str, Any]:
        return {
            "transform": TRANSFORM,
            "means": self.means.tolist(),
            "scales": self.scales.tolist(),
            "centroids": self.centroids.tolist(),
            "names": list(self.names),
            "descriptions": list(self.descriptions),
        }

    @classmethod
    def from_parameters(cls, feature_names: list[str] | tuple[str, ...], parameters: dict[str, Any]) -> ClusterModel:
        if parameters.get("transform") != TRANSFORM:
            raise ValueError(f"unknown cluster feature transform {parameters.get('transform')!r}")
        means = np.asarray(parameters["means"], dtype=np.float64)
        scales = np.asarray(parameters["scales"], dtype=np.float64)
        centroids = np.asarray(parameters["centroids"], dtype=np.float64)
        names, descriptions = tuple(parameters["names"]), tuple(parameters["descriptions"])
        width = len(feature_names)
        if means.shape != (width,) or scales.shape != (width,) or centroids.ndim != 2 or centroids.shape[1] != width:
            raise ValueError("cluster model parameters do not match its feature names")
        if not len(names) == len(descriptions) == len(centroids):
            raise ValueError("cluster model has a different number of centroids, names and descriptions")
        return cls(tuple(feature_names), means, scales, centroids, names, descriptions)


@dataclass(frozen=True)
class ClusterTraining:
    model: ClusterModel
    k: int
    silhouette_by_k: dict[int, float]
    labels: np.ndarray  # cluster of each row of the features
    profiles: list[ClusterProfile]

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "criterion": "mean silhouette on a seeded sample (higher is better)",
            "silhouette_by_k": {str(k): value for k, value in self.silhouette_by_k.items()},
            "customers": len(self.labels),
            "clusters": [asdict(profile) for profile in self.profiles],
        }


def train_clusters(
    features: FeatureMatrix,
    *,
    k_min: int = 2,
    k_max: int = 8,
    feature_names: tuple[str, ...] | None = None,
    seed: int = 42,
    candidate_sample: int = CANDIDATE_SAMPLE,
    silhouette_sample: int = SILHOUETTE_SAMPLE,
) -> ClusterTraining:
    """Choose k in [k_min, k_max] by mean silhouette, fit it on every customer, describe each cluster."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    names = feature_names or tuple(name for name in DEFAULT_CLUSTER_FEATURES if name in features.feature_names)
    if not names:
        raise ValueError("none of the clustering features are present")
    if k_min < 2 or k_max < k_min:
        raise ValueError("need 2 <= k_min <= k_max")
    n = len(features)
    if n <= k_min:
        raise ValueError(f"{n} customers are too few for {k_min} clusters")
    k_max = min(k_max, n - 1)
    raw = features.select(names)
    x = signed_log1p(raw)
    means, scales = standardisation(x)
    x -= means
    x /= scales

    rng = np.random.default_rng(seed)
    candidates = np.sort(rng.choice(n, size=min(n, candidate_sample), replace=False))
    scored = np.sort(rng.choice(len(candidates), size=min(len(candidates), silhouette_sample), replace=False))
    silhouette_by_k: dict[int, float] = {}
    centroids_by_k: dict[int, np.ndarray] = {}
    for k in range(k_min, k_max + 1):
        fitted = KMeans(n_clusters=k, n_init=CANDIDATE_STARTS, random_state=seed).fit(x[candidates])
        labels = fitted.labels_[scored]
        distinct = len(np.unique(labels))
        silhouette_by_k[k] = (
            float(silhouette_score(x[candidates][scored], labels)) if 1 < distinct < len(scored) else -1.0
        )
        centroids_by_k[k] = fitted.cluster_centers_
    best_k = max(silhouette_by_k, key=lambda k: (silhouette_by_k[k], -k))
    final = KMeans(n_clusters=best_k, init=centroids_by_k[best_k], n_init=1, random_state=seed).fit(x)

    sizes = np.bincount(final.labels_, minlength=best_k)
    by_size = np.argsort(-sizes, kind="stable")
    renumber = np.empty(best_k, dtype=np.int64)
    renumber[by_size] = np.arange(best_k)
    labels = renumber[final.labels_]
    centroids = final.cluster_centers_[by_size]
    profiles = _profiles(names, x, raw, labels, best_k)
    model = ClusterModel(
        feature_names=names,
        means=means,
        scales=scales,
        centroids=centroids.astype(np.float64),
        names=tuple(p.name for p in profiles),
        descriptions=tuple(p.description for p in profiles),
    )
    return ClusterTraining(model, best_k, silhouette_by_k, labels, profiles)


def assign_clusters(model: ClusterModel, features: FeatureMatrix) -> np.ndarray:
    """The nearest centroid of each customer (numpy only): what a scoring job runs with a stored model."""
    x = signed_log1p(features.select(model.feature_names))
    x -= model.means
    x /= model.scales
    distance = (model.centroids**2).sum(axis=1) - 2.0 * (x @ model.centroids.T)  # + |x|^2, the same for all
    return np.argmin(distance, axis=1)


def _profiles(
    names: tuple[str, ...], standardised: np.ndarray, raw: np.ndarray, labels: np.ndarray, k: int
) -> list[ClusterProfile]:
    counts = np.bincount(labels, minlength=k)
    standardised_means = (
        np.stack([np.bincount(labels, weights=standardised[:, j], minlength=k) for j in range(len(names))], axis=1)
        / np.maximum(counts, 1)[:, None]
    )
    raw_means = (
        np.stack([np.bincount(labels, weights=raw[:, j], minlength=k) for j in range(len(names))], axis=1)
        / np.maximum(counts, 1)[:, None]
    )
    profiles: list[ClusterProfile] = []
    taken: set[str] = set()
    for cluster in range(k):
        deviations = dict(zip(names, standardised_means[cluster].tolist(), strict=True))
        name = _name(deviations)
        if name in taken:
            name = f"{name} {cluster + 1}"
        taken.add(name)
        profiles.append(
            ClusterProfile(
                cluster=cluster,
                size=int(counts[cluster]),
                share=float(counts[cluster] / len(labels)),
                name=name,
                description=describe_cluster(deviations),
                deviations={key: round(value, 3) for key, value in deviations.items()},
                means=dict(zip(names, raw_means[cluster].tolist(), strict=True)),
            )
        )
    return profiles


def _strongest(deviations: dict[str, float], vocabulary: dict[str, tuple[str, str]] | None = None) -> list[str]:
    notable = [
        name
        for name, value in deviations.items()
        if abs(value) >= NOTABLE_DEVIATION and (vocabulary is None or name in vocabulary)
    ]
    return sorted(notable, key=lambda name: -abs(deviations[name]))


def describe_cluster(deviations: dict[str, float]) -> str:
    """The three features furthest from average, in words with their distance in sd."""
    parts = []
    for name in _strongest(deviations)[:DESCRIBED_FEATURES]:
        above, below = PHRASES.get(name, (f"high {name}", f"low {name}"))
        value = deviations[name]
        parts.append(f"{above if value > 0 else below} ({value:+.1f} sd)")
    return ", ".join(parts) if parts else "close to average on every feature"


def _name(deviations: dict[str, float]) -> str:
    words: list[str] = []
    for name in _strongest(deviations, NAME_WORDS):
        word = NAME_WORDS[name][0 if deviations[name] > 0 else 1]
        if word not in words:
            words.append(word)
        if len(words) == 2:
            break
    return " ".join([*words, "buyers"]) if words else "typical buyers"


def clusters_artifact(
    training: ClusterTraining, *, trained_at: datetime, data: dict[str, Any] | None = None
) -> ModelArtifact:
    metrics: dict[str, Any] = {
        "k": training.k,
        "silhouette_by_k": {str(k): value for k, value in training.silhouette_by_k.items()},
        "sizes": [profile.size for profile in training.profiles],
    }
    return ModelArtifact.create(
        "clusters",
        trained_at=trained_at,
        parameters=training.model.to_parameters(),
        feature_names=training.model.feature_names,
        metrics=metrics,
        data={"customers": len(training.labels), **(data or {})},
    )


def cluster_model_from_artifact(artifact: ModelArtifact) -> ClusterModel:
    if artifact.kind != "clusters":
        raise ValueError(f"not a cluster model: {artifact.kind}")
    return ClusterModel.from_parameters(artifact.feature_names, artifact.parameters)
