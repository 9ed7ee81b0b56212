"""Behaviour-model training at scale: features, clusters and churn for a million customers in one Lambda.

Workload (seeded, built before anything is timed): `synthetic_transactions` with
ECRM_BENCH_ANALYSIS_CUSTOMERS customers (default 1,000,000) and about ten orders each (about
10,000,000 rows with categories), cutoff 2025-12-31, 90 days of orders after it.

Measured, one thread (BLAS and scikit-learn's OpenMP limited to 1 with threadpoolctl, so the
figure is per core and does not depend on what else the machine runs), each once (the stages
take tens of seconds; the reference three times):
- `customer_features` as of the cutoff (all 22 features).
- `train_clusters` on those features (k from 2 to 8 by silhouette on a sample, then the final
  KMeans on every customer).
- `train_churn` at the cutoff, window 90 days (computes its own features, fits on 75%,
  reports on 25% with permutation importance).
- Scoring every customer with both stored models (numpy only): `score_churn` + `assign_clusters`.
- Generating the data set, for scale.
- Reference: one `np.lexsort` of the rows by (customer, day), the floor of any per-customer pass
  over the rows (every stage above reads all rows at least once in a comparable way).

Peak memory is the process's maximum resident set (`resource.getrusage`, which includes the data
set itself), compared with the 10 GB a Lambda function can have; the whole run must also fit in
Lambda's 15 minutes. Nothing here asserts on time; the models' quality is checked (AUC, k, ARI)
because a fast fit to the wrong answer is no result.
"""

from __future__ import annotations

import os
import resource
import time
from typing import Any

import numpy as np
from ecrm.analysis.churn import score_churn, train_churn
from ecrm.analysis.clusters import assign_clusters, train_clusters
from ecrm.analysis.features import customer_features
from ecrm_ops.analysis.synthetic import synthetic_transactions
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

from tests.bench.harness import Measurement, measure, report

CUSTOMERS = int(os.environ.get("ECRM_BENCH_ANALYSIS_CUSTOMERS", "1000000"))
LAMBDA_MEMORY_GB = 10.0
LAMBDA_TIMEOUT_S = 15 * 60


def _seconds(run: Any) -> Any:
    def timed() -> float:
        started = time.perf_counter()
        run()
        return time.perf_counter() - started

    return timed


def _peak_memory_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: kilobytes


def test_analysis_training_fits_one_lambda() -> None:
    results: dict[str, Any] = {}
    with threadpool_limits(limits=1):
        generated = measure(
            "synthetic_transactions (data set)",
            _seconds(lambda: results.update(data=synthetic_transactions(CUSTOMERS, seed=1))),
            repeat=1,
            unit="s",
        )
        data = results["data"]
        tx = data.transactions
        memory_with_data = _peak_memory_gb()
        print(f"\n{len(tx.customers):,} customers, {len(tx):,} orders; peak memory so far: {memory_with_data:.2f} GB")

        reference = measure(
            "np.lexsort rows by (customer, day)",
            _seconds(lambda: np.lexsort((tx.day, tx.customer_index))),
            repeat=3,
            unit="s",
        )
        stages: list[Measurement] = [
            measure(
                "customer_features",
                _seconds(lambda: results.update(features=customer_features(tx, data.cutoff_day))),
                repeat=1,
                unit="s",
            ),
            measure(
                "train_clusters (k 2..8)",
                _seconds(lambda: results.update(clusters=train_clusters(results["features"]))),
                repeat=1,
                unit="s",
            ),
            measure(
                "train_churn (features + fit + report)",
                _seconds(lambda: results.update(churn=train_churn(tx, cutoff_day=data.cutoff_day))),
                repeat=1,
                unit="s",
            ),
            measure(
                "score_churn + assign_clusters, everyone",
                _seconds(
                    lambda: results.update(
                        scores=score_churn(results["churn"].model, results["features"]),
                        assigned=assign_clusters(results["clusters"].model, results["features"]),
                    )
                ),
                repeat=1,
                unit="s",
            ),
        ]
    report(
        f"Behaviour models, {len(tx.customers):,} customers / {len(tx):,} orders, one thread (seconds)",
        [*stages, generated],
        reference,
    )
    training_seconds = sum(stage.median for stage in stages)
    peak = _peak_memory_gb()
    churn, clusters = results["churn"], results["clusters"]
    ari = adjusted_rand_score(data.group, clusters.labels)
    print(
        f"  features + clusters + churn + scoring: {training_seconds:.0f} s of Lambda's {LAMBDA_TIMEOUT_S} s\n"
        f"  peak memory (max RSS) {peak:.2f} GB of Lambda's {LAMBDA_MEMORY_GB:.0f} GB\n"
        f"  churn: held-out AUC {churn.report.roc_auc:.3f}, Brier {churn.report.brier:.4f} "
        f"(base rate {churn.report.brier_base_rate:.4f}), base rate {churn.report.base_rate:.1%}\n"
        f"  clusters: k={clusters.k}, silhouette {clusters.silhouette_by_k[clusters.k]:.3f}, "
        f"ARI against the planted groups {ari:.3f}"
    )

    assert len(results["features"]) == CUSTOMERS
    assert churn.report.roc_auc > 0.75
    assert clusters.k == len(data.group_names)
    assert ari > 0.6
    assert np.mean(results["assigned"] == clusters.labels) > 0.99
