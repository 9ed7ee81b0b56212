"""The broadcast REST handler with injected services on moto: routes, groups, problems, `/me`, the link pages."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.broadcast import api
from tests.integration.broadcast.conftest import Engine
from tests.samples import api_request

EMAIL = {"email": {"subject": "Hello {{ first_name }}", "text": "Hi"}}


@pytest.fixture
def call(engine: Engine, lambda_context: Any) -> Any:
    deps = api.Deps(engine.messages, engine.centre)

    def invoke(event: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, Any]]:
        if headers:
            event["headers"] = {**(event.get("headers") or {}), **headers}
            event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
        handler: Any = api.handler
        response = handler(event, lambda_context, deps)
        body = response.get("body")
        content_type = (response.get("headers") or {}).get("Content-Type", "")
        if not content_type:
            content_type = ((response.get("multiValueHeaders") or {}).get("Content-Type") or [""])[0]
        parsed = json.loads(body) if body and "json" in content_type else body
        return response["statusCode"], parsed, response

    return invoke


def test_a_message_is_accepted_once_per_key_and_a_reused_key_is_a_422(engine: Engine, call: Any) -> None:
    body = {"customer_id": "c1", "purpose": "marketing", "content": EMAIL}
    status, first, _ = call(api_request("POST", "/messages", body=body), {"Idempotency-Key": "k-1"})
    assert (status, first["status"]) == (202, "requested")
    status, again, _ = call(api_request("POST", "/messages", body=body), {"Idempotency-Key": "k-1"})
    assert (status, again["message_id"]) == (202, first["message_id"])
    changed = {**body, "data": {"x": 1}}
    status, problem, _ = call(api_request("POST", "/messages", body=changed), {"Idempotency-Key": "k-1"})
    assert (status, problem["type"].rsplit("/", 1)[1]) == (422, "idempotency-key-reused")
    status, view, _ = call(
        api_request("GET", "/messages/{message_id}", path_parameters={"message_id": first["message_id"]})
    )
    assert (status, view["status"], view["source"]) == (200, "requested", "api:k-1")
    status, page, _ = call(
        api_request("GET", "/customers/{customer_id}/messages", path_parameters={"customer_id": "c1"})
    )
    assert [m["message_id"] for m in page["items"]] == [first["message_id"]]


def test_bad_bodies_and_callers_are_refused_with_problems(call: Any) -> None:
    status, problem, _ = call(
        api_request(
            "POST", "/messages", body={"customer_id": "c1", "purpose": "marketing", "content": {"email": {"text": "x"}}}
        )
    )
    assert status == 422
    assert "subject" in problem["detail"]
    status, _, _ = call(api_request("POST", "/messages", body={}, groups="analyst"))
    assert status == 403
    status, problem, _ = call(
        api_request("GET", "/messages/{message_id}", path_parameters={"message_id": "msg_" + "0" * 26})
    )
    assert status == 404
    status, _, _ = call(api_request("DELETE", "/suppressions/{address}", path_parameters={"address": "a@b.c"}))
    assert status == 403  # marketer, not admin


def test_my_inbox_and_devices_are_mine(engine: Engine, call: Any) -> None:
    status, inbox, _ = call(api_request("GET", "/me/inbox", groups=None, customer_id="c9"))
    assert (status, inbox) == (200, {"items": [], "unread": 0})
    status, _, _ = call(api_request("GET", "/me/inbox"))  # staff without a customer id
    assert status == 403
    engine.messages.register_device = lambda platform, token, customer: (
        f"arn:aws:sns:us-east-1:1:endpoint/{platform}/{customer}"
    )
    status, device, _ = call(
        api_request(
            "POST", "/me/devices", body={"platform": "fcm", "token": "tok-12345678"}, groups=None, customer_id="c9"
        )
    )
    assert (status, device["endpoint_arn"]) == (201, "arn:aws:sns:us-east-1:1:endpoint/fcm/c9")
    status, _, _ = call(
        api_request(
            "DELETE",
            "/me/devices/{device_id}",
            path_parameters={"device_id": device["device_id"]},
            groups=None,
            customer_id="c9",
        )
    )
    assert status == 204


def test_webhook_endpoints_show_their_secret_once(call: Any) -> None:
    status, created, _ = call(
        api_request("POST", "/webhooks/endpoints", body={"url": "https://tv.example.com/hook"}, groups="admin")
    )
    assert status == 201
    assert len(created["secret"]) >= 32


def test_the_unsubscribe_link_pages(engine: Engine, call: Any) -> None:
    engine.contacts.add("c1")
    engine.run(engine.request())
    token = engine.adapters["email"].sent[0].unsubscribe_url.split("token=")[1]  # type: ignore[union-attr]
    status, page, _ = call(api_request("GET", "/unsubscribe", query={"token": token}, groups=None))
    assert status == 200
    assert '<form method="post"' in page
    assert engine.contacts.recorded == []
    event = api_request("POST", "/unsubscribe", query={"token": token}, groups=None, body="List-Unsubscribe=One-Click")
    event["requestContext"]["authorizer"] = None
    for _ in range(2):
        status, page, _ = call(event, {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 200
        assert "unsubscribed" in page
    assert len(engine.contacts.recorded) == 1
    status, _problem, _ = call(api_request("POST", "/unsubscribe", query={"token": "x" * 40}, groups=None))
    assert status == 400
    status, page, _ = call(api_request("GET", "/preferences", query={"token": token}, groups=None))
    assert 'value="email|marketing"' in page
    form = api_request("POST", "/preferences", query={"token": token}, groups=None, body="consent=sms%7Cmarketing")
    status, page, _ = call(form, {"Content-Type": "application/x-www-form-urlencoded"})
    assert (status, "saved" in page) == (200, True)
