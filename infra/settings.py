"""Names and settings of the deployment, in one place.

Read from CDK context (`cdk.json`, or `-c key=value`) so one code base deploys dev, staging and
production side by side in one account.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_

REPO_ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = REPO_ROOT / "functions"
LAYERS_DIR = REPO_ROOT / "layers"
PACKAGE_DIR = REPO_ROOT / "shared" / "ecrm"

# The Lambda runtime and architecture. Our code also runs on Python 3.11 (the CLI, tests, the
# local cloud); layers are bundled for the runtime below, not for the machine running synth.
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_14
LAMBDA_PYTHON_VERSION = "3.14"
LAMBDA_ARCHITECTURE = lambda_.Architecture.ARM_64
PIP_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")

STAFF_GROUPS = ("admin", "marketer", "analyst", "agent")

# CloudFormation allows 500 resources per template; each of ours (the root and one per engine) stays
# under this, so an engine can grow without a scramble (`make synth` prints the counts, a test enforces it).
TEMPLATE_RESOURCE_LIMIT = 400


@dataclass(frozen=True)
class DeploymentSettings:
    prefix: str = "ecrm"
    stage: str = "dev"
    tracing: bool = False
    retain_data: bool = True
    log_retention_days: int = 30
    api_rate_limit: int = 1000
    api_burst_limit: int = 2000
    selfcheck_schedule: str = "rate(1 hour)"

    @property
    def bus_name(self) -> str:
        return self.prefix

    @property
    def removal_policy(self) -> cdk.RemovalPolicy:
        return cdk.RemovalPolicy.RETAIN if self.retain_data else cdk.RemovalPolicy.DESTROY

    @classmethod
    def from_context(cls, node: Any) -> DeploymentSettings:
        def get(key: str, default: Any) -> Any:
            value = node.try_get_context(f"ecrm:{key}")
            if value is None:
                return default
            if isinstance(default, bool) and isinstance(value, str):
                return value.lower() in {"1", "true", "yes"}
            if isinstance(default, int) and not isinstance(default, bool):
                return int(value)
            return value

        defaults = cls()
        return cls(**{f: get(_camel(f), getattr(defaults, f)) for f in cls.__dataclass_fields__})


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
