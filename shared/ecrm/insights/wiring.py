"""What every insights function builds from its environment: config, the store, the service."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from functools import cache

from ecrm.core import aws
from ecrm.core.clock import SystemClock
from ecrm.core.config import FunctionConfig
from ecrm.insights.erasure import InsightsErasure
from ecrm.insights.service import InsightsService, LiveSettings
from ecrm.insights.store import InsightsStore


class InsightsConfig(FunctionConfig):
    insights_table_name: str
    # Writes spread over this many partitions per hour; a reader queries each (more: more write throughput).
    insights_shards: int = 4
    # An order within this many hours after a campaign or journey message counts as its conversion.
    insights_attribution_hours: int = 7 * 24

    def live_settings(self) -> LiveSettings:
        return LiveSettings(
            shards=self.insights_shards, attribution_window=timedelta(hours=self.insights_attribution_hours)
        )


class InsightsErasureConfig(InsightsConfig):
    """The erasure consumer publishes its acknowledgement itself."""

    event_bus_name: str


def erasure_for(config: InsightsConfig) -> InsightsErasure:
    return InsightsErasure(InsightsStore(aws.client("dynamodb"), config.insights_table_name), SystemClock())


@cache
def service_for(config: InsightsConfig) -> InsightsService:
    store = InsightsStore(aws.client("dynamodb"), config.insights_table_name)
    return InsightsService(store, SystemClock(), config.live_settings(), metric=emit_metric)


def emit_metric(name: str, value: float, dimensions: Mapping[str, str]) -> None:
    """One CloudWatch metric in embedded metric format, per channel (the dashboard's channel widgets)."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    from ecrm.core.observability import METRICS_NAMESPACE

    with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=METRICS_NAMESPACE) as metric:
        for key, dimension in dimensions.items():
            metric.add_dimension(key, dimension)
