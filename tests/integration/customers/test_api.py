"""The customer store's REST handler on a moto table: status codes, problems, and BOLA."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ecrm.customers.import_jobs import ImportDesk
from ecrm.customers.service import CustomerService

from functions.customers import api
from tests.samples import api_request


@pytest.fixture
def call(service: CustomerService, lambda_context: Any) -> Any:
    deps = api.Deps(service, ImportDesk(service.store, None, "imports", service.clock))

    def invoke(event: dict[str, Any]) -> tuple[int, Any]:
        response = api.handler(event, lambda_context, deps)
        return response["statusCode"], json.loads(response["body"]) if response.get("body") else None

    return invoke


def upsert(call: Any, email: str, **attributes: Any) -> tuple[int, Any]:
    return call(
        api_request(
            "POST",
            "/customers",
            body={"source": "web", "identities": [{"type": "email", "value": email}], "attributes": attributes},
        )
    )


def test_upsert_is_201_when_new_and_200_when_matched(call: Any) -> None:
    status, created = upsert(call, "new@example.com", first_name="Nia")
    assert status == 201
    assert created["customer_id"].startswith("cus_")
    status, matched = upsert(call, "NEW@example.com")
    assert status == 200
    assert matched["customer_id"] == created["customer_id"]
    assert matched["matched_by"] == ["email:new@example.com"]


def test_a_bad_identity_is_a_4xx_naming_it_and_changes_nothing(call: Any, service: CustomerService) -> None:
    status, problem = call(
        api_request("POST", "/customers", body={"source": "web", "identities": [{"type": "phone", "value": "12345"}]})
    )
    assert status == 400
    assert "12345" in problem["detail"]
    status, problem = call(api_request("POST", "/customers", body={"source": "Web!", "identities": []}))
    assert status == 422
    assert {e["field"] for e in problem["errors"]} >= {"source", "identities"}


def test_the_360_view_lookup_patch_consent_and_timeline(call: Any) -> None:
    _, created = upsert(call, "view@example.com", first_name="Vi")
    cid = created["customer_id"]
    status, found = call(api_request("GET", "/customers", query={"email": "View@Example.com"}))
    assert (status, found["customer_id"]) == (200, cid)
    status, patched = call(
        api_request(
            "PATCH",
            "/customers/{customer_id}",
            path_parameters={"customer_id": cid},
            body={"attributes": {"city": "Lyon", "first_name": None}},
        )
    )
    assert status == 200
    assert set(patched["profile"]) == {"city"}
    status, consent = call(
        api_request(
            "PUT",
            "/customers/{customer_id}/consents/{channel}/{purpose}",
            path_parameters={"customer_id": cid, "channel": "email", "purpose": "marketing"},
            body={"state": "granted", "notice_version": "2026-01"},
        )
    )
    assert status == 200
    assert consent["proof"]["ip"] == "203.0.113.10"
    assert consent["proof"]["recorded_by"]  # the staff member's token subject, never from the body
    assert consent["proof"]["recorded_by"] != cid
    for n in range(3):
        status, _ = call(
            api_request(
                "POST",
                "/customers/{customer_id}/interactions",
                path_parameters={"customer_id": cid},
                body={
                    "type": "page_view",
                    "occurred_at": f"2026-11-0{n + 1}T10:00:00Z",
                    "source": "web",
                    "interaction_id": f"pv-{n}",
                },
            )
        )
        assert status == 201
    status, _ = call(
        api_request(
            "POST",
            "/customers/{customer_id}/interactions",
            path_parameters={"customer_id": cid},
            body={
                "type": "page_view",
                "occurred_at": "2026-11-01T10:00:00Z",
                "source": "web",
                "interaction_id": "pv-0",
            },
        )
    )
    assert status == 200  # already recorded
    status, page = call(
        api_request(
            "GET", "/customers/{customer_id}/timeline", path_parameters={"customer_id": cid}, query={"limit": "2"}
        )
    )
    assert [i["interaction_id"] for i in page["items"]] == ["pv-2", "pv-1"]
    _, rest = call(
        api_request(
            "GET",
            "/customers/{customer_id}/timeline",
            path_parameters={"customer_id": cid},
            query={"limit": "2", "cursor": page["next_cursor"]},
        )
    )
    assert [i["interaction_id"] for i in rest["items"]] == ["pv-0"]
    assert rest["next_cursor"] is None
    status, view = call(api_request("GET", "/customers/{customer_id}", path_parameters={"customer_id": cid}))
    assert status == 200
    assert view["consents"][0]["state"] == "granted"
    assert len(view["recent_timeline"]) == 3


def test_unknown_customer_is_404(call: Any) -> None:
    status, problem = call(
        api_request(
            "GET", "/customers/{customer_id}", path_parameters={"customer_id": "cus_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"}
        )
    )
    assert status == 404
    assert problem["title"] == "Not found"


def test_a_customer_reads_only_their_own_record(call: Any) -> None:
    # Given two customers
    _, a = upsert(call, "a@example.com", first_name="A")
    _, b = upsert(call, "b@example.com", first_name="B")
    # When A calls /me, A sees A
    status, me = call(api_request("GET", "/me", groups=None, customer_id=a["customer_id"]))
    assert (status, me["customer_id"]) == (200, a["customer_id"])
    # And A's token never reaches B: staff routes are 403 for customers, whatever the path says
    for method, resource in [
        ("GET", "/customers/{customer_id}"),
        ("GET", "/customers/{customer_id}/export"),
        ("GET", "/customers/{customer_id}/timeline"),
        ("DELETE", "/customers/{customer_id}"),
    ]:
        status, _ = call(
            api_request(
                method,
                resource,
                path_parameters={"customer_id": b["customer_id"]},
                groups=None,
                customer_id=a["customer_id"],
            )
        )
        assert status == 403, (method, resource)
    # And /me ignores anything but the token
    event = api_request("GET", "/me", groups=None, customer_id=a["customer_id"])
    event["queryStringParameters"] = {"customer_id": b["customer_id"]}
    assert call(event)[1]["customer_id"] == a["customer_id"]


def test_a_customer_manages_preferences_and_consents_and_exports(call: Any) -> None:
    _, a = upsert(call, "pref@example.com")
    cid = a["customer_id"]
    status, me = call(
        api_request(
            "PATCH",
            "/me/preferences",
            groups=None,
            customer_id=cid,
            body={"language": "fr", "time_zone": "Europe/Paris", "preferred_channels": ["sms", "email"]},
        )
    )
    assert status == 200
    assert me["preferences"]["time_zone"] == "Europe/Paris"
    status, problem = call(
        api_request("PATCH", "/me/preferences", groups=None, customer_id=cid, body={"time_zone": "Mars/Olympus"})
    )
    assert status == 422
    assert "time_zone" in problem["detail"]
    status, consent = call(
        api_request(
            "PUT",
            "/me/consents/{channel}/{purpose}",
            groups=None,
            customer_id=cid,
            path_parameters={"channel": "sms", "purpose": "marketing"},
            body={"state": "denied"},
        )
    )
    assert (status, consent["state"], consent["proof"]["source"]) == (200, "denied", "customer")
    assert consent["proof"]["recorded_by"] == cid
    status, export = call(api_request("GET", "/me/export", groups=None, customer_id=cid))
    assert status == 200
    assert export["customer"]["customer_id"] == cid
    assert export["consent_history"]


def test_a_staff_token_without_a_customer_id_cannot_use_me(call: Any) -> None:
    status, _ = call(api_request("GET", "/me"))
    assert status == 403


def test_erasure_is_202_and_admin_or_agent_only(call: Any) -> None:
    _, a = upsert(call, "erase@example.com")
    request = api_request("DELETE", "/customers/{customer_id}", path_parameters={"customer_id": a["customer_id"]})
    assert call(request)[0] == 403  # a marketer
    status, accepted = call(
        api_request(
            "DELETE", "/customers/{customer_id}", path_parameters={"customer_id": a["customer_id"]}, groups="agent"
        )
    )
    assert status == 202
    status, erasure = call(
        api_request(
            "GET", "/erasures/{request_id}", path_parameters={"request_id": accepted["request_id"]}, groups="admin"
        )
    )
    assert (status, erasure["status"], erasure["participants"]) == (200, "pending", ["customers"])


def test_who_recorded_a_consent_is_never_taken_from_the_body(call: Any) -> None:
    consent = {"channel": "email", "purpose": "marketing", "state": "granted"}
    proof = {"source": "erp", "captured_at": "2026-11-01T10:00:00Z"}
    body = {"source": "erp", "identities": [{"type": "email", "value": "rec@example.com"}]}
    status, problem = call(
        api_request(
            "POST", "/customers", body={**body, "consents": [{**consent, "proof": {**proof, "recorded_by": "someone"}}]}
        )
    )
    assert status == 422
    assert problem["errors"][0]["field"].endswith("recorded_by")
    status, created = call(api_request("POST", "/customers", body={**body, "consents": [{**consent, "proof": proof}]}))
    assert status == 201
    status, view = call(
        api_request("GET", "/customers/{customer_id}", path_parameters={"customer_id": created["customer_id"]})
    )
    assert view["consents"][0]["proof"]["recorded_by"] not in (None, "someone")
