"""The catalogue's routes through the transactions API handler on moto: who may write the catalogue, search as
staff and as a customer, a customer's comparison with its reasons and their stated preferences, and bad
input refused with a problem that says what is wrong."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ecrm.core.clock import FixedClock
from ecrm.transactions.catalog_service import CatalogService
from ecrm.transactions.catalog_store import CatalogStore
from ecrm.transactions.loyalty_service import LoyaltyService
from ecrm.transactions.order_service import OrderService

from functions.transactions import api
from tests.integration.transactions.conftest import CUSTOMER, TABLE
from tests.samples import api_request

ME = {"groups": None, "customer_id": CUSTOMER}
KETTLE = {"product_id": "kettle-1", "name": "Quiet electric kettle", "category": "kitchen"}


def offer(vendor: str, price: int, days: int) -> dict[str, Any]:
    return {
        "vendor_id": vendor,
        "vendor_name": vendor.title(),
        "price_minor": price,
        "currency": "EUR",
        "stock": 3,
        "delivery_days": days,
        "vendor_rating": "4.5",
        "return_days": 30,
    }


class Api:
    def __init__(self, deps: api.Deps, context: Any) -> None:
        self.deps = deps
        self.context = context

    def __call__(
        self,
        method: str,
        resource: str,
        *,
        body: Any = None,
        path: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        groups: str | None = "marketer",
        customer_id: str | None = None,
    ) -> tuple[int, Any]:
        event = api_request(
            method, resource, path_parameters=path, query=query, body=body, groups=groups, customer_id=customer_id
        )
        handler: Any = api.handler
        response = handler(event, self.context, self.deps)
        return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


@pytest.fixture
def call(orders: OrderService, loyalty: LoyaltyService, dynamodb: Any, clock: FixedClock, lambda_context: Any) -> Api:
    catalog = CatalogService(CatalogStore(dynamodb, TABLE), orders, clock)
    return Api(api.Deps(orders, loyalty, catalog=catalog), lambda_context)


def stock_the_kettle(call: Api) -> None:
    assert call("POST", "/catalog/products", body=KETTLE)[0] == 201
    for vendor, price, days in (("cheapco", 2590, 5), ("quickco", 3000, 1)):
        status, saved = call(
            "POST",
            "/catalog/products/{product_id}/offers",
            path={"product_id": "kettle-1"},
            body=offer(vendor, price, days),
        )
        assert status == 201
        assert saved["sku"] == f"kettle-1.{vendor}"


def test_marketers_stock_the_catalogue_and_a_customer_compares_with_reasons(call: Api) -> None:
    # Given a product with two vendors' offers, and a replay of one offer answering 200
    stock_the_kettle(call)
    path = {"product_id": "kettle-1"}
    assert call("POST", "/catalog/products/{product_id}/offers", path=path, body=offer("cheapco", 2590, 5))[0] == 200
    # When the customer says price matters and asks for a kettle in words
    status, preferences = call(
        "PUT", "/me/compare/preferences", body={"priority": "price"}, groups=None, customer_id=CUSTOMER
    )
    assert (status, preferences["priority"]) == (200, "price")
    status, comparison = call("GET", "/me/compare", query={"q": "electric kettle"}, groups=None, customer_id=CUSTOMER)
    # Then the cheapest ranks first and says by how much
    assert status == 200
    assert [r["offer"]["vendor_id"] for r in comparison["ranked"]] == ["cheapco", "quickco"]
    assert comparison["ranked"][0]["reasons"][0] == "cheapest by 4.10 EUR"
    assert comparison["profile"]["stated"]["priority"] == "price"
    by_id = call("GET", "/me/compare", query={"product": "kettle-1"}, groups=None, customer_id=CUSTOMER)
    assert by_id[1]["ranked"] == comparison["ranked"]


def test_staff_and_customers_search_and_only_marketers_and_admins_write(call: Api) -> None:
    stock_the_kettle(call)
    staff = call("GET", "/catalog/search", query={"q": "kettle"}, groups="agent")
    customer = call("GET", "/me/catalog/search", query={"q": "kettle"}, groups=None, customer_id=CUSTOMER)
    assert staff[0] == customer[0] == 200
    assert [h["product"]["product_id"] for h in staff[1]["items"]] == ["kettle-1"]
    assert customer[1]["items"][0]["product"]["summary"]["prices"] == [
        {"currency": "EUR", "cheapest_minor": 2590, "offers": 2}
    ]
    assert call("POST", "/catalog/products", body=KETTLE, groups="agent")[0] == 403
    assert call("POST", "/catalog/products", body=KETTLE, groups=None, customer_id=CUSTOMER)[0] == 403
    status, product = call("GET", "/catalog/products/{product_id}", path={"product_id": "kettle-1"}, groups="analyst")
    assert (status, len(product["offers"])) == (200, 2)


@pytest.mark.parametrize(
    ("method", "resource", "kwargs", "status"),
    [
        ("GET", "/me/compare", {}, 400),
        ("GET", "/me/compare", {"query": {"product": "kettle-1", "q": "kettle"}}, 400),
        ("GET", "/me/compare", {"query": {"product": "no-such"}}, 404),
        ("GET", "/me/compare", {"query": {"q": "the"}}, 400),
        ("GET", "/me/compare", {"query": {"product": "bad id!"}}, 422),
        ("PUT", "/me/compare/preferences", {"body": {"priority": "cheap"}}, 422),
    ],
)
def test_bad_comparison_requests_are_problems(
    call: Api, method: str, resource: str, kwargs: dict[str, Any], status: int
) -> None:
    stock_the_kettle(call)
    answer = call(method, resource, groups=None, customer_id=CUSTOMER, **kwargs)
    assert answer[0] == status
    assert answer[1]["detail"]


def test_a_bad_offer_changes_nothing(call: Api) -> None:
    stock_the_kettle(call)
    path = {"product_id": "kettle-1"}
    bad = {**offer("newco", 100, 1), "vendor_rating": "7"}
    assert call("POST", "/catalog/products/{product_id}/offers", path=path, body=bad)[0] == 422
    taken = {**offer("newco", 100, 1), "sku": "kettle-1.cheapco"}
    assert call("POST", "/catalog/products/{product_id}/offers", path=path, body=taken)[0] == 409
    _, product = call("GET", "/catalog/products/{product_id}", path=path)
    assert sorted(o["vendor_id"] for o in product["offers"]) == ["cheapco", "quickco"]
    assert product["product"]["summary"]["offers"] == 2
