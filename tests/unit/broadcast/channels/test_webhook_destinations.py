"""A webhook's host is vetted at every send and the request goes to the vetted address: a public name that now
resolves inside the network (a changed record, DNS rebinding) is refused for good and nothing is sent; a name
resolved once is connected to at that address, with its own `Host`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from ecrm.broadcast.channels.base import ChannelError
from ecrm.broadcast.channels.pinned_http import PinnedPoster, RefusedDestination, vetted_address
from ecrm.broadcast.channels.webhook import WebhookAdapter
from ecrm.core.clock import FixedClock

from tests.unit.broadcast.channels.fakes import message
from tests.unit.broadcast.channels.test_webhook import PAYLOAD, endpoints

NOW = datetime(2026, 11, 23, 10, 15, tzinfo=UTC)


def answering(*addresses: str) -> Any:
    asked: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return list(addresses)

    resolver.asked = asked  # type: ignore[attr-defined]
    return resolver


@pytest.mark.parametrize(
    "addresses",
    [
        ("169.254.169.254",),  # the instance metadata
        ("10.0.0.5",),
        ("93.184.216.34", "192.168.1.10"),  # one private answer among public ones
        ("::ffff:10.1.2.3",),  # IPv4 inside IPv6
        ("fd00::1",),
        ("127.0.0.1",),
        ("0.0.0.0",),
    ],
)
def test_a_name_resolving_inside_the_network_is_refused(addresses: tuple[str, ...]) -> None:
    with pytest.raises(RefusedDestination):
        vetted_address("hooks.example.com", 443, resolver=answering(*addresses))


def test_a_public_name_is_connected_to_at_its_first_address() -> None:
    assert vetted_address("hooks.example.com", 443, resolver=answering("93.184.216.34", "2606:2800::1")) == (
        "93.184.216.34"
    )


def test_loopback_only_when_the_local_setting_allows_it() -> None:
    assert vetted_address("localhost", 80, allow_loopback=True, resolver=answering("127.0.0.1", "::1")) == "127.0.0.1"
    with pytest.raises(RefusedDestination):
        vetted_address("localhost", 80, allow_loopback=True, resolver=answering("127.0.0.1", "10.0.0.1"))


class Receiver(BaseHTTPRequestHandler):
    hosts: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.hosts.append(self.headers.get("Host", ""))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def port() -> Iterator[int]:
    Receiver.hosts = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_the_request_goes_to_the_vetted_address_under_its_own_name(port: int) -> None:
    # Given a name the system resolver does not know, answered once by the vetting resolver with the receiver
    resolver = answering("127.0.0.1")
    poster = PinnedPoster(allow_loopback=True, resolver=resolver)

    # When a webhook is posted to it
    answer = poster(f"http://hooks.invalid:{port}/x?y=1", b"{}", {"Content-Type": "application/json"}, 5)

    # Then the connection went to the vetted address (the name was resolved once, by the vetting) and the
    # request still names its host
    assert answer.status == 204
    assert resolver.asked == ["hooks.invalid"]
    assert Receiver.hosts == [f"hooks.invalid:{port}"]


def test_a_refused_host_is_a_permanent_failure_recorded_on_the_endpoint(port: int) -> None:
    # Given an endpoint registered with a public name, which now resolves to a private address
    directory = endpoints("https://hooks.example.com/x")
    poster = PinnedPoster(resolver=answering("10.0.0.7"))
    adapter = WebhookAdapter(directory, clock=FixedClock(NOW), http=poster)

    # When a message is sent to it, nothing is sent, the failure is permanent and counted on the endpoint
    with pytest.raises(ChannelError) as raised:
        adapter.send(message("webhook", "whk_1", {"payload": PAYLOAD}))
    assert (raised.value.permanent, raised.value.code) == (True, "invalid_address")
    assert directory.outcomes == [("whk_1", False)]
    assert Receiver.hosts == []
