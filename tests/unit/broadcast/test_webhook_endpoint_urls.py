"""Webhook endpoints are https; plain http only to 127.0.0.1 and only where the deployment allows it (the
local cloud, whose receivers are on the loopback address)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from ecrm.broadcast.models import WebhookEndpointIn
from ecrm.broadcast.service import MessageService
from ecrm.core.clock import FixedClock
from ecrm.core.errors import InvalidInput
from pydantic import ValidationError


class Endpoints:
    def __init__(self) -> None:
        self.saved: list[str] = []

    def put_endpoint(self, endpoint_id: str, *, url: str, secret: str, customer_id: str | None) -> None:
        self.saved.append(url)


def service(store: Any, *, allow: bool) -> MessageService:
    return MessageService(store, FixedClock(datetime(2026, 12, 7, tzinfo=UTC)), allow_loopback_http=allow)


def test_https_is_always_accepted_and_loopback_http_only_where_allowed() -> None:
    store = Endpoints()
    service(store, allow=False).add_endpoint(WebhookEndpointIn(url="https://hooks.example.com/in"))
    with pytest.raises(InvalidInput):
        service(store, allow=False).add_endpoint(WebhookEndpointIn(url="http://127.0.0.1:8080/hooks"))
    service(store, allow=True).add_endpoint(WebhookEndpointIn(url="http://127.0.0.1:8080/hooks"))
    assert store.saved == ["https://hooks.example.com/in", "http://127.0.0.1:8080/hooks"]


@pytest.mark.parametrize("url", ["http://hooks.example.com/in", "http://127.0.0.1.example.com/", "ftp://127.0.0.1/"])
def test_other_plain_urls_are_refused_by_the_body(url: str) -> None:
    with pytest.raises(ValidationError):
        WebhookEndpointIn(url=url)
