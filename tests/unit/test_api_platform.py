"""The platform REST API, driven with the sample API Gateway events and in-memory collaborators."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from ecrm.core.errors import PROBLEM_CONTENT_TYPE
from ecrm.core.publisher import EventPublisher
from ecrm.platform.models import PingRecord
from ecrm.platform.store import InMemoryPingStore

from functions.platform import api
from tests.conftest import SAMPLE_NOW
from tests.samples import load_sample
from tests.unit.fakes import FakeEventsClient

KNOWN_PING_ID = "png_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"  # the one in rest_get_ping_staff.json


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


@pytest.fixture
def bus() -> FakeEventsClient:
    return FakeEventsClient()


@pytest.fixture
def deps(bus, fixed_clock) -> api.Deps:
    return api.Deps(
        publisher=EventPublisher("ecrm", bus, sleep=lambda _: None),
        store=InMemoryPingStore(),
        clock=fixed_clock,
    )


@pytest.fixture
def call(deps, lambda_context):
    def invoke(event: dict[str, Any]) -> Reply:
        response = api.handler(event, lambda_context, deps)
        headers = {k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()}
        headers.update(response.get("headers") or {})
        return Reply(response["statusCode"], headers, json.loads(response["body"]))

    return invoke


def _sample(name: str) -> dict[str, Any]:
    return load_sample(f"apigateway/{name}")


def _set_header(event: dict[str, Any], name: str, value: str) -> dict[str, Any]:
    event["headers"][name] = value
    event["multiValueHeaders"][name] = [value]
    return event


def _assert_problem(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status
    assert reply.headers["Content-Type"] == PROBLEM_CONTENT_TYPE
    assert {"type", "title", "status", "detail"} <= set(reply.body)
    assert reply.body["status"] == status
    assert reply.body["type"].startswith("https://")
    return reply.body


# -- /health and /openapi.json -------------------------------------------------------------------
def test_health_is_public(call):
    # Given a request without any token
    event = _sample("rest_get_health_public.json")

    # When
    reply = call(event)

    # Then
    assert reply.status == 200
    assert reply.body["status"] == "ok"
    assert reply.body["service"] == "platform"


def test_openapi_document_lists_the_routes_of_every_engine(call):
    # Given the public request, pointed at the document
    event = _sample("rest_get_health_public.json")
    event["path"] = event["resource"] = event["requestContext"]["resourcePath"] = "/openapi.json"
    stage = event["requestContext"]["stage"]
    event["requestContext"]["path"] = f"/{stage}/openapi.json"

    # When
    reply = call(event)

    # Then it is the whole API's document, with the stage as its server
    assert reply.status == 200
    assert reply.body["info"]["title"] == "eCRM API"
    assert {"/pings", "/pings/{ping_id}", "/whoami", "/health", "/me", "/segments", "/v1/batch"} <= set(
        reply.body["paths"]
    )
    assert "post" in reply.body["paths"]["/pings"]
    assert reply.body["servers"] == [{"url": f"/{stage}"}]


def test_an_unknown_route_is_a_404_problem(call):
    # Given a path the API does not serve
    event = _set_header(_sample("rest_get_whoami_staff.json"), "X-Correlation-Id", "cor_unknown_route")
    event["path"] = event["resource"] = event["requestContext"]["resourcePath"] = "/nowhere"

    # When
    reply = call(event)

    # Then
    body = _assert_problem(reply, 404)
    assert body["instance"] == "/nowhere"
    assert reply.headers["X-Correlation-Id"] == "cor_unknown_route"


# -- /whoami ---------------------------------------------------------------------------------------
def test_whoami_describes_the_staff_member(call):
    # Given a marketer and analyst's token
    event = _sample("rest_get_whoami_staff.json")

    # When
    reply = call(event)

    # Then their identity and groups are echoed, and the request id is the correlation id
    assert reply.status == 200
    assert reply.body == {
        "subject": "9a7b2c1d-0e4f-4a5b-8c6d-7e8f9a0b1c2d",
        "username": "marketer@example.com",
        "email": "marketer@example.com",
        "groups": ["analyst", "marketer"],
        "customer_id": None,
    }
    assert reply.headers["X-Correlation-Id"] == event["requestContext"]["requestId"]


def test_whoami_refuses_a_customer(call):
    # Given a customer's token
    event = _sample("rest_get_whoami_customer.json")

    # When
    reply = call(event)

    # Then a 403 problem says which groups are needed
    body = _assert_problem(reply, 403)
    assert "marketer" in body["detail"]
    assert body["instance"] == "/whoami"


def test_whoami_without_claims_is_unauthorized(call):
    # Given a request that reached the function without an authorizer
    event = _sample("rest_get_whoami_staff.json")
    del event["requestContext"]["authorizer"]

    # When
    reply = call(event)

    # Then
    _assert_problem(reply, 401)


# -- POST /pings -----------------------------------------------------------------------------------
def test_a_malformed_ping_is_a_422_naming_the_field(call, bus):
    # Given a body whose message is a number and that has an extra member
    event = _sample("rest_post_pings_malformed.json")

    # When
    reply = call(event)

    # Then the problem names each offending field, and nothing was published
    body = _assert_problem(reply, 422)
    assert "message" in body["detail"]
    assert {"in": "body", "field": "message", "message": "Input should be a valid string"} in body["errors"]
    assert any(e["field"] == "extra" for e in body["errors"])
    assert bus.calls == []


def test_a_body_that_is_not_json_is_a_422(call):
    # Given
    event = _sample("rest_post_pings_staff.json")
    event["body"] = "{not json"

    # When
    reply = call(event)

    # Then
    body = _assert_problem(reply, 422)
    assert body["errors"][0]["field"] == "body"


def test_a_validation_problem_carries_the_correlation_id(call):
    # Given a malformed request with a correlation id
    event = _set_header(_sample("rest_post_pings_malformed.json"), "X-Correlation-Id", "cor_client_chosen")

    # When
    reply = call(event)

    # Then the caller can match the error to its request
    assert reply.status == 422
    assert reply.headers.get("X-Correlation-Id") == "cor_client_chosen"


def test_a_ping_is_accepted_and_published_with_the_request_correlation_id(call, bus):
    # Given a staff member's ping
    event = _sample("rest_post_pings_staff.json")

    # When
    reply = call(event)

    # Then it is accepted and one PingRequested went to the bus with the request's correlation id
    assert reply.status == 202
    assert reply.body["status"] == "requested"
    assert reply.body["ping_id"].startswith("png_")
    assert [(e["Source"], e["DetailType"]) for e in bus.accepted] == [("ecrm.platform", "PingRequested")]
    (detail,) = bus.accepted_details()
    assert detail["metadata"]["correlation_id"] == event["requestContext"]["requestId"]
    assert reply.headers["X-Correlation-Id"] == event["requestContext"]["requestId"]
    assert detail["data"] == {
        "ping_id": reply.body["ping_id"],
        "message": "hello from the sample",
        "requested_by": event["requestContext"]["authorizer"]["claims"]["sub"],  # the audit actor: the subject
        "requested_at": SAMPLE_NOW.isoformat().replace("+00:00", "Z"),
    }


def test_a_correlation_id_header_wins_over_the_request_id(call, bus):
    # Given a caller that sends its own correlation id
    event = _set_header(_sample("rest_post_pings_staff.json"), "x-correlation-id", "cor_01JD3Z6Q5N8V4W7X2Y9A0B1C2E")

    # When
    reply = call(event)

    # Then it is carried by the event and returned
    assert reply.status == 202
    assert bus.accepted_details()[0]["metadata"]["correlation_id"] == "cor_01JD3Z6Q5N8V4W7X2Y9A0B1C2E"
    assert reply.headers["X-Correlation-Id"] == "cor_01JD3Z6Q5N8V4W7X2Y9A0B1C2E"


def test_a_customer_cannot_send_a_ping(call, bus):
    # Given a customer's token on the staff route
    event = _sample("rest_post_pings_staff.json")
    event["requestContext"]["authorizer"] = _sample("rest_get_whoami_customer.json")["requestContext"]["authorizer"]

    # When
    reply = call(event)

    # Then
    _assert_problem(reply, 403)
    assert bus.calls == []


def test_a_ping_the_bus_refuses_is_a_503_problem(deps, lambda_context):
    # Given a bus that denies the entry for good
    refusing = api.Deps(
        EventPublisher("ecrm", FakeEventsClient(script=[{0: "AccessDeniedException"}])),
        deps.store,
        deps.clock,
    )

    # When
    response = api.handler(_sample("rest_post_pings_staff.json"), lambda_context, refusing)

    # Then the caller learns the ping was not sent
    assert response["statusCode"] == 503
    body = json.loads(response["body"])
    assert body["status"] == 503
    assert "AccessDeniedException" in body["detail"]


# -- GET /pings/{ping_id} --------------------------------------------------------------------------
def test_an_unknown_ping_is_a_404_problem(call):
    # Given an empty store
    event = _sample("rest_get_ping_staff.json")

    # When
    reply = call(event)

    # Then
    body = _assert_problem(reply, 404)
    assert KNOWN_PING_ID in body["detail"]
    assert body["instance"] == f"/pings/{KNOWN_PING_ID}"


def test_a_recorded_ping_is_returned(call, deps, fixed_clock):
    # Given the ping has been consumed and recorded
    record = PingRecord(
        ping_id=KNOWN_PING_ID,
        message="hello",
        requested_by="marketer@example.com",
        requested_at=SAMPLE_NOW,
        received_at=SAMPLE_NOW,
        round_trip_ms=0,
    )
    deps.store.save(record)

    # When
    reply = call(_sample("rest_get_ping_staff.json"))

    # Then
    assert reply.status == 200
    assert PingRecord.model_validate(reply.body) == record
    assert reply.body["status"] == "received"


def test_a_ping_id_of_the_wrong_shape_is_a_422_naming_the_parameter(call):
    # Given a path parameter that cannot be a ping id
    event = _sample("rest_get_ping_staff.json")
    event["path"] = "/pings/not-a-ping"
    event["pathParameters"]["ping_id"] = "not-a-ping"

    # When
    reply = call(event)

    # Then
    body = _assert_problem(reply, 422)
    assert body["errors"][0]["in"] == "path"
    assert body["errors"][0]["field"] == "ping_id"
