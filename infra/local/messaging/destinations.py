"""Where the emulated services deliver what AWS delivers asynchronously: SNS topics and Firehose.

Both are moto's own backends in this process (the local cloud runs its moto server in process), so
an SQS queue subscribed to the topic receives SNS's envelope exactly as it would from any publish.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


class DestinationMissing(LookupError):
    """The topic or stream an event was to be delivered to does not exist."""


def _arn_parts(arn: str) -> tuple[str, str, str]:
    """(region, account, resource) of an ARN."""
    parts = arn.split(":", 5)
    if len(parts) != 6:
        raise DestinationMissing(f"{arn!r} is not an ARN")
    return parts[3], parts[4], parts[5]


def publish_to_topic(topic_arn: str, message: str, *, subject: str | None = None) -> str:
    """Publish `message` to the SNS topic as SNS would (its subscriptions receive it); the message id."""
    from moto.sns.exceptions import SNSNotFoundError
    from moto.sns.models import sns_backends

    region, account, _ = _arn_parts(topic_arn)
    backend = sns_backends[account][region]
    try:
        backend.get_topic(topic_arn)
    except SNSNotFoundError:
        raise DestinationMissing(f"SNS topic {topic_arn} does not exist") from None
    return str(backend.publish(message, arn=topic_arn, subject=subject))


def put_to_firehose(stream_arn: str, data: bytes) -> None:
    """One record into the Firehose delivery stream (moto's delivery, or the local cloud's conversion)."""
    from moto.firehose.models import firehose_backends

    region, account, resource = _arn_parts(stream_arn)
    name = resource.split("/", 1)[-1]
    backend = firehose_backends[account][region]
    if name not in backend.delivery_streams:
        raise DestinationMissing(f"Firehose stream {stream_arn} does not exist")
    backend.put_record(name, {"Data": data})


def put_to_log_group(log_group_arn: str, message: str, timestamp_ms: int, stream: str) -> None:
    """One event into a CloudWatch Logs group (the stream is created when missing)."""
    from moto.logs.models import logs_backends

    region, account, resource = _arn_parts(log_group_arn)
    group = resource.removeprefix("log-group:").removesuffix(":*")
    backend: Any = logs_backends[account][region]
    if group not in backend.groups:
        raise DestinationMissing(f"log group {group} does not exist")
    if stream not in backend.groups[group].streams:
        backend.create_log_stream(group, stream)
    backend.put_log_events(group, stream, [{"timestamp": timestamp_ms, "message": message}])
