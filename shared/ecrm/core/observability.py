"""Logging, metrics and (optionally) tracing for a function, from one place.

Powertools Logger and Metrics are always on. The Tracer is behind `ECRM_TRACING` because importing
it (and the X-Ray SDK) adds roughly 300 ms to every cold start.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from ecrm.core.config import FunctionConfig

METRICS_NAMESPACE = "ecrm"

# A function that records no metric of its own on some invocation is normal here.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

Handler = Callable[[dict[str, Any], Any], Any]


class Observability:
    def __init__(self, config: FunctionConfig) -> None:
        self.service = config.powertools_service_name
        self.logger = Logger(service=self.service)
        self.metrics = Metrics(namespace=METRICS_NAMESPACE, service=self.service)
        self.tracer: Any = None
        if config.ecrm_tracing:
            from aws_lambda_powertools import Tracer

            self.tracer = Tracer(service=self.service)

    def entrypoint(self, *, correlation_id_path: str | None = None) -> Callable[[Handler], Handler]:
        """Decorate a Lambda handler: context in every log line, cold-start metric, optional trace."""

        def decorate(handler: Handler) -> Handler:
            wrapped: Handler = self.logger.inject_lambda_context(
                correlation_id_path=correlation_id_path, clear_state=True
            )(handler)
            wrapped = self.metrics.log_metrics(capture_cold_start_metric=True)(wrapped)
            if self.tracer is not None:
                wrapped = self.tracer.capture_lambda_handler(wrapped)
            return wrapped

        return decorate
