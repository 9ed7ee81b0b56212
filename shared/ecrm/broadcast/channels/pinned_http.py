"""The webhook's HTTP client: the host's addresses vetted at send time, and the connection made to the address
that was vetted.

A webhook endpoint's URL is checked when it is registered (`ecrm.broadcast.service.refused_webhook_host`: no
internal name, no private or loopback literal), but a public name can resolve to a private address later:
a DNS record changed after registration, or a resolver that answers differently from one lookup to the
next (DNS rebinding). The sender runs inside the deployment's network, so such an answer would turn a
customer's webhook into a request to the instance metadata (169.254.169.254) or an internal service.

So every send resolves the host, refuses when any of its addresses is not public (`RefusedDestination`, a
permanent failure), and connects to the first vetted address itself, the TLS handshake still naming the
host (SNI, certificate check) and the request still carrying its `Host`: the client never resolves the name
a second time. Redirects are not followed (a 3xx is an answer).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

Resolver = Callable[[str, int], list[str]]


class RefusedDestination(Exception):
    """The endpoint's host resolves to an address the platform does not call (private, loopback, reserved)."""


def resolve(host: str, port: int) -> list[str]:
    """Every address the system's resolver gives for the host, in its order, once each."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def vetted_address(host: str, port: int, *, allow_loopback: bool = False, resolver: Resolver = resolve) -> str:
    """The address to connect to: the first the resolver gives, when every one of them is public (a name with one
    private address among public ones could be answered with it on the next lookup)."""
    addresses = resolver(host, port)
    if not addresses:
        raise OSError(f"{host} has no address")
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if allow_loopback and address.is_loopback:
            continue
        if not address.is_global or address.is_multicast:
            raise RefusedDestination(f"the webhook host {host} resolves to a non-public address ({address})")
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self.tls)
        self.address = address

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)


@dataclass(frozen=True)
class HttpResponse:
    status: int


@dataclass(frozen=True)
class PinnedPoster:
    """POSTs to a webhook URL through the vetted address; answers any status, raises when there is no answer
    (`OSError`, `http.client.HTTPException`) or the host is refused (`RefusedDestination`)."""

    allow_loopback: bool = False
    resolver: Resolver = resolve

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> HttpResponse:
        parts = urlsplit(url)
        host = parts.hostname or ""
        secure = parts.scheme == "https"
        port = parts.port or (443 if secure else 80)
        address = vetted_address(host, port, allow_loopback=self.allow_loopback, resolver=self.resolver)
        kind = _PinnedHTTPSConnection if secure else _PinnedHTTPConnection
        connection = kind(host, port, address, timeout)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request("POST", target, body=body, headers=dict(headers))
            response = connection.getresponse()
            response.read(65536)
            return HttpResponse(status=response.status)
        finally:
            connection.close()
