"""What every test suite shares: the function environment and a Lambda context.

The function modules read their configuration with `load_config` at import, so the environment
is set here, at module top, before any test module imports them (this also holds in every
pytest-xdist worker, each of which imports this file first). Real values already in the
environment win, which is what the e2e suite relies on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from ecrm.core.clock import FixedClock

for _name, _value in {
    "EVENT_BUS_NAME": "ecrm",
    "PLATFORM_TABLE_NAME": "ecrm-platform",
    "CUSTOMERS_TABLE_NAME": "ecrm-customers",
    "IMPORT_BUCKET_NAME": "ecrm-imports",
    "COLLECT_TABLE_NAME": "ecrm-collect",
    "ANALYSIS_TABLE_NAME": "ecrm-analysis",
    "PERSONALIZATION_TABLE_NAME": "ecrm-personalization",
    "BROADCAST_TABLE_NAME": "ecrm-broadcast",
    "TRANSACTIONS_TABLE_NAME": "ecrm-transactions",
    "CAMPAIGNS_TABLE_NAME": "ecrm-campaigns",
    "INSIGHTS_TABLE_NAME": "ecrm-insights",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "platform",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
}.items():
    os.environ.setdefault(_name, _value)

# The instant the sample events were captured (events/samples/README.md), one second later.
SAMPLE_NOW = datetime(2026, 11, 23, 10, 15, 31, tzinfo=UTC)


def pytest_configure(config: pytest.Config) -> None:
    # A handler that only reports the cold-start metric is normal; the warning is noise here.
    config.addinivalue_line("filterwarnings", "ignore:No application metrics to publish:UserWarning")


@dataclass(frozen=True)
class FakeLambdaContext:
    """The attributes Powertools reads from a Lambda context."""

    function_name: str = "ecrm-test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ecrm-test-function"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    log_group_name: str = "/aws/lambda/ecrm-test-function"
    log_stream_name: str = "2026/11/23/[$LATEST]00000000000000000000000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def fixed_clock() -> FixedClock:
    return FixedClock(SAMPLE_NOW)
