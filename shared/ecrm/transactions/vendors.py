"""Talking to vendors: signed HTTPS requests out, signed callbacks in.

Both directions carry `X-Ecrm-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
with the secret the vendor was registered with. The timestamp is signed, so a captured request cannot be
replayed outside `tolerance_s`; within it, a replayed callback is harmless because the purchase it names
has already moved (the service answers it as a replay).

Requests, each a JSON POST under the vendor's endpoint, keyed by our purchase id so a retry is the same
request to the vendor:
- `/reservations` `{purchase_id, product_id, quantity}` -> 2xx `{"reference": ...}`;
- `/confirmations` `{purchase_id, reservation_reference, payment_reference, total_minor, currency,
  callback_url}` -> 2xx; the vendor answers later at `callback_url` (`POST /vendors/{id}/callbacks`);
- `/releases` `{purchase_id}` -> 2xx, or 404 when it holds nothing for it (nothing to release).
A 408, 429, 5xx, timeout or connection failure is `VendorUnavailable` (the saga retries); any other answer
is `VendorRefused` (the saga compensates). Endpoints are HTTPS; plain HTTP only to the loopback address
when configured (local runs and tests). Redirects are not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from ecrm.core.clock import Clock
from ecrm.transactions.models import Purchase

SIGNATURE_HEADER = "X-Ecrm-Signature"
DEFAULT_TOLERANCE_S = 300
USER_AGENT = "ecrm-purchases/1"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class VendorRefused(Exception):
    """The vendor said no (or answered something we cannot use): compensate, do not retry."""


class VendorUnavailable(Exception):
    """The vendor did not answer usefully this time: the saga retries the step."""


@dataclass(frozen=True)
class VendorEndpoint:
    vendor_id: str
    endpoint: str
    secret: str


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes = b""


class HttpPoster(Protocol):
    """POSTs `body` to `url`; answers any status; raises `OSError` when there is no answer."""

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> HttpAnswer: ...


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def urllib_post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> HttpAnswer:
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, data=body, method="POST", headers=dict(headers))  # noqa: S310 - checked scheme
    try:
        with opener.open(request, timeout=timeout) as response:
            return HttpAnswer(response.status, response.read(65536))
    except urllib.error.HTTPError as exc:
        return HttpAnswer(exc.code, exc.read(65536) if exc.fp else b"")


def _hex(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Ecrm-Signature` value for `body` sent at `timestamp` (Unix seconds)."""
    return f"t={timestamp},v1={_hex(secret, timestamp, body)}"


def verify_signature(secret: str, header: str | None, body: bytes, *, now_s: float, tolerance_s: int) -> bool:
    """Whether `header` signs `body` with `secret`, stamped within `tolerance_s` of `now_s` (either side)."""
    if not header:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif name == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates or abs(now_s - timestamp) > tolerance_s:
        return False
    expected = _hex(secret, timestamp, body).encode()
    return any(hmac.compare_digest(expected, c.encode("utf-8", "replace")) for c in candidates)


def key_id(secret: str) -> str:
    """A short fingerprint of a secret: tells which one is configured without showing it."""
    return hashlib.sha256(b"ecrm-vendor-key\n" + secret.encode("utf-8")).hexdigest()[:12]


def check_endpoint(endpoint: str, *, allow_loopback_http: bool) -> None:
    parts = urlsplit(endpoint)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and allow_loopback_http and parts.hostname in _LOOPBACK:
        return
    raise ValueError("a vendor endpoint is an https:// URL")


class VendorClient:
    """The signed requests of the saga's vendor steps."""

    def __init__(
        self,
        clock: Clock,
        *,
        http: HttpPoster = urllib_post,
        timeout_s: float = 5.0,
        allow_loopback_http: bool = False,
    ) -> None:
        self.clock = clock
        self.http = http
        self.timeout_s = timeout_s
        self.allow_loopback_http = allow_loopback_http

    def reserve(self, vendor: VendorEndpoint, purchase: Purchase) -> str:
        answer = self._post(
            vendor,
            "reservations",
            {"purchase_id": purchase.purchase_id, "product_id": purchase.product_id, "quantity": purchase.quantity},
        )
        reference = _json(answer).get("reference")
        return str(reference) if reference else purchase.purchase_id

    def request_confirmation(self, vendor: VendorEndpoint, purchase: Purchase, callback_url: str) -> None:
        self._post(
            vendor,
            "confirmations",
            {
                "purchase_id": purchase.purchase_id,
                "reservation_reference": purchase.reservation_ref,
                "payment_reference": purchase.payment_ref,
                "total_minor": purchase.total_minor,
                "currency": purchase.currency,
                "callback_url": callback_url,
            },
        )

    def release(self, vendor: VendorEndpoint, purchase_id: str) -> None:
        self._post(vendor, "releases", {"purchase_id": purchase_id}, nothing_there_is_fine=True)

    def _post(
        self, vendor: VendorEndpoint, path: str, payload: dict[str, Any], *, nothing_there_is_fine: bool = False
    ) -> HttpAnswer:
        try:
            check_endpoint(vendor.endpoint, allow_loopback_http=self.allow_loopback_http)
        except ValueError as exc:
            raise VendorRefused(f"vendor {vendor.vendor_id}: {exc}") from None
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature(vendor.secret, int(self.clock.now().timestamp()), body),
        }
        url = vendor.endpoint.rstrip("/") + "/" + path
        try:
            answer = self.http(url, body, headers, self.timeout_s)
        except (OSError, TimeoutError) as exc:
            raise VendorUnavailable(f"vendor {vendor.vendor_id} did not answer {path}: {exc}") from None
        if 200 <= answer.status < 300 or (nothing_there_is_fine and answer.status == 404):
            return answer
        reason = f"vendor {vendor.vendor_id} answered {answer.status} to {path}"
        if answer.status in (408, 429) or answer.status >= 500:
            raise VendorUnavailable(reason)
        raise VendorRefused(reason)


def _json(answer: HttpAnswer) -> dict[str, Any]:
    try:
        value = json.loads(answer.body or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
