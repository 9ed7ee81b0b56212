"""The customer store's outbox on the local cloud: a withdrawal reaches both projections though the bus failed (ADR 11).

The relay runs as the template declares it: the customers table's stream, polled by the local cloud
for the relay's event source mapping (filter, partial batch responses, retries), into the relay
function, onto the bus, through the rules to the analysis and personalization consumers.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from ecrm.core.ids import new_id
from ecrm_ops.tour.context import TourContext, expect, wait_for
from moto.events.models import EventsBackend

from infra.local.cloud import LocalCloud


def projected_consent(cloud: LocalCloud, table_prefix: str, customer_id: str) -> str | None:
    """The email marketing consent an engine's projection holds for the customer."""
    table = cloud.physical_id("AWS::DynamoDB::Table", table_prefix)
    item = (
        cloud.client("dynamodb")
        .get_item(TableName=table, Key={"pk": {"S": f"CUST#{customer_id}"}, "sk": {"S": "PROFILE"}})
        .get("Item")
    )
    if item is None:
        return None
    consent = json.loads(item["doc"]["S"]).get("consents", {}).get("email:marketing")
    return str(consent[0]) if consent else None


def both_projections(cloud: LocalCloud, customer_id: str) -> tuple[str | None, str | None]:
    return (
        projected_consent(cloud, "AnalysisTable", customer_id),
        projected_consent(cloud, "PersonalizationTable", customer_id),
    )


@pytest.fixture
def failing_bus(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """EventBridge (moto, in this process) refusing a customer's ConsentChanged a number of times."""
    fault: dict[str, Any] = {"customer_id": None, "refusals": 0, "refused": 0}
    put_events = EventsBackend.put_events

    def refusing(self: EventsBackend, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        def targeted(event: dict[str, Any]) -> bool:
            return (
                event.get("DetailType") == "ConsentChanged"
                and fault["refusals"] > 0
                and json.loads(event.get("Detail") or "{}").get("data", {}).get("customer_id") == fault["customer_id"]
            )

        refused = [targeted(e) for e in events]
        passed = put_events(self, [e for e, r in zip(events, refused, strict=True) if not r])
        results = iter(passed)
        entries = []
        for was_refused in refused:
            if was_refused:
                fault["refusals"] -= 1
                fault["refused"] += 1
                entries.append({"ErrorCode": "InternalFailure", "ErrorMessage": "injected by the test"})
            else:
                entries.append(next(results))
        return entries

    monkeypatch.setattr(EventsBackend, "put_events", refusing)
    return fault


def test_a_withdrawal_reaches_both_projections_though_put_events_failed_first(
    cloud: LocalCloud, tour: TourContext, failing_bus: dict[str, Any]
) -> None:
    marketer = tour.token(group="marketer")
    # Given a customer who granted email marketing, as both projections know
    body = {
        "source": "web",
        "identities": [{"type": "email", "value": f"{new_id('o').lower()}@example.org"}],
        "attributes": {"country": "FR"},
    }
    customer = str(
        expect(tour.call("POST", "/customers", token=marketer, body=body), 201, "customer").body["customer_id"]
    )
    consent_path = f"/customers/{customer}/consents/email/marketing"
    grant = {"state": "granted", "notice_version": "2026-11"}
    expect(tour.call("PUT", consent_path, token=marketer, body=grant), 200, "grant")
    wait_for(
        lambda: both_projections(cloud, customer) == ("granted", "granted"),
        timeout=60,
        interval=0.5,
        what="the grant in both projections",
    )
    # And a bus that refuses the customer's next ConsentChanged more times than the relay retries in one invocation
    failing_bus.update(customer_id=customer, refusals=4)
    # When the customer withdraws
    withdrawn = tour.call("PUT", consent_path, token=marketer, body={"state": "denied"})
    # Then the request succeeds (the bus is not on its path)
    expect(withdrawn, 200, "withdraw")
    # And the withdrawal reaches both projections once the relay's retry gets through
    wait_for(
        lambda: both_projections(cloud, customer) == ("denied", "denied"),
        timeout=90,
        interval=0.5,
        what="the withdrawal in both projections",
    )
    assert failing_bus["refused"] == 4, "the bus refused the withdrawal before it went through"
    relay = next(p for p in cloud.pollers if "OutboxRelay" in p.function)
    assert relay.alive
    assert getattr(relay, "given_up", []) == [], "no batch went to the relay's on-failure queue"
