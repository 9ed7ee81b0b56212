"""Input an attacker sends, through the local API: each is a 4xx problem naming what is wrong, never a 5xx.

Each case below was answered 502 (or a 415 that was not problem+json, or a 200 that stored a NUL)
before; one request each, on the shared local cloud.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from ecrm_ops.tour.context import TourContext, expect

DEEP = b"[" * 1000 + b"]" * 1000
NOT_UTF8 = b'{"source": "web\xff\xfe", "identities": []}'
PROBLEM = "application/problem+json"


def send(tour: TourContext, method: str, path: str, body: bytes | None, **headers: str) -> tuple[int, str, Any]:
    """One request as an attacker writes it: raw bytes, any headers. Returns status, content type, parsed body."""
    request = urllib.request.Request(tour.api + path, data=body, method=method)
    for name, value in {"Content-Type": "application/json", **headers}.items():
        request.add_header(name.replace("_", "-"), value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, content_type, raw = response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        status, content_type, raw = error.code, error.headers.get("Content-Type", ""), error.read()
    return status, content_type, json.loads(raw) if raw else None


@pytest.fixture(scope="module")
def basic(tour: TourContext) -> str:
    created = tour.call(
        "POST", "/sources", token=tour.token(group="admin"), body={"name": "e2ehostile", "kind": "server"}
    )
    assert created.status == 201, created.body
    return "Basic " + base64.b64encode(f"{created.body['write_key']}:".encode()).decode()


@pytest.fixture(scope="module")
def customer(tour: TourContext) -> str:
    email = f"hostile.{uuid.uuid4().hex[:8]}@example.com"
    body = {"source": "web", "identities": [{"type": "email", "value": email}]}
    created = expect(tour.call("POST", "/customers", token=tour.token(group="admin"), body=body), 201, "POST")
    return str(created.body["customer_id"])


def test_bad_bodies_are_4xx_problems_on_every_kind_of_route(tour: TourContext, basic: str, customer: str) -> None:
    staff = tour.token(group="admin")
    track = json.dumps({"userId": "u-1", "event": "Viewed", "properties": {"note": "x\ud800"}}).encode()
    identify = json.dumps({"userId": "u-1", "traits": {"name": "x\ud800"}}).encode()
    interaction = json.dumps({"type": "call", "source": "callcenter", "properties": {"k": "x\ud800"}}).encode()
    nul_email = json.dumps({"source": "web", "identities": [{"type": "email", "value": "a\u0000b@example.com"}]})
    cases: list[tuple[str, str, bytes | None, dict[str, str], int, str]] = [
        # (method, path, body, headers, expected status, what the detail must name)
        ("POST", "/v1/track", DEEP, {}, 401, "write key"),  # unauthenticated: refused, not crashed
        ("POST", "/v1/track", DEEP, {"Authorization": basic}, 400, "nests deeper"),
        ("POST", "/v1/track", NOT_UTF8, {"Authorization": basic}, 400, "UTF-8"),
        ("POST", "/v1/track", track, {"Authorization": basic}, 400, "properties.note: holds a lone surrogate"),
        ("POST", "/v1/identify", identify, {"Authorization": basic}, 400, "traits.name: holds a lone surrogate"),
        ("POST", "/v1/track", b'{"event": "x"}', {"Authorization": basic, "Content-Encoding": "gzip"}, 400, "gzip"),
        ("POST", "/customers", DEEP, {"Authorization": staff}, 422, "nests deeper"),
        ("POST", "/customers", NOT_UTF8, {"Authorization": staff}, 422, "UTF-8"),
        ("POST", "/customers", b"<customer/>", {"Authorization": staff, "Content-Type": "application/xml"}, 415, "xml"),
        ("POST", "/customers", b"{}", {"Authorization": staff, "Content-Type": "text/plain"}, 415, "text/plain"),
        ("POST", "/customers", nul_email.encode(), {"Authorization": staff}, 400, "U+0000"),
        ("POST", f"/customers/{customer}/interactions", interaction, {"Authorization": staff}, 422, "surrogate"),
        ("GET", f"/customers/{customer}/timeline?cursor=abc", None, {"Authorization": staff}, 400, "cursor"),
        ("GET", f"/customers/{customer}/timeline?cursor=////", None, {"Authorization": staff}, 400, "cursor"),
    ]
    for method, path, body, headers, status, named in cases:
        # When the request is sent, Then it is the expected 4xx, as problem+json naming the fault
        got, content_type, problem = send(tour, method, path, body, **headers)
        what = f"{method} {path} {headers.get('Content-Type', '')}"
        assert (got, content_type) == (status, PROBLEM), f"{what}: {got} {content_type} {problem}"
        assert named.lower() in json.dumps(problem).lower(), f"{what}: {problem}"
    # And JSON posted as text/plain, as analytics.js does, is still tracked
    ok = json.dumps({"userId": "u-1", "event": "Viewed", "messageId": uuid.uuid4().hex}).encode()
    got, _, answer = send(tour, "POST", "/v1/track", ok, Authorization=basic, Content_Type="text/plain")
    assert got == 200, answer


def test_who_may_call_is_checked_before_the_body_and_a_customer_cannot_pick_their_proofs_source(
    tour: TourContext, customer: str
) -> None:
    mine = tour.token(customer_id=customer)
    analyst = tour.token(group="analyst")
    # A caller the route does not admit learns that, not the route's schema
    refused = tour.call("POST", "/customers", token=mine, body={"not_a_field": 1})
    assert (refused.status, "errors" in refused.body) == (403, False), refused.body
    refused = tour.call("POST", "/offers", token=analyst, body={"not_a_field": 1})
    assert (refused.status, "errors" in refused.body) == (403, False), refused.body
    # Presenting an offer changes counters: not for analysts, and not by default
    nbo = f"/customers/{customer}/next-best-offer"
    assert tour.call("POST", nbo, token=analyst, body={"channel": "email"}).status == 403
    assert tour.call("GET", nbo + "?channel=email", token=analyst).status == 200
    # On /me the proof's source is the customer: a body naming another is refused
    consent = "/me/consents/email/marketing"
    claimed = tour.call("PUT", consent, token=mine, body={"state": "granted", "source": "staff"})
    assert claimed.status == 422
    assert [e["field"] for e in claimed.body["errors"]] == ["source"]
    granted = expect(tour.call("PUT", consent, token=mine, body={"state": "granted"}), 200, "PUT /me/consents")
    assert granted.body["proof"]["source"] == "customer"
