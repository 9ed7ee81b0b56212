"""Webhooks: the message's payload POSTed as JSON to the customer's endpoint, signed.

Headers: `Content-Type: application/json`, `X-Ecrm-Message-Id` and `X-Ecrm-Signature: t=<unix
seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` (`ecrm.broadcast.tokens.webhook_signature`; the
receiver verifies it with `verify_webhook_signature`). The endpoint must be HTTPS (plain HTTP is
allowed to the loopback address only when configured, for tests and local runs); redirects are not
followed (a POST is not replayed elsewhere). The host's addresses are vetted at each send and the
connection goes to the vetted address (`pinned_http`): a name that now resolves inside the network is a
permanent failure, never a request there.

Outcomes: a 2xx is delivered; 408, 429, a 5xx, a timeout or a connection failure are retried by the
core (429 as throttling); any other status (a 3xx, a 4xx) is permanent. Each attempt is recorded on the
endpoint (`EndpointDirectory.record_outcome`), which the core disables after failures in a row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlsplit

from ecrm.broadcast.channels.base import ChannelError, EndpointDirectory, OutboundMessage, SendResult, require
from ecrm.broadcast.channels.pinned_http import HttpResponse, PinnedPoster, RefusedDestination
from ecrm.broadcast.tokens import webhook_signature
from ecrm.core.clock import Clock

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
USER_AGENT = "ecrm-webhooks/1"


class HttpPoster(Protocol):
    """POSTs `body` to `url`; answers the status (any status, 4xx and 5xx included), raises on no answer."""

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> HttpResponse: ...


def classify_status(status: int) -> ChannelError | None:
    if 200 <= status < 300:
        return None
    reason = f"webhook endpoint answered {status}"
    if status == 429:
        return ChannelError(reason, permanent=False, throttled=True, code=str(status))
    if status == 408 or status >= 500:
        return ChannelError(reason, permanent=False, code=str(status))
    return ChannelError(reason, permanent=True, code=str(status))


class WebhookAdapter:
    channel = "webhook"

    def __init__(
        self,
        endpoints: EndpointDirectory,
        *,
        clock: Clock,
        http: HttpPoster | None = None,
        timeout_s: float = 5.0,
        allow_loopback_http: bool = False,
    ) -> None:
        self.endpoints = endpoints
        self.clock = clock
        self.http = http or PinnedPoster(allow_loopback=allow_loopback_http)
        self.timeout_s = timeout_s
        self.allow_loopback_http = allow_loopback_http

    def _check_url(self, url: str) -> None:
        parts = urlsplit(url)
        secure = parts.scheme == "https"
        loopback = parts.scheme == "http" and self.allow_loopback_http and parts.hostname in _LOOPBACK
        require(bool(parts.hostname) and (secure or loopback), "a webhook URL must be https", code="invalid_address")

    def send(self, message: OutboundMessage) -> SendResult:
        endpoint = self.endpoints.endpoint(message.address)
        require(endpoint is not None, f"no webhook endpoint {message.address}", code="unknown_endpoint")
        assert endpoint is not None
        require(endpoint.enabled, f"webhook endpoint {endpoint.endpoint_id} is disabled", code="endpoint_disabled")
        require(
            endpoint.customer_id in (None, message.customer_id),
            "the webhook endpoint belongs to another customer",
            code="invalid_address",
        )
        self._check_url(endpoint.url)
        payload = message.content.get("payload")
        require(isinstance(payload, Mapping), "webhook content needs a payload object", code="missing_content")
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")
        timestamp = int(self.clock.now().timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Ecrm-Message-Id": message.message_id,
            "X-Ecrm-Signature": webhook_signature(endpoint.secret, timestamp, body),
        }
        try:
            response = self.http(endpoint.url, body, headers, self.timeout_s)
        except RefusedDestination as exc:  # the name now points inside the network: not called, not retried
            self.endpoints.record_outcome(endpoint.endpoint_id, ok=False)
            raise ChannelError(str(exc), permanent=True, code="invalid_address") from exc
        except Exception as exc:  # no answer (timeout, refused, DNS, TLS): retried by the core
            self.endpoints.record_outcome(endpoint.endpoint_id, ok=False)
            raise ChannelError(f"webhook endpoint unreachable: {type(exc).__name__}", permanent=False) from exc
        error = classify_status(response.status)
        self.endpoints.record_outcome(endpoint.endpoint_id, ok=error is None)
        if error is not None:
            raise error
        return SendResult(provider_message_id=None, detail={"status": str(response.status), "endpoint": endpoint.url})
