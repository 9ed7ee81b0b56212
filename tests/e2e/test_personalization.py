"""Personalization on the local cloud: the recommender trained on the lake, templates, next best offer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ecrm.analysis.models import CustomerTraits, TraitsComputed
from ecrm.core.ids import new_id
from ecrm.core.publisher import EventPublisher
from ecrm_ops.local_cloud import invoke_function
from ecrm_ops.personalization.train_commands import TRAINING_FUNCTION
from ecrm_ops.tour.context import TourContext, expect, wait_for

from infra.local.lake import LocalLake

RUN = new_id().lower()[-10:]  # item ids and trait values of this run only: other tests share the cloud
ITEMS = {f"e2e-{RUN}-{name}": category for name, category in [("a", "tents"), ("b", "tents"), ("c", "stoves")]}
OTHERS = {f"e2e-{RUN}-{name}": "kayaks" for name in ("x", "y")}
A, B, C = ITEMS
# What a list says when the customer's recent items led it (with the serving version's neighbours, or without)
FROM_RECENT_ITEMS = ("from the customer's recent items", "the recent items have no neighbours: popular items")


def _customer(tour: TourContext, token: str, *, city: str = "Lyon") -> str:
    body = {
        "source": "web",
        "identities": [{"type": "email", "value": f"{new_id('p').lower()}@example.org"}],
        "attributes": {"country": "FR", "city": city, "first_name": "Alex"},
    }
    return str(expect(tour.call("POST", "/customers", token=token, body=body), 201, "customer").body["customer_id"])


def _bought(tour: TourContext, token: str, customer_id: str, item: str, category: str, at: datetime) -> None:
    body = {
        "type": "order_completed",
        "occurred_at": at.isoformat(),
        "source": "shop",
        "channel": "web",
        "properties": {"product_id": item, "category": category, "revenue": 40.0},
    }
    expect(tour.call("POST", f"/customers/{customer_id}/interactions", token=token, body=body), 201, "order")


def _lake_count(tour: TourContext, sql: str) -> int:
    lake = LocalLake(tour.cloud.client("s3"), tour.cloud.physical_id("AWS::S3::Bucket", "LakeBucket"))
    return int(lake.query(sql)[0]["n"])


@pytest.fixture(scope="module")
def trained(tour: TourContext) -> dict[str, Any]:
    """Six customers bought a, b and c, four bought x and y, the target bought a and b; then the job trained."""
    marketer = tour.token(group="marketer")
    catalogue = [{"item_id": i, "name": f"Item {i[-1].upper()}", "category": c} for i, c in (ITEMS | OTHERS).items()]
    expect(tour.call("PUT", "/items", token=marketer, body={"items": catalogue}), 200, "PUT /items")
    start = datetime.now(UTC) - timedelta(hours=3)
    orders = 0
    customers = []
    for n in range(10):
        customer = _customer(tour, marketer)
        customers.append(customer)
        basket = {A: ITEMS[A], B: ITEMS[B], C: ITEMS[C]} if n < 6 else OTHERS
        for step, (item, category) in enumerate(basket.items()):
            _bought(tour, marketer, customer, item, category, start + timedelta(minutes=10 * n + step))
            orders += 1
    target = _customer(tour, marketer, city="Grenoble")
    customers.append(target)
    for step, item in enumerate((A, B)):
        _bought(tour, marketer, target, item, ITEMS[item], start + timedelta(hours=2, minutes=step))
        orders += 1
    wait_for(
        lambda: (
            _lake_count(
                tour,
                f"select count(distinct event_id) n from {{behaviour_events}} where product_id like 'e2e-{RUN}-%'",
            )
            >= orders
        ),
        timeout=120,
        interval=2,
        what="the orders in the lake",
    )
    listed = ", ".join(f"'{c}'" for c in customers)
    wait_for(  # the job reads the orders of current customers only: their profiles must be in the lake too
        lambda: (
            _lake_count(
                tour,
                f"select count(distinct customer_id) n from {{segment_profiles}} where customer_id in ({listed})",
            )
            == len(customers)
        ),
        timeout=60,
        interval=2,
        what="the customers' profiles in the lake",
    )
    # When the training job runs on the lake
    _, failed, report = invoke_function(TRAINING_FUNCTION, {"days": 30}, tour.cloud.state)
    assert not failed, report
    assert report["status"] == "trained", report
    return {"target": target, "report": report}


def test_recommendations_come_from_the_trained_model_and_leave_out_what_was_bought(
    tour: TourContext, trained: dict[str, Any]
) -> None:
    marketer = tour.token(group="marketer")
    target, report = trained["target"], trained["report"]
    # Then the version was measured against popularity and written
    assert set(report["metrics"]) <= {"model", "popularity"}
    assert report["written"]["model_items"] >= len(ITEMS)
    path = f"/customers/{target}/recommendations?k=10"

    def listed() -> Any:
        body = expect(tour.call("GET", path, token=marketer), 200, "GET recommendations").body
        # once personalization's projection holds the target's purchases, the list starts from them
        return body if body["note"] in FROM_RECENT_ITEMS else None

    recommended = wait_for(listed, timeout=60, interval=1, what="recommendations from the target's history")
    shown = [item["item_id"] for item in recommended["items"]]
    # And what the target bought is never recommended back
    assert A not in shown
    assert B not in shown
    if report["activated"]:
        # And what customers who bought the same items also bought comes first, with its catalogue details
        assert recommended["model_version"] == report["version"]
        assert shown[0] == C
        assert recommended["items"][0]["name"] == "Item C"


def test_a_template_escape_is_refused_with_its_line_and_a_valid_one_previews_with_the_customers_data(
    tour: TourContext, trained: dict[str, Any]
) -> None:
    marketer = tour.token(group="marketer")
    html = "<p>Picked for you in {{ customer.city }}</p>\n<p>{{ ''.__class__.__mro__ }}</p>"
    template = {
        "name": f"Picked for you {RUN}",
        "channel": "email",
        "default_locale": "en",
        "variants": {"en": {"subject": "For you, {{ customer.city }}", "html": html}},
    }
    # When a template tries to reach Python internals, Then it is refused at save time, naming the line
    refused = tour.call("POST", "/templates", token=marketer, body=template)
    assert refused.status == 400, refused.body
    assert refused.body["type"].endswith("/template-rejected")
    assert refused.body["problems"][0]["line"] == 2
    assert refused.body["problems"][0]["part"] == "html"

    # When a valid one is saved and previewed for the target
    valid = (
        "<p>Picked for you in {{ customer.city }} ({{ customer.country }}):</p>\n"
        "<ul>{% for item in recommendations %}<li>{{ item.name }}</li>{% endfor %}</ul>"
    )
    body = {**template, "variants": {"en": {"subject": "For you, {{ customer.city }}", "html": valid}}}
    saved = expect(tour.call("POST", "/templates", token=marketer, body=body), 201, "POST /templates").body
    preview = expect(
        tour.call(
            "POST",
            f"/templates/{saved['template_id']}/preview",
            token=marketer,
            body={"customer_id": trained["target"], "recommendations": 3},
        ),
        200,
        "POST preview",
    ).body
    # Then it renders with their data: their city and country, their recommendations by name
    assert preview["parts"]["subject"] == "For you, Grenoble"
    assert "Picked for you in Grenoble (FR):" in preview["parts"]["html"]
    assert "<li>Item A</li>" not in preview["parts"]["html"]
    if trained["report"]["activated"]:
        assert "<li>Item C</li>" in preview["parts"]["html"]


def test_an_offer_eligible_by_trait_is_the_next_best_offer_on_two_channels(tour: TourContext) -> None:
    marketer = tour.token(group="marketer")
    # Given a customer who may be emailed, with a trait only this run computes
    customer = _customer(tour, marketer)
    consent = {"state": "granted", "notice_version": "2026-11"}
    expect(
        tour.call("PUT", f"/customers/{customer}/consents/email/marketing", token=marketer, body=consent),
        200,
        "PUT consent",
    )
    cluster = f"e2e-{RUN}"
    traits = TraitsComputed(
        model="clusters",
        model_version="e2e",
        computed_at=datetime.now(UTC),
        customers=[CustomerTraits(customer_id=customer, traits={"cluster": cluster})],
    )
    EventPublisher(tour.cloud.state.event_bus_name, tour.cloud.client("events")).publish_all([traits])
    # And an offer for that trait, ranked above any other offer of the shared cloud
    offer = expect(
        tour.call(
            "POST",
            "/offers",
            token=marketer,
            body={
                "name": f"Cluster offer {RUN}",
                "channels": ["email", "web"],
                "eligibility": {"conditions": [{"trait": "cluster", "op": "==", "value": cluster}]},
                "valid_from": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
                "value": 10.0,
                "priority": 100,
            },
        ),
        201,
        "POST /offers",
    ).body

    def best(channel: str, present: bool) -> dict[str, Any]:
        path = f"/customers/{customer}/next-best-offer"
        answer = (
            tour.call("POST", path, token=marketer, body={"channel": channel})
            if present
            else tour.call("GET", f"{path}?channel={channel}", token=marketer)
        )
        return dict(expect(answer, 200, f"next best offer on {channel}").body)

    wait_for(
        lambda: (best("email", False)["offer"] or {}).get("offer_id") == offer["offer_id"],
        timeout=60,
        interval=1,
        what="the trait and the consent to reach personalization",
    )
    # When email and then the web page ask for the customer's next best offer
    by_email, on_web = best("email", True), best("web", True)
    # Then both show the same offer, from one remembered decision
    assert by_email["offer"]["offer_id"] == on_web["offer"]["offer_id"] == offer["offer_id"]
    assert by_email["decided_now"]
    assert not on_web["decided_now"]
    counted = expect(tour.call("GET", f"/offers/{offer['offer_id']}", token=marketer), 200, "GET offer").body
    assert counted["counters"]["presented"] == 2
