"""The model job (scheduled, or `ecrm local invoke`): orders from the lake -> models -> traits on profiles.

Orders are the lake's `order_lines` (the transactions engine's), net of returns, cancelled orders left out.

Runs with the ml layer (numpy, scipy, scikit-learn). Artifacts go to the lake bucket under
`models/<kind>/<version>.json`; traits are published as `TraitsComputed` batches.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.analysis.artifacts import ArtifactStore
from ecrm.analysis.training import compute_traits, traits_events, transactions_from_lake
from ecrm.analysis.wiring import AnalysisConfig, membership_for, segments_for
from ecrm.core import aws
from ecrm.core.clock import utc_now
from ecrm.core.config import load_config
from ecrm.core.observability import Observability

config = load_config(AnalysisConfig)
obs = Observability(config)


@obs.entrypoint()
def handler(event: dict[str, Any], context: LambdaContext, injected: Any = None) -> dict[str, Any]:
    as_of = date.fromisoformat(event["as_of"]) if event.get("as_of") else utc_now().date()
    lake = segments_for(config).lake
    s3 = aws.client("s3")
    tx = transactions_from_lake(lake, s3)
    run = compute_traits(tx, as_of=as_of)
    store = ArtifactStore(s3, config.lake_bucket_name)
    versions = {}
    for artifact in run.artifacts:
        store.put(artifact)
        versions[artifact.kind] = artifact.version
    publisher = membership_for(config).publisher
    version = versions.get("churn") or versions.get("rfm") or ""
    published = 0
    for batch in traits_events(run, model_version=version):
        publisher.publish_all([batch])
        published += len(batch.customers)
    churn = run.metrics.get("churn", {})
    return {
        "as_of": as_of.isoformat(),
        "orders": len(tx),
        "customers": run.customers,
        "traits_published": published,
        "models": versions,
        "churn_auc": churn.get("roc_auc"),
        "clusters": run.metrics.get("clusters", {}).get("k"),
        "rfm": run.metrics.get("rfm"),
        "clv_degenerate": run.metrics.get("clv", {}).get("degenerate_reason"),
    }
