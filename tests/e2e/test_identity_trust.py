"""The identity trust model end to end (ADR 9), with the real segment-analytics-python client.

A web source's write key ships in every page, so the attacker of issue 10 holds it: an identify
naming a victim's email must change nothing on the victim, while the shop's own signed identify
links the visitor's anonymous browsing to the customer it names.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from ecrm.collect.logic import sign_user_id
from ecrm_ops.tour.context import TourContext, wait_for
from segment.analytics import Client


@pytest.fixture(scope="module")
def web_source(tour: TourContext) -> dict[str, Any]:
    created = tour.call("POST", "/sources", token=tour.token(group="admin"), body={"name": "trustshop", "kind": "web"})
    assert created.status == 201, created.body
    assert created.body["trusted"] is False
    assert created.body["identity_secret"]
    return dict(created.body)


@pytest.fixture
def browser(tour: TourContext, web_source: dict[str, Any]) -> Iterator[Client]:
    """What runs in the page: the public write key, never the identity secret."""
    client = Client(web_source["write_key"], host=tour.api, sync_mode=True, max_retries=1, timeout=15)
    yield client
    client.flush()


def find(tour: TourContext, query: str) -> dict[str, Any] | None:
    found = tour.call("GET", f"/customers?{query}", token=tour.token(group="admin"))
    return dict(found.body) if found.status == 200 else None


def test_an_unsigned_identify_naming_a_victims_email_changes_nothing_on_the_victim(
    tour: TourContext, browser: Client, web_source: dict[str, Any]
) -> None:
    run = uuid.uuid4().hex[:8]
    victim_email, attacker_phone = f"victim-{run}@example.com", "+4915112340000"
    # Given a customer known to the store by email and phone, with a profile and a consent
    victim = tour.call(
        "POST",
        "/customers",
        token=tour.token(group="marketer"),
        body={
            "source": "erp",
            "identities": [{"type": "email", "value": victim_email}],
            "attributes": {"first_name": "Vera", "city": "Berlin"},
            "consents": [
                {
                    "channel": "email",
                    "purpose": "marketing",
                    "state": "granted",
                    "proof": {"source": "erp", "captured_at": "2026-11-01T10:00:00Z"},
                }
            ],
        },
    )
    assert victim.status == 201, victim.body
    victim_id = victim.body["customer_id"]
    before = tour.call("GET", f"/customers/{victim_id}", token=tour.token(group="admin")).body
    # And an attacker signed in to the shop on their own browser (the shop signs their user id)
    attacker_anon, attacker_user = str(uuid.uuid4()), f"att-{run}"
    browser.identify(
        user_id=attacker_user,
        anonymous_id=attacker_anon,
        context={"userHash": sign_user_id(web_source["identity_secret"], attacker_user)},
    )
    attacker = wait_for(lambda: find(tour, f"external_id=trustshop:{attacker_user}"), timeout=30, what="attacker")
    # When the attacker's browser claims the victim's email, with the public write key only
    browser.identify(anonymous_id=attacker_anon, traits={"email": victim_email, "phone": attacker_phone})
    browser.identify(user_id=attacker_user, anonymous_id=attacker_anon, traits={"email": victim_email})
    browser.flush()

    def claimed() -> list[dict[str, Any]]:
        current = find(tour, f"external_id=trustshop:{attacker_user}") or {}
        return [c for c in current.get("claims", []) if c["value"] == victim_email]

    wait_for(claimed, timeout=30, what="the claim to be processed")
    # Then the victim is exactly as before: same identities, profile, consents, nobody merged in
    after = tour.call("GET", f"/customers/{victim_id}", token=tour.token(group="admin")).body
    for part in ("identities", "profile", "consents", "merged_ids", "version"):
        assert after[part] == before[part], part
    assert find(tour, f"email={victim_email}")["customer_id"] == victim_id  # type: ignore[index]
    # And the attacker's own token reads nothing of the victim: no identity, profile or consent of theirs
    exported = tour.call("GET", "/me/export", token=tour.token(customer_id=attacker["customer_id"])).body
    mine = exported["customer"]
    assert victim_email not in {i["value"] for i in mine["identities"]}
    assert mine["profile"] == {}
    assert mine["consents"] == []
    assert mine["merged_ids"] == []
    # And what the attacker said stays a claim, visible to staff
    assert {c["field"] for c in claimed()} == {"email"}


def test_a_signed_identify_links_the_anonymous_browsing_to_the_customer_it_names(
    tour: TourContext, browser: Client, web_source: dict[str, Any]
) -> None:
    anonymous_id, user_id = str(uuid.uuid4()), f"shopper-{uuid.uuid4().hex[:8]}"
    # Given a visitor who browsed anonymously
    browser.page(anonymous_id=anonymous_id, name="Home", properties={"url": "https://shop.example.com/"})
    browser.track(anonymous_id=anonymous_id, event="Product Viewed", properties={"product_id": "sku-1"})
    # When they sign in and the shop's backend signs their user id for the page's identify
    browser.identify(
        user_id=user_id,
        anonymous_id=anonymous_id,
        traits={"email": f"{user_id}@example.com"},
        context={"userHash": sign_user_id(web_source["identity_secret"], user_id)},
    )
    browser.flush()
    # Then the customer it names owns the anonymous journey
    customer = wait_for(lambda: find(tour, f"external_id=trustshop:{user_id}"), timeout=30, what="the customer")

    def journey() -> list[str]:
        page = tour.call("GET", f"/customers/{customer['customer_id']}/timeline", token=tour.token(group="admin"))
        return sorted(i["type"] for i in page.body["items"])

    assert wait_for(lambda: len(journey()) >= 2 and journey(), timeout=30, what="stitching") == [
        "page_view",
        "product_viewed",
    ]
    # And the email it sent is a claim, not an identity (only the shop's server may assert it)
    assert {(i["type"], i["value"]) for i in customer["identities"]} == {
        ("device_id", anonymous_id),
        ("external_id", user_id),
    }
    assert find(tour, f"email={user_id}@example.com") is None
