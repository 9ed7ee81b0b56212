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


# A synchronous Lambda invoke answers when the function returns, up to its own timeout (at most 15 minutes): a
# 10 s read timeout cut a slow but healthy answer (a campaign chunk's 100 requests to broadcast on a loaded
# machine) into an error the task did not retry. The caller's own timeout bounds the wait.
_LAMBDA_CONFIG = _CONFIG.merge(Config(read_timeout=900))


@cache
def client(service: str) -> Any:
    config = {"s3": _S3_CONFIG, "lambda": _LAMBDA_CONFIG}.get(service, _CONFIG)
    return boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]


@cache
def resource(service: str) -> Any:
    return boto3.session.Session().resource(service, config=_CONFIG)  # type: ignore[call-overload]
