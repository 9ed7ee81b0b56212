"""The local API behaves as API Gateway with the Cognito authorizer does."""

from __future__ import annotations

import base64
import json

from ecrm_ops.tour.context import TourContext, http


def test_public_route_needs_no_token(tour: TourContext) -> None:
    result = tour.call("GET", "/health")
    assert result.status == 200
    assert result.body["status"] == "ok"


def test_the_stage_prefix_is_accepted_as_in_the_cloud_url(tour: TourContext) -> None:
    assert tour.call("GET", f"/{tour.cloud.gateway.stage}/health").status == 200


def test_no_token_is_401_problem_from_the_gateway(tour: TourContext) -> None:
    result = tour.call("GET", "/whoami")
    assert result.status == 401
    assert result.headers["Content-Type"] == "application/problem+json"
    assert result.body["title"] == "Unauthorized"


def test_a_tampered_token_is_401(tour: TourContext, staff_token: str) -> None:
    header, payload, signature = staff_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["cognito:groups"] = ["admin"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    assert tour.call("GET", "/whoami", token=f"{header}.{forged}.{signature}").status == 401


def test_a_customer_token_on_a_staff_route_is_403(tour: TourContext, customer_token: str) -> None:
    result = tour.call("GET", "/whoami", token=customer_token)
    assert result.status == 403
    assert result.body["type"].endswith("/forbidden")


def test_a_staff_token_is_200_with_the_claims_of_the_token(tour: TourContext, staff_token: str) -> None:
    result = tour.call("GET", "/whoami", token=staff_token)
    assert result.status == 200
    assert result.body["groups"] == ["marketer"]
    assert result.body["email"] == "marketer@example.com"


def test_bearer_prefix_is_accepted(tour: TourContext, staff_token: str) -> None:
    assert tour.call("GET", "/whoami", token=f"Bearer {staff_token}").status == 200


def test_a_malformed_body_is_422_problem_naming_the_field(tour: TourContext, staff_token: str) -> None:
    result = tour.call("POST", "/pings", token=staff_token, body={"message": 42, "extra": True})
    assert result.status == 422
    assert result.headers["Content-Type"] == "application/problem+json"
    fields = {e["field"] for e in result.body["errors"]}
    assert {"message", "extra"} <= fields


def test_a_body_that_is_not_json_is_a_4xx(tour: TourContext, staff_token: str) -> None:
    result = http("POST", tour.api + "/pings", token=staff_token, body=b"{not json")
    assert 400 <= result.status < 500
    assert "body" in result.body["detail"]


def test_an_unknown_route_is_a_problem_not_a_crash(tour: TourContext, staff_token: str) -> None:
    result = tour.call("GET", "/no/such/route", token=staff_token)
    assert result.status == 404
    assert result.headers["Content-Type"] == "application/problem+json"


def test_the_openapi_document_is_served(tour: TourContext) -> None:
    result = tour.call("GET", "/openapi.json")
    assert result.status == 200
    assert "/pings" in result.body["paths"]
