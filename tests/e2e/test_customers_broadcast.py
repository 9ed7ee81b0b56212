"""What the broadcast engine gets of the customer store on the local cloud: the contacts function, the timeline.

The contacts function is invoked as the broadcast engine invokes it (Lambda Invoke with a JSON payload);
message events are put on the bus as the broadcast engine's outbox relay puts them, and reach the
customer's timeline through the rule, the queue and the consumer the template declares.
"""

from __future__ import annotations

import json
from typing import Any

from ecrm.core.ids import new_id
from ecrm_ops.tour.context import TourContext, expect, wait_for

from infra.local.cloud import LocalCloud


def invoke_contacts(cloud: LocalCloud, payload: dict[str, Any]) -> dict[str, Any]:
    function = cloud.physical_id("AWS::Lambda::Function", "CustomersContacts")
    response = cloud.client("lambda").invoke(FunctionName=function, Payload=json.dumps(payload).encode())
    answer: dict[str, Any] = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, answer
    return answer


def message_event(customer_id: str, detail_type: str, event_id: str) -> dict[str, Any]:
    data = {
        "message_id": "msg_E2E",
        "customer_id": customer_id,
        "channel": "email",
        "purpose": "marketing",
        "topic": None,
        "source": "campaign:cmp_e2e",
        "step": "0",
        "status": detail_type.removeprefix("Message").lower(),
        "reason": None,
        "occurred_at": "2026-11-23T10:00:00+00:00",
    }
    metadata = {"id": event_id, "version": "1", "correlation_id": "cor_e2e", "occurred_at": data["occurred_at"]}
    return {
        "Source": "ecrm.broadcast",
        "DetailType": detail_type,
        "Detail": json.dumps({"metadata": metadata, "data": data}),
    }


def test_contact_cards_consents_and_message_events_on_the_local_cloud(
    cloud: LocalCloud, tour: TourContext, staff_token: str
) -> None:
    # Given a customer who granted email marketing
    email = f"{new_id('b').lower()}@example.org"
    body = {
        "source": "web",
        "identities": [{"type": "email", "value": email}],
        "consents": [
            {
                "channel": "email",
                "purpose": "marketing",
                "state": "granted",
                "proof": {"source": "web", "captured_at": "2026-11-20T09:00:00+00:00"},
            }
        ],
    }
    customer = expect(tour.call("POST", "/customers", token=staff_token, body=body), 201, "customer").body[
        "customer_id"
    ]

    # When the broadcast engine asks for the card, then records a one-click unsubscribe
    cards = invoke_contacts(cloud, {"operation": "cards", "customer_ids": [customer, "cus_nobody"]})
    withdrawn = invoke_contacts(
        cloud,
        {
            "operation": "record_consents",
            "customer_id": customer,
            "consents": [{"channel": "email", "purpose": "marketing", "state": "denied"}],
            "proof": {"source": "broadcast", "captured_at": "2026-11-23T10:00:00+00:00"},
            "recorded_by": "one_click",
        },
    )

    # Then the card held the address and the grant, and the store now holds the withdrawal with its recorder
    assert cards["missing"] == ["cus_nobody"]
    assert cards["cards"][customer]["addresses"] == {"email": [email]}
    assert [c["state"] for c in cards["cards"][customer]["consents"]] == ["granted"]
    assert [c["state"] for c in withdrawn["card"]["consents"]] == ["denied"]
    held = expect(tour.call("GET", f"/customers/{customer}", token=staff_token), 200, "customer").body
    assert held["consents"][0]["proof"]["recorded_by"] == "broadcast:one_click"

    # When the broadcast engine's events arrive, one of them twice
    sent = message_event(customer, "MessageSent", new_id("evt_"))
    delivered = message_event(customer, "MessageDelivered", new_id("evt_"))
    bus = cloud.state.event_bus_name
    cloud.client("events").put_events(Entries=[{**e, "EventBusName": bus} for e in (sent, sent, delivered)])

    # Then each is one interaction on the customer's timeline
    def timeline_types() -> list[str]:
        page = expect(tour.call("GET", f"/customers/{customer}/timeline", token=staff_token), 200, "timeline").body
        return sorted(item["type"] for item in page["items"])

    wait_for(
        lambda: {"message_sent", "message_delivered"} <= set(timeline_types()),
        timeout=60,
        interval=0.5,
        what="the message events on the timeline",
    )
    assert timeline_types() == ["message_delivered", "message_sent"]
