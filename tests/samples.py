"""Loading the real sample events of `events/samples/` (see its README for what each one is).

Every call returns a fresh deep copy, so a test may change what it loaded without touching what
the next test sees.
"""

from __future__ import annotations

import copy
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "events" / "samples"


@cache
def _parsed(relative: str) -> Any:
    return json.loads((SAMPLES_DIR / relative).read_text(encoding="utf-8"))


def load_sample(relative: str) -> dict[str, Any]:
    """The sample at `relative` (e.g. "apigateway/rest_get_whoami_staff.json"), as a new dict."""
    return copy.deepcopy(_parsed(relative))


def sqs_batch(bodies: list[str], *, message_ids: list[str] | None = None) -> dict[str, Any]:
    """An SQS Lambda event shaped like `sqs/ping_requested_batch.json`, one record per body."""
    event = load_sample("sqs/ping_requested_batch.json")
    template = event["Records"][0]
    records = []
    for index, body in enumerate(bodies):
        record = copy.deepcopy(template)
        record["messageId"] = message_ids[index] if message_ids else f"00000000-0000-4000-8000-{index:012d}"
        record["receiptHandle"] = f"{template['receiptHandle'][:40]}{index}"
        record["body"] = body
        record["md5OfBody"] = hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()
        records.append(record)
    event["Records"] = records
    return event


def with_sqs_body(event: dict[str, Any], index: int, body: dict[str, Any]) -> dict[str, Any]:
    """`event` with the body of record `index` replaced by `body` (an EventBridge event)."""
    text = json.dumps(body, separators=(",", ":"))
    event["Records"][index]["body"] = text
    event["Records"][index]["md5OfBody"] = hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
    return event


def api_request(
    method: str,
    resource: str,
    *,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    body: Any = None,
    groups: str | None = "marketer",
    customer_id: str | None = None,
) -> dict[str, Any]:
    """A REST proxy event built from `apigateway/rest_get_whoami_staff.json` for another route.

    `groups` gives staff claims; `customer_id` (with `groups=None`) gives a customer's claims.
    """
    event = load_sample("apigateway/rest_get_whoami_staff.json")
    path = resource
    for name, value in (path_parameters or {}).items():
        path = path.replace("{" + name + "}", value)
    claims = event["requestContext"]["authorizer"]["claims"]
    if groups is None:
        claims.pop("cognito:groups", None)
    else:
        claims["cognito:groups"] = groups
    if customer_id is not None:
        claims["custom:customer_id"] = customer_id
    event.update(
        resource=resource,
        path=path,
        httpMethod=method,
        pathParameters=path_parameters,
        queryStringParameters=query,
        multiValueQueryStringParameters={k: [v] for k, v in query.items()} if query else None,
        body=None if body is None else (body if isinstance(body, str) else json.dumps(body)),
    )
    event["requestContext"].update(resourcePath=resource, httpMethod=method, path=f"/prod{path}")
    return event
