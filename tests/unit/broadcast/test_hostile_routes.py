"""Broadcast's routes as an attacker calls them, through the REST handler on moto's DynamoDB: forged, tampered,
expired and re-targeted link tokens; another customer's inbox item and device; oversized, malformed and
mistyped bodies; hostile content and webhook URLs. Each is a 4xx problem (404 where a thing is someone
else's, never a hint that it exists), and nothing changes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from ecrm.broadcast.models import Device
from ecrm.broadcast.tokens import LinkToken, sign_link
from moto import mock_aws

from functions.broadcast import api
from tests.integration.broadcast.conftest import NOW, REGION, SECRET, TABLE, Engine
from tests.samples import api_request

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
        )
        yield Engine(client)


@pytest.fixture
def call(engine: Engine, lambda_context: Any) -> Any:
    deps = api.Deps(engine.messages, engine.centre)

    def invoke(event: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, Any]:
        if headers:
            event["headers"] = {**(event.get("headers") or {}), **headers}
            event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
        handler: Any = api.handler
        response = handler(event, lambda_context, deps)
        content_type = (response.get("headers") or {}).get("Content-Type") or (
            (response.get("multiValueHeaders") or {}).get("Content-Type") or [""]
        )[0]
        body = response.get("body")
        return response["statusCode"], json.loads(body) if body and "json" in content_type else body

    return invoke


def link(customer_id: str = "c1", *, key: bytes = SECRET, expires_in: timedelta = timedelta(days=1)) -> str:
    token = LinkToken(
        kind="unsubscribe",
        customer_id=customer_id,
        message_id="msg_" + "A" * 26,
        channel="email",
        topic=None,
        purpose="marketing",
        expires_at=NOW + expires_in,
    )
    return sign_link(key, token)


def retargeted(token: str, customer_id: str) -> str:
    """The same signature over a payload naming another customer."""
    kid, body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload[1] = customer_id
    forged = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return f"{kid}.{forged}.{signature}"


def public(method: str, resource: str, token: str, body: Any = None) -> dict[str, Any]:
    event = api_request(method, resource, query={"token": token}, groups=None, body=body)
    event["requestContext"]["authorizer"] = None
    return event


def test_forged_tampered_expired_and_retargeted_link_tokens_change_nothing(engine: Engine, call: Any) -> None:
    # Given two customers who granted email marketing, and a genuine link of the first
    engine.contacts.add("c1")
    engine.contacts.add("c2")
    genuine = link("c1")
    flipped = genuine[:-3] + ("A" if genuine[-3] != "A" else "B") + genuine[-2:]
    hostile = {
        "forged": "eyJhIjoxfQ.eyJiIjoyfQ.c2lnbmF0dXJlMTIzNA",
        "tampered": flipped,
        "another key": link("c1", key=b"a key the attacker chose, 32 bytes"),
        "expired": link("c1", expires_in=timedelta(seconds=-1)),
        "retargeted": retargeted(genuine, "c2"),
        "truncated": genuine.rsplit(".", 1)[0],
        "garbage": "%00" * 10 + "\u202e" * 10,
    }
    for name, token in hostile.items():
        for method, resource, body in (
            ("POST", "/unsubscribe", "List-Unsubscribe=One-Click"),
            ("GET", "/unsubscribe", None),
            ("GET", "/preferences", None),
            ("POST", "/preferences", "consent=sms%7Cmarketing&customer_id=c2"),
        ):
            status, problem = call(public(method, resource, token, body), FORM if body else None)
            # Then each is a 400 problem naming the token, and no consent is recorded
            assert (name, method, resource, status) == (name, method, resource, 400)
            assert problem["field"] == "token"
    assert engine.contacts.recorded == []
    # And the genuine link acts for its own customer only, whatever the form adds
    status, _ = call(public("POST", "/preferences", genuine, "consent=sms%7Cmarketing&customer_id=c2"), FORM)
    assert status == 200
    assert {r["customer_id"] for r in engine.contacts.recorded} == {"c1"}


def test_another_customers_inbox_item_is_a_404_and_stays_unread(engine: Engine, call: Any) -> None:
    # Given an in-app message in c1's inbox
    engine.contacts.add("c1", preferences={"preferred_channels": ["in_app"], "time_zone": "UTC"})
    message_id = engine.request("c1", content={"in_app": {"title": "Secret offer", "body": "for c1 only"}})
    engine.store.deliver(_in_app(message_id))
    # When c2 reads and marks it
    status, inbox = call(api_request("GET", "/me/inbox", groups=None, customer_id="c2"))
    assert (status, inbox) == (200, {"items": [], "unread": 0})
    read = api_request("POST", "/me/inbox/{item_id}/read", path_parameters={"item_id": message_id}, groups=None)
    read["requestContext"]["authorizer"]["claims"]["custom:customer_id"] = "c2"
    status, problem = call(read)
    # Then a 404 that says no more than for an id that never existed, and c1's item is still unread
    missing = api_request(
        "POST",
        "/me/inbox/{item_id}/read",
        path_parameters={"item_id": "msg_" + "Z" * 26},
        groups=None,
        customer_id="c2",
    )
    status_missing, problem_missing = call(missing)
    assert (status, status_missing) == (404, 404)
    assert problem["title"] == problem_missing["title"]
    assert "c1" not in json.dumps(problem)
    mine = engine.messages.inbox("c1")
    assert [(i.item_id, i.read_at) for i in mine.items] == [(message_id, None)]
    # And a staff caller without a customer id, or an item id of another shape, gets no further
    assert call(api_request("GET", "/me/inbox"))[0] == 403
    bad = api_request("POST", "/me/inbox/{item_id}/read", path_parameters={"item_id": "../c1"}, groups=None)
    bad["requestContext"]["authorizer"]["claims"]["custom:customer_id"] = "c2"
    assert call(bad)[0] in (400, 404, 422)


def _in_app(message_id: str) -> Any:
    from ecrm.broadcast.channels.base import OutboundMessage

    return OutboundMessage(
        message_id=message_id,
        customer_id="c1",
        channel="in_app",
        address="c1",
        purpose="marketing",
        topic=None,
        content={"title": "Secret offer", "body": "for c1 only"},
        tags={"message_id": message_id, "requested_at": NOW.isoformat()},
    )


def test_another_customers_device_cannot_be_deleted(engine: Engine, call: Any) -> None:
    device = Device(
        device_id="dev_" + "A" * 26, platform="fcm", endpoint_arn="arn:aws:sns:r:1:endpoint/GCM/a/1", registered_at=NOW
    )
    engine.store.put_device("c1", device)
    path = {"device_id": device.device_id}
    status, problem = call(
        api_request("DELETE", "/me/devices/{device_id}", path_parameters=path, groups=None, customer_id="c2")
    )
    assert (status, problem["title"]) == (404, "Not found")
    assert [d.device_id for d in engine.store.devices("c1")] == [device.device_id]
    status, _ = call(
        api_request("DELETE", "/me/devices/{device_id}", path_parameters=path, groups=None, customer_id="c1")
    )
    assert (status, engine.store.devices("c1")) == (204, [])


def test_oversized_malformed_and_mistyped_bodies_are_4xx_problems_and_store_nothing(engine: Engine, call: Any) -> None:
    base = {"customer_id": "c1", "purpose": "marketing", "content": {"sms": {"body": "Hi"}}}
    cases: list[tuple[Any, dict[str, str] | None, set[int]]] = [
        ({**base, "data": {"blob": "x" * 1_000_000}}, None, {413}),  # past what one message item may hold
        ("{not json", None, {400, 422}),
        ("[" * 5000 + "]" * 5000, None, {400, 422}),  # nesting deeper than any body needs
        ({**base, "content": {"sms": {"body": "Hi"}}, "purpose": "spam"}, None, {422}),
        ({**base, "customer_id": "c1\r\nX-Injected: 1"}, None, {422}),
        ({**base, "unexpected": True}, None, {422}),
        (base, {"Content-Type": "text/plain"}, {415}),
        ("\udcff".encode("utf-8", "surrogatepass").decode("latin-1"), None, {400, 422}),
    ]
    for body, headers, expected in cases:
        event = api_request("POST", "/messages", body=body)
        status, problem = call(event, headers)
        assert status in expected, (str(body)[:60], status, problem)
        assert isinstance(problem, dict)
        assert problem["status"] == status
    assert engine.messages.of_customer("c1", limit=10, cursor=None).items == []
    assert engine.store.published == []


def test_hostile_content_and_webhook_urls_are_refused_through_the_routes(engine: Engine, call: Any) -> None:
    for content in (
        {"sms": {"body": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}},
        {"sms": {"body": "{% for i in range(99999) %}{% for j in range(99999) %}x{% endfor %}{% endfor %}"}},
        {"email": {"subject": "Hi\r\nBcc: all@example.com", "text": "x"}},
    ):
        body = {"customer_id": "c1", "purpose": "marketing", "content": content}
        status, problem = call(api_request("POST", "/messages", body=body))
        assert status in (400, 422), problem
    for url in ("https://169.254.169.254/latest/meta-data/", "https://0xa9fea9fe/", "http://hooks.example.com/"):
        status, problem = call(api_request("POST", "/webhooks/endpoints", body={"url": url}, groups="admin"))
        assert status in (400, 422), (url, problem)
    assert engine.store.customer_endpoints("c1") == []
    assert engine.messages.of_customer("c1", limit=10, cursor=None).items == []
    # And a bomb that compiles fails its own message at the render, and nothing is sent
    engine.contacts.add("c1", preferences={"preferred_channels": ["sms"], "time_zone": "UTC"})
    bomb = engine.request("c1", key="bomb", content={"sms": {"body": "{{ 'x' * 100000000 }}"}}, purpose="transactional")
    assert engine.run(bomb) == {}
    view = engine.messages.get(bomb)
    assert (view.status, view.reason) == ("failed", "render_error")
    assert engine.adapters["sms"].sent == []
