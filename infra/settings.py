"""Names and settings of the deployment, in one place.

Read from CDK context (`cdk.json`, or `-c key=value`) so one code base deploys dev, staging and
production side by side in one account: each stage is its own stack, and every resource given an explicit
name (the bus, the key alias, the lake's database and streams, the Athena work group, ...) carries the stage.
The default stage keeps the names of a first deployment (`EcrmPlatform`, bus `ecrm`), so deploying this
version over it replaces nothing.
"""

from __future__ import annotations

import re
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

DEFAULT_STAGE = "dev"
# Prefix and stage go into resource names: Glue and Athena want lower case, Firehose 64 characters at most.
NAME_PART = re.compile(r"(?=.{1,16}$)[a-z][a-z0-9]*(-[a-z0-9]+)*")

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

    alarm_email: str | None = None

    def __post_init__(self) -> None:
        for field, value in (("prefix", self.prefix), ("stage", self.stage)):
            if not NAME_PART.fullmatch(str(value)):
                raise ValueError(
                    f"ecrm:{field} {value!r}: use up to 16 lower-case letters, digits and inner hyphens, "
                    "starting with a letter (it becomes part of the stack's and the resources' names)"
                )
        if self.alarm_email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", self.alarm_email):
            raise ValueError(f"ecrm:alarmEmail {self.alarm_email!r} is not an email address")

    @property
    def resource_prefix(self) -> str:
        """How every explicitly named resource of this stage begins: `ecrm`, or `ecrm-<stage>` past the default."""
        return self.prefix if self.stage == DEFAULT_STAGE else f"{self.prefix}-{self.stage}"

    def name(self, suffix: str) -> str:
        """A physical name unique to this prefix and stage in the account and region: `ecrm-prod-<suffix>`."""
        return f"{self.resource_prefix}-{suffix}"

    @property
    def stack_name(self) -> str:
        """`EcrmPlatform` for the default stage, `EcrmPlatform-<stage>` for any other."""
        base = f"{self.prefix.title()}Platform"
        return base if self.stage == DEFAULT_STAGE else f"{base}-{self.stage}"

    @property
    def bus_name(self) -> str:
        return self.resource_prefix

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
