"""boto3 clients and resources, created once per process and shared.

The endpoint comes from the standard `AWS_ENDPOINT_URL` variable, which is how the embedded local
cloud points every function at its moto server; in AWS the variable is absent.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=3, read_timeout=10)


@cache
def client(service: str) -> Any:
    return boto3.session.Session().client(service, config=_CONFIG)  # type: ignore[call-overload]


@cache
def resource(service: str) -> Any:
    return boto3.session.Session().resource(service, config=_CONFIG)  # type: ignore[call-overload]
