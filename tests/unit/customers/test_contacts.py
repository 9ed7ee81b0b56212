"""Contact cards, contacts payloads and message events on the timeline, without a table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from ecrm.core.errors import InvalidInput
from ecrm.customers.contacts import contact_card, read_request
from ecrm.customers.message_timeline import INTERACTION_TYPES, interaction_for
from ecrm.customers.models import (
    AttributeValue,
    Consent,
    ContactCardsRequest,
    Customer,
    Identity,
    Preferences,
    RecordConsentsRequest,
)

from infra.engines.customers import BROADCAST_TIMELINE_EVENTS

AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def identity(type_: str, value: str, namespace: str = "") -> Identity:
    return Identity(type=type_, value=value, namespace=namespace, source="shop", first_seen=AT)


def test_a_card_carries_addresses_from_identities_consent_states_preferences_and_plain_values() -> None:
    customer = Customer(
        customer_id="cus_1",
        status="active",
        created_at=AT,
        updated_at=AT,
        identities=[
            identity("email", "b@example.com"),
            identity("email", "a@example.com"),
            identity("phone", "+4930123456"),
            identity("external_id", "E1", "erp"),
            identity("device_id", "d-1", "anon"),
        ],
        consents=[
            Consent.model_validate(
                {
                    "channel": "sms",
                    "purpose": "marketing",
                    "state": "denied",
                    "proof": {"source": "web", "captured_at": AT},
                    "updated_at": AT,
                }
            )
        ],
        preferences=Preferences(preferred_channels=["whatsapp", "email"], language="fr", time_zone="Europe/Paris"),
        profile={"first_name": AttributeValue(value="Zoé", source="shop", observed_at=AT)},
        traits={"churn_risk": 0.2},
    )

    card = contact_card(customer)

    assert card.addresses == {"email": ["a@example.com", "b@example.com"], "phone": ["+4930123456"]}
    assert card.consent_state("sms", "marketing") == "denied"
    assert card.consent_state("email", "marketing") is None
    assert card.preferences.preferred_channels == ["whatsapp", "email"]
    assert card.profile == {"first_name": "Zoé"}
    assert card.traits == {"churn_risk": 0.2}


def test_requests_are_told_apart_by_their_operation() -> None:
    assert isinstance(read_request({"operation": "cards", "customer_ids": ["cus_1"]}), ContactCardsRequest)
    consents = {
        "operation": "record_consents",
        "customer_id": "cus_1",
        "consents": [{"channel": "sms", "purpose": "marketing", "state": "denied"}],
        "proof": {"source": "broadcast", "captured_at": "2026-11-23T10:00:00Z"},
        "recorded_by": "sms_stop",
    }
    assert isinstance(read_request(consents), RecordConsentsRequest)


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ({"operation": "send"}, "operation"),
        ({"operation": "cards", "customer_ids": []}, "customer_ids"),
        ({"operation": "cards", "customer_ids": [f"cus_{n}" for n in range(101)]}, "customer_ids"),
        ({"operation": "cards", "customer_ids": ["cus_1"], "extra": 1}, "extra"),
        ("not an object", "payload"),
        (
            {
                "operation": "record_consents",
                "customer_id": "cus_1",
                "consents": [{"channel": "fax", "purpose": "marketing", "state": "denied"}],
                "proof": {"source": "broadcast", "captured_at": "2026-11-23T10:00:00"},
                "recorded_by": "one_click",
            },
            "channel",
        ),
    ],
)
def test_a_bad_payload_is_invalid_input_naming_what_is_wrong(payload: Any, says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        read_request(payload)


def test_the_rule_routes_exactly_the_events_the_timeline_records() -> None:
    assert tuple(INTERACTION_TYPES) == BROADCAST_TIMELINE_EVENTS


def detail(event_id: str = "evt_1", **data: Any) -> dict[str, Any]:
    return {
        "metadata": {"id": event_id, "version": "1", "correlation_id": "cor_1", "occurred_at": "2026-11-23T10:00:00Z"},
        "data": {"message_id": "msg_1", "customer_id": "cus_1", "channel": "email", "topic": None, **data},
    }


def test_an_event_becomes_an_interaction_keyed_by_the_event_id() -> None:
    customer_id, interaction = interaction_for(
        "MessageClicked", detail(link="https://example.com/p", source="journey:j1", future_field=1)
    )
    assert customer_id == "cus_1"
    assert interaction.type == "message_clicked"
    assert interaction.interaction_id == "broadcast:evt_1"
    assert interaction.channel == "email"
    assert interaction.occurred_at == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert interaction.properties == {
        "message_id": "msg_1",
        "channel": "email",
        "source": "journey:j1",
        "link": "https://example.com/p",
    }


def test_events_the_timeline_does_not_record_or_cannot_read_are_invalid() -> None:
    with pytest.raises(InvalidInput, match="MessageRequested"):
        interaction_for("MessageRequested", detail())
    with pytest.raises(InvalidInput, match="unexpected shape"):
        interaction_for("MessageSent", {"metadata": {"id": "evt_1"}, "data": {}})


def test_the_timeline_reads_every_event_the_broadcast_contract_publishes() -> None:
    from ecrm.broadcast import models as broadcast
    from ecrm.core.events import envelope_for

    common = {
        "message_id": "msg_1",
        "customer_id": "cus_1",
        "channel": "voice",
        "purpose": "marketing",
        "source": "campaign:cmp_1",
        "reason": "no_consent",
        "occurred_at": AT,
    }
    for detail_type, interaction_type in INTERACTION_TYPES.items():
        event_class = getattr(broadcast, detail_type)
        if detail_type == "CustomerUnsubscribed":
            event = event_class(
                customer_id="cus_1", channel="sms", purpose="marketing", method="sms_stop", occurred_at=AT
            )
        else:
            status = detail_type.removeprefix("Message").lower()
            event = event_class(**common, status="delivered" if status in ("opened", "clicked") else status)
        customer_id, interaction = interaction_for(detail_type, envelope_for(event))
        assert (customer_id, interaction.type) == ("cus_1", interaction_type)
        assert interaction.occurred_at == AT
        if detail_type != "CustomerUnsubscribed":
            assert interaction.channel == "phone"
            assert interaction.properties["source"] == "campaign:cmp_1"
            assert interaction.properties["reason"] == "no_consent"
        else:
            assert interaction.properties["method"] == "sms_stop"
