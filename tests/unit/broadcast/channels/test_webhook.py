"""Webhooks: a real receiver on 127.0.0.1 verifies the documented signature; statuses and faults are classified."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from ecrm.broadcast.channels.base import ChannelError, WebhookEndpoint
from ecrm.broadcast.channels.webhook import HttpResponse, WebhookAdapter
from ecrm.broadcast.tokens import verify_webhook_signature
from ecrm.core.clock import FixedClock

from tests.unit.broadcast.channels.fakes import CUSTOMER_ID, MESSAGE_ID, FakeEndpoints, message

SECRET = "whsec_local_test_secret"
NOW = datetime(2026, 11, 23, 10, 15, tzinfo=UTC)
PAYLOAD = {"event": "order_shipped", "order": "A-123", "note": "Émilie"}


class Receiver(BaseHTTPRequestHandler):
    """A customer's endpoint: verifies the signature as documented, answers the status it is told to."""

    answer = 200
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        signature = self.headers.get("X-Ecrm-Signature", "")
        self.received.append(
            {
                "path": self.path,
                "body": body,
                "message_id": self.headers.get("X-Ecrm-Message-Id"),
                "content_type": self.headers.get("Content-Type"),
                "verified": verify_webhook_signature(SECRET, signature, body, now=NOW),
            }
        )
        self.send_response(self.answer)
        if 300 <= self.answer < 400:
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.received = []
    Receiver.answer = 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks"
    server.shutdown()
    server.server_close()


def endpoints(url: str = "https://hooks.example.com/x", **extra: Any) -> FakeEndpoints:
    fields: dict[str, Any] = {
        "endpoint_id": "whk_1",
        "customer_id": CUSTOMER_ID,
        "url": url,
        "secret": SECRET,
        "enabled": True,
    } | extra
    return FakeEndpoints({"whk_1": WebhookEndpoint(**fields)})


def adapter(directory: FakeEndpoints, **extra: Any) -> WebhookAdapter:
    return WebhookAdapter(directory, clock=FixedClock(NOW), timeout_s=5, allow_loopback_http=True, **extra)


def test_the_receiver_verifies_the_signed_post(receiver: str) -> None:
    directory = endpoints(receiver)
    result = adapter(directory).send(message("webhook", "whk_1", {"payload": PAYLOAD}))

    [received] = Receiver.received
    assert received["verified"] is True
    assert json.loads(received["body"]) == PAYLOAD
    assert received["message_id"] == MESSAGE_ID
    assert received["content_type"] == "application/json"
    assert received["path"] == "/hooks"
    assert result.detail["status"] == "200"
    assert directory.outcomes == [("whk_1", True)]


@pytest.mark.parametrize(
    ("status", "permanent", "throttled"),
    [
        (500, False, False),
        (503, False, False),
        (408, False, False),
        (429, False, True),
        (400, True, False),
        (410, True, False),
        (301, True, False),
    ],
)
def test_a_status_other_than_2xx_is_classified(receiver: str, status: int, permanent: bool, throttled: bool) -> None:
    Receiver.answer = status
    directory = endpoints(receiver)
    with pytest.raises(ChannelError) as raised:
        adapter(directory).send(message("webhook", "whk_1", {"payload": PAYLOAD}))
    assert (raised.value.permanent, raised.value.throttled, raised.value.code) == (permanent, throttled, str(status))
    assert len(Receiver.received) == 1  # a redirect is not followed
    assert directory.outcomes == [("whk_1", False)]


def test_no_answer_is_transient_and_recorded() -> None:
    def refused(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> HttpResponse:
        raise TimeoutError("timed out")

    directory = endpoints("https://hooks.example.com/x")
    with pytest.raises(ChannelError) as raised:
        adapter(directory, http=refused).send(message("webhook", "whk_1", {"payload": PAYLOAD}))
    assert not raised.value.permanent
    assert directory.outcomes == [("whk_1", False)]


@pytest.mark.parametrize(
    ("address", "extra", "content", "code"),
    [
        ("whk_unknown", {}, {"payload": PAYLOAD}, "unknown_endpoint"),
        ("whk_1", {"enabled": False}, {"payload": PAYLOAD}, "endpoint_disabled"),
        ("whk_1", {"customer_id": "cus_other"}, {"payload": PAYLOAD}, "invalid_address"),
        ("whk_1", {"url": "http://hooks.example.com/x"}, {"payload": PAYLOAD}, "invalid_address"),
        ("whk_1", {"url": "ftp://127.0.0.1/x"}, {"payload": PAYLOAD}, "invalid_address"),
        ("whk_1", {}, {"payload": ["not", "an", "object"]}, "missing_content"),
    ],
)
def test_what_cannot_be_posted_is_permanent_and_nothing_is_sent(
    address: str, extra: dict[str, Any], content: dict[str, Any], code: str
) -> None:
    calls: list[str] = []

    def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> HttpResponse:
        calls.append(url)
        return HttpResponse(200)

    directory = endpoints(**({"url": "https://hooks.example.com/x"} | extra))
    with pytest.raises(ChannelError) as raised:
        adapter(directory, http=post).send(message("webhook", address, content))
    assert raised.value.permanent
    assert raised.value.code == code
    assert calls == []


def test_plain_http_to_loopback_needs_the_local_setting() -> None:
    directory = endpoints("http://127.0.0.1:9/x")
    strict = WebhookAdapter(directory, clock=FixedClock(NOW))
    with pytest.raises(ChannelError, match="https"):
        strict.send(message("webhook", "whk_1", {"payload": PAYLOAD}))
