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


# Presigned S3 URLs must be SigV4 (what every region accepts, and what the local cloud verifies).
_S3_CONFIG = _CONFIG.merge(Config(signature_version="s3v4", s3={"addressing_style": "path"}))


@cache
def client(service: str) -> Any:
    config = _S3_CONFIG if service == "s3" else _CONFIG
    return boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]


@cache
def resource(service: str) -> Any:
    return boto3.session.Session().resource(service, config=_CONFIG)  # type: ignore[call-overload]
