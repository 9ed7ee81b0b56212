"""Churn propensity: who stops buying, learned from the past and checked on customers the model never saw.

Training looks back from a cutoff: features from the rows up to the cutoff, for the customers
with a purchase by then; the label is 1 for a customer with no purchase in the `window_days`
after it. The model is a logistic regression on standardised `signed_log1p` features: its fitted
state is a handful of numbers (means, scales, coefficients, intercept), stored as JSON, and
scoring is a dot product in numpy, so nothing on the scoring path imports scikit-learn. The
category spend shares are left out: they sum to one (so their coefficients are arbitrary) and
breadth is already in distinct_categories and favourite_category_share.

The report is computed on a stratified held-out share of the customers: ROC AUC (does the model
rank churners first), Brier score and log loss (are the probabilities right), a calibration
table by deciles of predicted risk, and the most influential features by permutation importance
(how much the held-out AUC drops when one feature is shuffled): with correlated features such as
orders and spend, the coefficients alone would mislead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np

from ecrm.analysis.artifacts import ModelArtifact
from ecrm.analysis.features import (
    SHARE_PREFIX,
    FeatureMatrix,
    active_customers,
    customer_features,
    signed_log1p,
    standardisation,
)
from ecrm.analysis.transactions import Transactions, from_day

TRANSFORM = "signed_log1p"
CALIBRATION_BINS = 10
TOP_FEATURES = 10
MIN_CUSTOMERS_PER_CLASS = 10
# L2 strength of the logistic regression (scikit-learn's C): mild, as the features are few and the rows many.
REGULARISATION_C = 1.0


@dataclass(frozen=True)
class ChurnModel:
    feature_names: tuple[str, ...]
    means: np.ndarray
    scales: np.ndarray
    coefficients: np.ndarray
    intercept: float
    window_days: int

    def to_parameters(self) -> dict[str, Any]:
        return {
            "transform": TRANSFORM,
            "means": self.means.tolist(),
            "scales": self.scales.tolist(),
            "coefficients": self.coefficients.tolist(),
            "intercept": float(self.intercept),
            "window_days": self.window_days,
        }

    @classmethod
    def from_parameters(cls, feature_names: list[str] | tuple[str, ...], parameters: dict[str, Any]) -> ChurnModel:
        if parameters.get("transform") != TRANSFORM:
            raise ValueError(f"unknown churn feature transform {parameters.get('transform')!r}")
        arrays = [np.asarray(parameters[name], dtype=np.float64) for name in ("means", "scales", "coefficients")]
        if any(array.shape != (len(feature_names),) for array in arrays):
            raise ValueError("churn model parameters do not match its feature names")
        means, scales, coefficients = arrays
        return cls(
            tuple(feature_names),
            means,
            scales,
            coefficients,
            float(parameters["intercept"]),
            int(parameters["window_days"]),
        )


@dataclass(frozen=True)
class CalibrationBin:
    """Customers in one decile of predicted risk: does the observed churn rate match the predicted one?"""

    count: int
    min_predicted: float
    max_predicted: float
    mean_predicted: float
    observed_rate: float


@dataclass(frozen=True)
class FeatureInfluence:
    feature: str
    auc_drop: float  # held-out AUC lost when this feature is shuffled
    coefficient: float  # per standard deviation of the transformed feature; > 0 raises the risk


@dataclass(frozen=True)
class ChurnReport:
    cutoff: str
    window_days: int
    customers: int
    churned: int
    base_rate: float
    train_customers: int
    test_customers: int
    test_base_rate: float
    roc_auc: float
    brier: float
    brier_base_rate: float  # the Brier score of predicting the base rate for everyone: the bar to beat
    log_loss: float
    calibration: list[CalibrationBin]
    top_features: list[FeatureInfluence]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ChurnTraining:
    model: ChurnModel
    report: ChurnReport


def churn_labels(tx: Transactions, *, cutoff_day: int, window_days: int) -> tuple[np.ndarray, np.ndarray]:
    """(customers active by the cutoff as indices into `tx.customers`, 1 where they bought nothing in the window)."""
    active = active_customers(tx, cutoff_day)
    in_window = (tx.day > cutoff_day) & (tx.day <= cutoff_day + window_days) & tx.is_purchase
    bought = np.bincount(tx.customer_index[in_window], minlength=len(tx.customers)) > 0
    return active, (~bought[active]).astype(np.int64)


def train_churn(
    tx: Transactions,
    *,
    cutoff_day: int,
    window_days: int = 90,
    test_fraction: float = 0.25,
    seed: int = 42,
) -> ChurnTraining:
    """Fit on a stratified (1 - test_fraction) of the active customers, report on the rest."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    if window_days < 1:
        raise ValueError("window_days must be at least 1")
    if not 0 < test_fraction < 1:
        raise ValueError("test_fraction must be between 0 and 1")
    if len(tx) == 0:
        raise ValueError("there are no transactions")
    window_end = cutoff_day + window_days
    last_day = int(tx.day.max())
    if last_day < window_end:
        raise ValueError(
            f"the transactions end on {from_day(last_day)}, before the churn window closes on {from_day(window_end)}: "
            "customers would look churned only because the data stops (choose an earlier cutoff or a shorter window)"
        )
    _, labels = churn_labels(tx, cutoff_day=cutoff_day, window_days=window_days)
    churned = int(labels.sum())
    stayed = len(labels) - churned
    needed = int(np.ceil(MIN_CUSTOMERS_PER_CLASS / min(test_fraction, 1 - test_fraction)))
    if min(churned, stayed) < needed:
        raise ValueError(
            f"too few customers to learn churn: {churned} churned and {stayed} stayed "
            f"(need at least {needed} of each for the held-out split)"
        )
    features = customer_features(tx, cutoff_day)
    names = tuple(name for name in features.feature_names if not name.startswith(SHARE_PREFIX))
    x = signed_log1p(features.select(names))
    rows = np.arange(len(labels))
    train, test = train_test_split(rows, test_size=test_fraction, stratify=labels, random_state=seed)
    train.sort()
    test.sort()
    means, scales = standardisation(x[train])
    x -= means
    x /= scales
    regression = LogisticRegression(C=REGULARISATION_C, max_iter=1000)
    regression.fit(x[train], labels[train])
    model = ChurnModel(
        feature_names=names,
        means=means,
        scales=scales,
        coefficients=regression.coef_[0].astype(np.float64),
        intercept=float(regression.intercept_[0]),
        window_days=window_days,
    )
    report = _report(
        model,
        labels=labels,
        test_labels=labels[test],
        test_features=x[test],
        train_customers=len(train),
        cutoff_day=cutoff_day,
        seed=seed,
    )
    return ChurnTraining(model, report)


def score_churn(model: ChurnModel, features: FeatureMatrix) -> np.ndarray:
    """The probability of each customer buying nothing in the model's window: numpy only."""
    x = signed_log1p(features.select(model.feature_names))
    x -= model.means
    x /= model.scales
    return _probability(model, x)


def _probability(model: ChurnModel, standardised: np.ndarray) -> np.ndarray:
    logit = standardised @ model.coefficients + model.intercept
    return np.exp(-np.logaddexp(0.0, -logit))  # 1 / (1 + e^-z) without overflow


def _report(
    model: ChurnModel,
    *,
    labels: np.ndarray,
    test_labels: np.ndarray,
    test_features: np.ndarray,
    train_customers: int,
    cutoff_day: int,
    seed: int,
) -> ChurnReport:
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    predicted = _probability(model, test_features)
    auc = float(roc_auc_score(test_labels, predicted))
    rng = np.random.default_rng(seed)
    drops = []
    for position, name in enumerate(model.feature_names):
        shuffled = test_features.copy()
        shuffled[:, position] = rng.permutation(shuffled[:, position])
        drop = auc - float(roc_auc_score(test_labels, _probability(model, shuffled)))
        drops.append(FeatureInfluence(name, drop, float(model.coefficients[position])))
    test_base_rate = float(test_labels.mean())
    return ChurnReport(
        cutoff=from_day(cutoff_day).isoformat(),
        window_days=model.window_days,
        customers=len(labels),
        churned=int(labels.sum()),
        base_rate=float(labels.mean()),
        train_customers=train_customers,
        test_customers=len(test_labels),
        test_base_rate=test_base_rate,
        roc_auc=auc,
        brier=float(brier_score_loss(test_labels, predicted)),
        brier_base_rate=test_base_rate * (1 - test_base_rate),
        log_loss=float(log_loss(test_labels, predicted, labels=[0, 1])),
        calibration=calibration_table(test_labels, predicted),
        top_features=sorted(drops, key=lambda influence: -influence.auc_drop)[:TOP_FEATURES],
    )


def calibration_table(labels: np.ndarray, predicted: np.ndarray, bins: int = CALIBRATION_BINS) -> list[CalibrationBin]:
    """Customers ranked by predicted risk, cut into `bins` groups of (nearly) equal size, lowest risk first."""
    order = np.argsort(predicted, kind="stable")
    table = []
    for members in np.array_split(order, min(bins, len(order))):
        chosen = predicted[members]
        table.append(
            CalibrationBin(
                count=len(members),
                min_predicted=float(chosen.min()),
                max_predicted=float(chosen.max()),
                mean_predicted=float(chosen.mean()),
                observed_rate=float(labels[members].mean()),
            )
        )
    return table


def churn_artifact(
    training: ChurnTraining, *, trained_at: datetime, data: dict[str, Any] | None = None
) -> ModelArtifact:
    report = training.report.to_dict()
    metrics = {
        name: report[name]
        for name in ("roc_auc", "brier", "brier_base_rate", "log_loss", "test_base_rate", "base_rate")
    }
    metrics["calibration"] = report["calibration"]
    description = {
        "cutoff": report["cutoff"],
        "window_days": report["window_days"],
        "customers": report["customers"],
        "churned": report["churned"],
        "train_customers": report["train_customers"],
        "test_customers": report["test_customers"],
        **(data or {}),
    }
    return ModelArtifact.create(
        "churn",
        trained_at=trained_at,
        parameters=training.model.to_parameters(),
        feature_names=training.model.feature_names,
        metrics=metrics,
        data=description,
    )


def churn_model_from_artifact(artifact: ModelArtifact) -> ChurnModel:
    if artifact.kind != "churn":
        raise ValueError(f"not a churn model: {artifact.kind}")
    return ChurnModel.from_parameters(artifact.feature_names, artifact.parameters)
