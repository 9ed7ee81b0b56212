"""S3 -> EventBridge notifications as Amazon S3 sends them, for the local cloud.

moto 5.2.5 already sends an event to EventBridge when a bucket's notification configuration has
`EventBridgeConfiguration`, for `PutObject` (presigned or not), POST uploads, `CopyObject` and
`CompleteMultipartUpload`, and rule patterns (prefix included) match it. But the event is not the
one S3 sends, and a consumer written against the local one would break in AWS:

- every event has the same `id`, so idempotency keyed on it drops every upload after the first;
- `detail.reason` is `ObjectCreated` instead of `PutObject` / `POST Object` / `CopyObject` /
  `CompleteMultipartUpload`, and `detail.object.eTag` is spelled `etag` in AWS;
- `request-id`, `sequencer`, `source-ip-address` are constants, `version-id` is `"null"` on an
  unversioned bucket (AWS leaves it out) and the key is not URL-encoded (AWS encodes it like
  `quote_plus`, `/` kept: consumers `unquote_plus` it, as Powertools' data class does);
- it goes to every rule of every bus: custom buses, disabled rules and scheduled rules (an empty
  pattern matches anything) included (AWS: the enabled pattern rules of the default bus); a Step
  Functions target makes moto raise, which drops it and the rule's later targets silently;
- every `PutObject` is followed by an "Object Tags Added" event (AWS: only `PutObjectTagging`),
  and `CompleteMultipartUpload` sends a `PutObject` event before its own.

`install()` replaces moto's sender in this process (the local cloud runs its moto server in
process) with one that builds S3's event and delivers it to the default bus's matching rules
(SQS and Step Functions targets, with `Input`, `InputPath` or `InputTransformer` applied).
Delivery is synchronous (AWS: usually within seconds), so the message is queued when the upload's
response arrives.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import quote_plus

logger = logging.getLogger(__name__)

DEFAULT_BUS = "default"

# s3:ObjectCreated:Put -> the API S3 names in `detail.reason`.
REASONS = {
    "s3:ObjectCreated:Put": "PutObject",
    "s3:ObjectCreated:Post": "POST Object",
    "s3:ObjectCreated:Copy": "CopyObject",
    "s3:ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
    "s3:ObjectRemoved:Delete": "DeleteObject",
    "s3:ObjectRemoved:DeleteMarkerCreated": "DeleteObject",
    "s3:LifecycleExpiration:Delete": "Lifecycle Expiration",
    "s3:LifecycleExpiration:DeleteMarkerCreated": "Lifecycle Expiration",
}
DELETION_TYPES = {
    "s3:ObjectRemoved:Delete": "Permanently Deleted",
    "s3:ObjectRemoved:DeleteMarkerCreated": "Delete Marker Created",
    "s3:LifecycleExpiration:Delete": "Permanently Deleted",
    "s3:LifecycleExpiration:DeleteMarkerCreated": "Delete Marker Created",
}
LOCAL_SOURCE_IP = "127.0.0.1"  # the local cloud's moto server only listens there

_installed = False
_install_lock = threading.Lock()
_sequencer_lock = threading.Lock()
_last_sequencer = 0
# The S3 operation moto is serving, where moto's internal calls would send events S3 does not.
_operation: contextvars.ContextVar[str] = contextvars.ContextVar("s3_operation", default="")


def object_event(
    *,
    event_name: str,
    detail_type: str,
    account: str,
    region: str,
    bucket: str,
    key: str,
    size: int | None = None,
    etag: str | None = None,
    version_id: str | None = None,
    occurred_at: float | None = None,
) -> dict[str, Any]:
    """The event S3 puts on the default bus."""
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/")}
    created = event_name.startswith("s3:ObjectCreated:")
    deleted = event_name.startswith(("s3:ObjectRemoved:", "s3:LifecycleExpiration:"))
    if not deleted:
        if size is not None:
            obj["size"] = size
        if etag:
            obj["etag"] = etag.strip('"')
    if version_id:
        obj["version-id"] = version_id
    if created or deleted:
        obj["sequencer"] = _next_sequencer()
    detail: dict[str, Any] = {"version": "0", "bucket": {"name": bucket}, "object": obj}
    if event_name.startswith("s3:LifecycleExpiration:"):
        detail.update({"request-id": _request_id(), "requester": "s3.amazonaws.com"})
    else:
        detail.update({"request-id": _request_id(), "requester": account, "source-ip-address": LOCAL_SOURCE_IP})
    if event_name in REASONS:
        detail["reason"] = REASONS[event_name]
    if event_name in DELETION_TYPES:
        detail["deletion-type"] = DELETION_TYPES[event_name]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.s3",
        "account": account,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(occurred_at)),
        "region": region,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": detail,
    }


def deliver(event: dict[str, Any]) -> int:
    """Send `event` to the targets of the default bus's enabled pattern rules it matches.

    SQS queues and Step Functions state machines are served, with a target's `Input`,
    `InputPath` or `InputTransformer` applied; returns how many rules matched.
    """
    from moto.events.models import events_backends

    bus = events_backends[event["account"]][event["region"]].event_buses.get(DEFAULT_BUS)
    if bus is None:
        return 0
    matched = 0
    for rule in list(bus.rules.values()):
        if rule.state != "ENABLED" or not rule.event_pattern.get_pattern():
            continue  # disabled, or a scheduled rule: S3 events never reach those
        if not rule.event_pattern.matches_event(cast(Any, event)):
            continue
        matched += 1
        for target in rule.targets:
            _send(target, event)
    return matched


def install() -> None:
    """Make moto's S3 -> EventBridge notifications look like S3's (idempotent, process-wide)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        from moto.s3 import notifications
        from moto.s3.models import S3Backend
        from moto.s3.responses import S3Response

        notifications._send_event_bridge_message = _send_event_bridge_message
        S3Response.put_object_tagging = _within("PutObjectTagging", S3Response.put_object_tagging)  # type: ignore[method-assign]
        S3Backend.complete_multipart_upload = _within(  # type: ignore[method-assign]
            "CompleteMultipartUpload", S3Backend.complete_multipart_upload
        )
        _installed = True


def _send_event_bridge_message(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
    from moto.s3.notifications import _detail_type

    event_name = str(getattr(event_name, "value", event_name))  # moto passes its str Enum
    operation = _operation.get()
    if event_name == "s3:ObjectTagging:Put" and operation != "PutObjectTagging":
        return  # moto tags every new object; S3 only notifies PutObjectTagging
    if event_name == "s3:ObjectCreated:Put" and operation == "CompleteMultipartUpload":
        return  # moto stores the completed object with put_object; S3 sends one event, below
    event = object_event(
        event_name=event_name,
        detail_type=_detail_type(event_name),
        account=account_id,
        region=bucket.region_name,
        bucket=bucket.name,
        key=key.name,
        size=getattr(key, "size", None),
        etag=getattr(key, "etag", None),
        version_id=key.version_id if bucket.is_versioned else None,
    )
    try:
        deliver(event)
    except Exception:  # S3 never fails the request because its notification could not go out
        logger.exception("S3 -> EventBridge: could not deliver %s for s3://%s/%s", event_name, bucket.name, key.name)


def _send(target: dict[str, Any], event: dict[str, Any]) -> None:
    _, _, service, region, account, resource = target["Arn"].split(":", 5)
    body = _payload(target, event)
    if service == "sqs":
        from moto.sqs.models import sqs_backends

        group_id = target.get("SqsParameters", {}).get("MessageGroupId")
        sqs_backends[account][region].send_message(
            queue_name=resource,
            message_body=body,
            group_id=group_id,
            deduplication_id=event["id"] if group_id else None,
        )
    elif service == "states":
        from moto.stepfunctions.responses import get_backend

        get_backend(account, region).start_execution(target["Arn"], name=str(uuid.uuid4()), execution_input=body)


def _payload(target: dict[str, Any], event: dict[str, Any]) -> str:
    if "Input" in target:
        return str(target["Input"])
    if "InputPath" in target:
        value: Any = event
        for part in [p for p in str(target["InputPath"]).removeprefix("$").split(".") if p]:
            value = value.get(part) if isinstance(value, dict) else None
        return json.dumps(value)
    if "InputTransformer" in target:
        from moto.events.utils import EventTemplateParser

        transformer = target["InputTransformer"]
        return json.dumps(
            EventTemplateParser.parse(
                input_template=transformer.get("InputTemplate"),
                input_paths_map=transformer.get("InputPathsMap", {}),
                event=cast(Any, {**event, "ingestion-time": event["time"]}),
            )
        )
    return json.dumps(event)


def _within(operation: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = _operation.set(operation)
        try:
            return method(*args, **kwargs)
        finally:
            _operation.reset(token)

    return wrapper


def _request_id() -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16))


def _next_sequencer() -> str:
    """Hexadecimal and increasing, as S3's sequencer is for the events of one key."""
    global _last_sequencer
    with _sequencer_lock:
        _last_sequencer = max(_last_sequencer + 1, time.time_ns())
        return f"{_last_sequencer:018X}"
