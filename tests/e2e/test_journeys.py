"""A journey with a two-day wait and a branch on the local cloud: customers enter on their creation (through
the customer store's outbox, the bus and the journeys' queue), the local clock passes the two days in
seconds, the wake job moves them on, and the branch reads each customer's profile from the customer store's
contacts function, so two customers take the two paths; a third places an order while waiting and exits at
the goal. The journey sends nothing: the orchestration alone, quickly (broadcast has its own tests)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any

from ecrm.core.ids import new_id
from ecrm_ops.tour.context import TourContext, expect, wait_for

from infra.local.cloud import LocalCloud

TWO_DAYS = 2 * 24 * 3600


def journey_body(source: str) -> dict[str, Any]:
    members = {"kind": "profile", "attribute": "club_member", "op": "eq", "value": True}
    return {
        "name": "Two days, then members and the others apart",
        # only the customers this test creates: their record source is its own
        "trigger": {"event": "CustomerCreated", "source": "ecrm.customers", "match": {"record_source": source}},
        "goal_event": "OrderPlaced",
        "steps": [
            {"type": "wait", "id": "two_days", "seconds": TWO_DAYS, "next": "member"},
            {"type": "branch", "id": "member", "condition": members, "then": "members", "otherwise": "others"},
            {"type": "wait", "id": "members", "seconds": 3600, "next": None},
            {"type": "wait", "id": "others", "seconds": 3600, "next": None},
        ],
    }


def create_customer(tour: TourContext, source: str, **attributes: Any) -> str:
    body = {
        "source": source,
        "identities": [{"type": "email", "value": f"{new_id('jny').lower()}@example.org"}],
        "attributes": attributes,
    }
    created = expect(tour.call("POST", "/customers", token=tour.token(group="admin"), body=body), 201, "customer")
    return str(created.body["customer_id"])


def place_order(tour: TourContext, customer_id: str) -> None:
    """`POST /orders` with its Idempotency-Key header (the tour's client sends no custom header)."""
    body = {
        "customer_id": customer_id,
        "currency": "EUR",
        "channel": "web",
        "lines": [{"sku": "MUG-1", "name": "Mug", "quantity": 1, "unit_price_minor": 1200}],
    }
    request = urllib.request.Request(tour.api + "/orders", data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Authorization", tour.token(group="agent"))
    request.add_header("Idempotency-Key", new_id("jny-"))
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 201
    except urllib.error.HTTPError as error:  # pragma: no cover - the failure's body says why
        raise AssertionError(f"POST /orders: {error.code} {error.read()!r}") from None


def test_a_two_day_wait_and_a_branch_take_two_customers_apart_and_the_goal_ends_a_third(
    cloud: LocalCloud, tour: TourContext, staff_token: str
) -> None:
    # Given an active journey: wait two days, then members one way and the others another, an order the goal
    source = f"jny-{new_id('').lower()[-8:]}"
    created = expect(tour.call("POST", "/journeys", token=staff_token, body=journey_body(source)), 201, "journey")
    journey_id = created.body["journey_id"]
    expect(tour.call("POST", f"/journeys/{journey_id}/activate", token=staff_token), 200, "activate")

    def report() -> dict[str, Any]:
        return dict(expect(tour.call("GET", f"/journeys/{journey_id}/report", token=staff_token), 200, "r").body)

    try:
        # When three customers are created from the journey's source, one of them a club member
        create_customer(tour, source, club_member=True)
        create_customer(tour, source, club_member=False)
        buyer = create_customer(tour, source)
        # Then all three enter and wait
        wait_for(lambda: report()["active"] == 3, timeout=60, what="three customers entering the journey")

        # And when one of them orders during the wait, they exit at the goal
        place_order(tour, buyer)
        wait_for(lambda: report()["exited"] == {"goal": 1}, timeout=60, what="the buyer exiting at the goal")

        # When the local clock passes the two days, the wake job moves the other two through the branch
        cloud.clock.advance(timedelta(days=2, minutes=6))
        moved = wait_for(
            lambda: (r := report())["steps"].get("member") == 2 and r, timeout=60, what="the branch after the wait"
        )
        # Then the member took one path and the other customer the other
        assert moved["steps"] == {"two_days": 3, "member": 2, "members": 1, "others": 1}
        assert moved["active"] == 2

        # And when the last hour passes, both complete; the buyer stays out
        cloud.clock.advance(timedelta(hours=1, minutes=6))
        done = wait_for(lambda: (r := report())["active"] == 0 and r, timeout=60, what="both paths ending")
        assert done["exited"] == {"goal": 1, "completed": 2}
        assert done["entered"] == 3
    finally:
        expect(tour.call("POST", f"/journeys/{journey_id}/deactivate", token=staff_token), 200, "deactivate")
