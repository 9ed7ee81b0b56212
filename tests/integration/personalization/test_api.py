"""The personalization REST handler with injected services on moto: routes, groups, problems, `/me`."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from ecrm.personalization.customer_events import ProjectionService
from ecrm.personalization.offer_service import OfferService
from ecrm.personalization.recommendation_service import RecommendationService
from ecrm.personalization.store import PersonalizationStore
from ecrm.personalization.template_service import TemplateService

from functions.personalization import api
from tests.integration.personalization.conftest import (
    NOW,
    RecordingPublisher,
    created,
    customer_id,
    interaction,
    write_model,
)
from tests.samples import api_request

OFFER = {"name": "Spring", "channels": ["email", "web"], "valid_from": "2026-11-01T00:00:00Z", "value": 12.5}
SMS = {"name": "Hello", "channel": "sms", "default_locale": "en", "variants": {"en": {"body": "Hi {{ customer.id }}"}}}


@pytest.fixture
def call(
    recommendations: RecommendationService, offers: OfferService, templates: TemplateService, lambda_context: Any
) -> Any:
    deps = api.Deps(recommendations, offers, templates)

    def invoke(event: dict[str, Any]) -> tuple[int, Any]:
        handler: Any = api.handler  # the decorated handler takes the injected services as a third argument
        response = handler(event, lambda_context, deps)
        return response["statusCode"], json.loads(response["body"]) if response.get("body") else None

    return invoke


def test_the_openapi_document_lists_every_route() -> None:
    document = api.app.openapi_document()
    assert document["info"]["title"] == "eCRM personalization API"
    assert {
        "/customers/{customer_id}/recommendations",
        "/me/recommendations",
        "/me/offers",
        "/offers",
        "/offers/{offer_id}",
        "/offers/{offer_id}/acceptances",
        "/customers/{customer_id}/next-best-offer",
        "/templates",
        "/templates/{template_id}",
        "/templates/{template_id}/preview",
        "/items",
    } <= set(document["paths"])


def test_staff_read_recommendations_and_a_customer_reads_only_their_own(
    call: Any, store: PersonalizationStore, projections: ProjectionService
) -> None:
    # Given a model and a customer who viewed s1
    write_model(store)
    customer = customer_id()
    projections.apply(created(customer, country="FR"))
    projections.apply(interaction(customer, "s1", at=NOW - timedelta(hours=1)))
    path = {"customer_id": customer}

    # When staff ask, Then
    status, listed = call(api_request("GET", "/customers/{customer_id}/recommendations", path_parameters=path))
    assert status == 200
    assert [i["item_id"] for i in listed["items"]][:2] == ["s2", "s3"]
    status, similar = call(
        api_request(
            "GET",
            "/customers/{customer_id}/recommendations",
            path_parameters=path,
            query={"slot": "similar", "item": "h1", "k": "2"},
        )
    )
    assert (status, [i["item_id"] for i in similar["items"]]) == (200, ["h2", "h3"])

    # a customer token cannot use the staff route, and /me answers for the token's customer
    status, problem = call(
        api_request(
            "GET", "/customers/{customer_id}/recommendations", path_parameters=path, groups=None, customer_id=customer
        )
    )
    assert status == 403
    status, mine = call(api_request("GET", "/me/recommendations", query={"k": "3"}, groups=None, customer_id=customer))
    assert (status, mine["customer_id"], len(mine["items"])) == (200, customer, 3)

    # bad parameters are 4xx problems naming what is wrong
    status, problem = call(
        api_request("GET", "/customers/{customer_id}/recommendations", path_parameters=path, query={"slot": "similar"})
    )
    assert status == 400
    assert "needs the item" in problem["detail"]
    status, problem = call(
        api_request("GET", "/customers/{customer_id}/recommendations", path_parameters=path, query={"k": "500"})
    )
    assert status == 422
    assert problem["errors"][0]["field"] == "k"


def test_offers_create_list_next_best_and_accept(
    call: Any, projections: ProjectionService, publisher: RecordingPublisher
) -> None:
    # marketers create; analysts may read but not create
    status, offer = call(api_request("POST", "/offers", body=OFFER))
    assert status == 201
    assert call(api_request("POST", "/offers", body=OFFER, groups="analyst"))[0] == 403
    status, problem = call(api_request("POST", "/offers", body={**OFFER, "channels": ["fax"]}))
    assert status == 422
    assert problem["errors"][0]["field"].startswith("channels")
    status, listed = call(api_request("GET", "/offers", groups="analyst"))
    assert (status, [o["offer_id"] for o in listed["items"]]) == (200, [offer["offer_id"]])

    customer = customer_id()
    projections.apply(created(customer, consents={"email:marketing": "granted"}))
    path = {"customer_id": customer}
    status, problem = call(api_request("GET", "/customers/{customer_id}/next-best-offer", path_parameters=path))
    assert status == 422
    assert problem["errors"][0]["field"] == "channel"
    # a GET without present=true is a look: the offer, and nothing counted or kept
    status, best = call(
        api_request("GET", "/customers/{customer_id}/next-best-offer", path_parameters=path, query={"channel": "email"})
    )
    assert (status, best["offer"]["offer_id"]) == (200, offer["offer_id"])
    assert publisher.of("OfferPresented") == []
    # a GET never presents, whatever it is asked
    nbo = "/customers/{customer_id}/next-best-offer"
    looked = call(api_request("GET", nbo, path_parameters=path, query={"channel": "email", "present": "true"}))
    assert looked[0] == 200
    assert publisher.of("OfferPresented") == []
    # presenting is a POST, and not for analysts
    presenting = {"channel": "email"}
    assert call(api_request("POST", nbo, path_parameters=path, body=presenting, groups="analyst"))[0] == 403
    assert publisher.of("OfferPresented") == []
    status, best = call(api_request("POST", nbo, path_parameters=path, body=presenting))
    assert status == 200
    assert best["offer"]["offer_id"] == offer["offer_id"]
    assert best["decided_now"]
    assert len(publisher.of("OfferPresented")) == 1

    status, mine = call(api_request("GET", "/me/offers", groups=None, customer_id=customer))
    assert (status, [o["offer_id"] for o in mine["items"]]) == (200, [offer["offer_id"]])
    assert "eligibility" not in mine["items"][0]

    accept = {"customer_id": customer, "acceptance_id": "ord-42", "channel": "email"}
    offer_path = {"offer_id": offer["offer_id"]}
    assert (
        call(api_request("POST", "/offers/{offer_id}/acceptances", path_parameters=offer_path, body=accept))[0] == 201
    )
    status, again = call(api_request("POST", "/offers/{offer_id}/acceptances", path_parameters=offer_path, body=accept))
    assert (status, again["counted"]) == (200, False)
    status, stored = call(api_request("GET", "/offers/{offer_id}", path_parameters=offer_path))
    assert (status, stored["counters"]["accepted"], stored["counters"]["presented"]) == (200, 1, 1)


def test_templates_save_refuse_version_and_preview(call: Any, projections: ProjectionService) -> None:
    status, saved = call(api_request("POST", "/templates", body=SMS))
    assert status == 201
    assert saved["report"]["variants"][0]["sms"]["segments"] == 1
    template = {"template_id": saved["template_id"]}

    # a template that does not compile: a 400 problem listing each problem with its line and reason
    broken = {**SMS, "variants": {"en": {"body": "line one\n{{ customer.nope }}"}}}
    status, problem = call(api_request("POST", "/templates", body=broken))
    assert status == 400
    assert problem["type"].endswith("/template-rejected")
    assert problem["problems"][0]["line"] == 2
    assert "nope" in problem["problems"][0]["reason"]
    # a body that is not a template at all: a 422 naming the field
    assert call(api_request("POST", "/templates", body={**SMS, "channel": "fax"}))[0] == 422

    status, second = call(
        api_request("PUT", "/templates/{template_id}", path_parameters=template, body={**SMS, "name": "Two"})
    )
    assert (status, second["version"]) == (201, 2)
    status, stored = call(
        api_request("GET", "/templates/{template_id}", path_parameters=template, query={"version": "1"})
    )
    assert (status, stored["name"], stored["latest_version"]) == (200, "Hello", 2)

    customer = customer_id()
    projections.apply(created(customer))
    status, rendered = call(
        api_request(
            "POST", "/templates/{template_id}/preview", path_parameters=template, body={"customer_id": customer}
        )
    )
    assert (status, rendered["parts"]["body"]) == (200, f"Hi {customer}")
    unknown = {"template_id": "tpl_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"}
    assert call(api_request("GET", "/templates/{template_id}", path_parameters=unknown))[0] == 404


def test_the_item_catalogue_takes_batches_from_editors(call: Any, recommendations: RecommendationService) -> None:
    items = [{"item_id": "s1", "category": "shoes", "countries": ["fr", "de"]}, {"item_id": "h1", "in_stock": False}]
    status, upserted = call(api_request("PUT", "/items", body={"items": items}))
    assert (status, upserted["upserted"]) == (200, 2)
    assert recommendations.store.items(["s1"])["s1"].countries == ["DE", "FR"]
    assert call(api_request("PUT", "/items", body={"items": items}, groups="agent"))[0] == 403
    status, problem = call(api_request("PUT", "/items", body={"items": [items[0], items[0]]}))
    assert status == 422
    assert "twice" in problem["detail"]
