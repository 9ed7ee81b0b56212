"""A small JSON-over-HTTP client for the operator's tools (the importer, the tour, the e2e tests).

The standard library only: it talks to the local cloud on 127.0.0.1 or to a deployed API, and the
caller reads the status, the headers and the parsed body, whatever the status was.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: Any


def http(
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: Any = None,
    timeout: float = 30,
    headers: Mapping[str, str] | None = None,
) -> HttpResult:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - 127.0.0.1 only
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", token)
    for name, value in (headers or {}).items():  # Idempotency-Key, a vendor's signature, ...
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, headers, raw = error.code, dict(error.headers), error.read()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return HttpResult(status, headers, parsed)
