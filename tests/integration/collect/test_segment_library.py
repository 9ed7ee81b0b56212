"""The real analytics-python library, pointed at this API, works by changing only host and write key.

A small HTTP server on 127.0.0.1 turns each request into the API Gateway proxy event the function
receives in the cloud; the function runs in process against moto.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from ecrm.collect.service import CollectService
from segment.analytics import Client
from segment.analytics.request import APIError

from functions.collect import api
from tests.integration.collect.conftest import staff_request, tracking_request
from tests.unit.fakes import FakeEventsClient


@pytest.fixture
def endpoint(service: CollectService, lambda_context: Any) -> Iterator[str]:
    class Gateway(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            event = tracking_request(self.path, None)
            headers = {k: v for k, v in self.headers.items()}
            event.update(headers=headers, multiValueHeaders={k: [v] for k, v in headers.items()})
            try:
                event.update(body=raw.decode(), isBase64Encoded=False)
            except UnicodeDecodeError:
                event.update(body=base64.b64encode(raw).decode(), isBase64Encoded=True)
            response = api.handler(event, lambda_context, api.Deps(service))
            body = (response.get("body") or "").encode()
            self.send_response(response["statusCode"])
            for name, values in (response.get("multiValueHeaders") or {}).items():
                for value in values:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def write_key(call: Any) -> str:
    return str(call(staff_request("POST", "/sources", body={"name": "backend", "kind": "server"})).body["write_key"])


@pytest.mark.parametrize("gzip", [False, True])
def test_analytics_python_delivers_its_calls(endpoint: str, write_key: str, bus: FakeEventsClient, gzip: bool) -> None:
    # Given the stock library, configured with this platform's endpoint and a source's write key
    client = Client(write_key, host=endpoint, sync_mode=True, gzip=gzip, max_retries=0)
    # When the backend sends its calls
    client.identify("u-42", {"email": "ada@example.com"}, message_id="py-1")
    client.track("u-42", "Order Completed", {"revenue": 42.5}, message_id="py-2")
    client.page("u-42", "Docs", "Getting started", message_id="py-3")
    client.group("u-42", "acme", message_id="py-4")
    client.alias("anon-7", "u-42", message_id="py-5")
    client.screen("u-42", "App", "Home", message_id="py-6")
    # Then each arrived once, as its domain event, with the library's context and corrected times
    types = [e["DetailType"] for e in bus.accepted]
    assert types == [
        "UserIdentified",
        "TrackEventReceived",
        "PageViewed",
        "GroupIdentified",
        "UserAliased",
        "ScreenViewed",
    ]
    messages = [json.loads(e["Detail"])["data"]["message"] for e in bus.accepted]
    assert [m["message_id"] for m in messages] == [f"py-{n}" for n in range(1, 7)]
    assert messages[0]["context"]["library"]["name"] == "analytics-python"
    assert messages[1]["properties"] == {"revenue": 42.5}
    assert messages[4]["previous_id"] == "anon-7"
    assert all(m["source_name"] == "backend" for m in messages)


def test_analytics_python_sees_a_wrong_key_as_401(endpoint: str, write_key: str) -> None:
    client = Client(write_key + "x", host=endpoint, sync_mode=True, max_retries=0)
    with pytest.raises(APIError) as raised:
        client.track("u-42", "Order Completed")
    assert raised.value.status == 401
