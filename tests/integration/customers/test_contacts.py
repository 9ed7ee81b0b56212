"""The contacts function and the message timeline on a moto table: what the broadcast engine gets and leaves."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ecrm.core.errors import InvalidInput, NotFound
from ecrm.customers.contacts import ContactDirectory
from ecrm.customers.message_timeline import INTERACTION_TYPES, MessageTimeline
from ecrm.customers.models import CustomerErasureRequested, CustomerUpsert, TrackedIds
from ecrm.customers.service import CustomerService
from ecrm.customers.store import CustomerStore

from functions.customers import on_broadcast_event, task_contacts
from tests.integration.customers.conftest import TABLE, RecordingPublisher
from tests.samples import sqs_batch

GRANTED_AT = "2026-11-20T09:00:00+00:00"


def upsert(service: CustomerService, identities: list[dict[str, str]], **extra: Any) -> str:
    record = {"source": "shop", "identities": identities, **extra}
    return service.upsert(CustomerUpsert.model_validate(record)).customer_id


def email_marketing(state: str, at: str = GRANTED_AT) -> dict[str, Any]:
    return {"channel": "email", "purpose": "marketing", "state": state, "proof": {"source": "web", "captured_at": at}}


@pytest.fixture
def directory(service: CustomerService) -> ContactDirectory:
    return ContactDirectory(service)


def test_cards_answer_each_id_with_addresses_consents_preferences_and_profile(
    service: CustomerService, directory: ContactDirectory, lambda_context: Any
) -> None:
    # Given a customer with two emails, a phone, a consent and preferences, a second one merged into a third,
    # and an erased one
    rich = upsert(
        service,
        [{"type": "email", "value": "Ada@Example.com"}, {"type": "phone", "value": "+49 30 1234567"}],
        attributes={"first_name": "Ada", "country": "de"},
        consents=[email_marketing("granted")],
        preferences={"preferred_channels": ["sms", "email"], "language": "de", "time_zone": "Europe/Berlin"},
    )
    upsert(
        service,
        [{"type": "email", "value": "second@example.com"}, {"type": "external_id", "namespace": "erp", "value": "E1"}],
    )
    survivor = upsert(service, [{"type": "external_id", "namespace": "erp", "value": "E9"}])  # the oldest survives
    merged = upsert(service, [{"type": "email", "value": "old@example.com"}])
    upsert(
        service,
        [{"type": "email", "value": "old@example.com"}, {"type": "external_id", "namespace": "erp", "value": "E9"}],
    )
    assert service.store.load(merged, follow=False).status == "merged"  # type: ignore[union-attr]
    erased = upsert(service, [{"type": "email", "value": "gone@example.com"}])
    request = service.request_erasure(erased, requested_by="staff-1")
    service.erase_own_data(
        CustomerErasureRequested(
            request_id=request.request_id,
            customer_id=erased,
            customer_ids=[erased],
            requested_at=request.requested_at,
            tracked_ids=TrackedIds(),
        )
    )

    # When the broadcast engine asks for their cards through the function
    answer = task_contacts.handler(
        {"operation": "cards", "customer_ids": [rich, merged, erased, "cus_unknown"]}, lambda_context, directory
    )

    # Then the merged id answers with its survivor, erased and unknown ids are missing
    assert answer["missing"] == [erased, "cus_unknown"]
    assert answer["cards"][merged]["customer_id"] == survivor
    assert answer["cards"][merged]["addresses"] == {"email": ["old@example.com"]}
    card = answer["cards"][rich]
    assert card["status"] == "active"
    assert card["addresses"] == {"email": ["ada@example.com"], "phone": ["+49301234567"]}
    assert [(c["channel"], c["purpose"], c["state"]) for c in card["consents"]] == [("email", "marketing", "granted")]
    assert card["preferences"]["preferred_channels"] == ["sms", "email"]
    assert card["preferences"]["time_zone"] == "Europe/Berlin"
    assert card["profile"] == {"first_name": "Ada", "country": "DE"}
    json.dumps(answer)  # what Lambda returns is plain JSON


def unsubscribe(customer_id: str, at: str = "2026-11-23T10:00:00+00:00") -> dict[str, Any]:
    return {
        "operation": "record_consents",
        "customer_id": customer_id,
        "consents": [{"channel": "email", "purpose": "marketing", "state": "denied"}],
        "proof": {"source": "broadcast", "captured_at": at, "text": "List-Unsubscribe one-click", "ip": "192.0.2.1"},
        "recorded_by": "one_click",
    }


def test_record_consents_writes_through_the_outbox_keeps_the_proof_and_a_repeat_changes_nothing(
    service: CustomerService, directory: ContactDirectory, publisher: RecordingPublisher, lambda_context: Any
) -> None:
    # Given a customer who granted email marketing
    customer_id = upsert(
        service, [{"type": "email", "value": "ada@example.com"}], consents=[email_marketing("granted")]
    )
    publisher.events  # noqa: B018 - drain what the creation published
    before = len(publisher.of("ConsentChanged"))

    # When a one-click unsubscribe is recorded, then redelivered
    answer = task_contacts.handler(unsubscribe(customer_id), lambda_context, directory)
    version = service.store.load(customer_id).version  # type: ignore[union-attr]
    again = task_contacts.handler(unsubscribe(customer_id), lambda_context, directory)

    # Then the card says denied, one ConsentChanged left through the outbox, and the proof is in the history
    assert answer["card"]["consents"][0]["state"] == "denied"
    changed = publisher.of("ConsentChanged")[before:]
    assert [(e.channel, e.purpose, e.state, e.previous_state, e.proof_source) for e in changed] == [
        ("email", "marketing", "denied", "granted", "broadcast")
    ]
    history = service.export(customer_id)["consent_history"]
    withdrawal = [json.loads(h["doc"]) if "doc" in h else h for h in history]
    proofs = [h["proof"] for h in withdrawal if h["state"] == "denied"]
    assert proofs == [
        {
            "source": "broadcast",
            "captured_at": "2026-11-23T10:00:00Z",
            "notice_version": None,
            "text": "List-Unsubscribe one-click",
            "ip": "192.0.2.1",
            "user_agent": None,
            "recorded_by": "broadcast:one_click",
        }
    ]
    assert again == answer
    assert service.store.load(customer_id).version == version  # type: ignore[union-attr]


def test_record_consents_of_an_unknown_customer_or_a_bad_payload_is_a_clear_error(
    directory: ContactDirectory, lambda_context: Any
) -> None:
    with pytest.raises(NotFound):
        task_contacts.handler(unsubscribe("cus_unknown"), lambda_context, directory)
    with pytest.raises(InvalidInput, match="consents"):
        task_contacts.handler({**unsubscribe("cus_x"), "consents": []}, lambda_context, directory)


def message_event(detail_type: str, event_id: str, customer_id: str, **data: Any) -> str:
    return json.dumps(
        {
            "version": "0",
            "id": f"bus-{event_id}",
            "detail-type": detail_type,
            "source": "ecrm.broadcast",
            "account": "123456789012",
            "time": "2026-11-23T10:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": {
                "metadata": {
                    "id": event_id,
                    "version": "1",
                    "correlation_id": "cor_1",
                    "occurred_at": "2026-11-23T10:00:00+00:00",
                },
                "data": {
                    "message_id": "msg_A",
                    "customer_id": customer_id,
                    "channel": "voice",
                    "purpose": "marketing",
                    "topic": None,
                    "source": "campaign:cmp_1",
                    "step": "0",
                    "status": detail_type.removeprefix("Message").lower(),
                    "occurred_at": "2026-11-23T10:00:00+00:00",
                    **data,
                },
            },
        }
    )


def test_each_message_event_becomes_one_interaction_and_a_redelivery_adds_nothing(
    service: CustomerService, lambda_context: Any
) -> None:
    # Given a customer and one event of each type the timeline records
    customer_id = upsert(service, [{"type": "email", "value": "ada@example.com"}])
    bodies = [
        message_event(detail_type, f"evt_{n}", customer_id, reason="no_consent", link="https://example.com/x")
        for n, detail_type in enumerate(INTERACTION_TYPES)
    ]
    timeline = MessageTimeline(service)

    # When they are delivered, then the whole batch again
    first = on_broadcast_event.handler(sqs_batch(bodies), lambda_context, timeline)
    second = on_broadcast_event.handler(sqs_batch(bodies), lambda_context, timeline)

    # Then one interaction per event, the same after the redelivery
    assert first["batchItemFailures"] == second["batchItemFailures"] == []
    items, _ = service.timeline(customer_id, limit=50, cursor=None)
    assert sorted(i.type for i in items) == sorted(INTERACTION_TYPES.values())
    sent = next(i for i in items if i.type == "message_sent")
    assert sent.channel == "phone"
    assert sent.source == "broadcast"
    assert sent.properties["channel"] == "voice"
    assert sent.properties["source"] == "campaign:cmp_1"
    assert sent.properties["message_id"] == "msg_A"
    assert sent.properties["reason"] == "no_consent"


def test_an_event_of_an_erased_customer_is_dropped_and_an_unknown_shape_goes_to_the_dlq(
    service: CustomerService, lambda_context: Any
) -> None:
    bodies = [
        message_event("MessageSent", "evt_1", "cus_unknown"),
        message_event("MessageRequested", "evt_2", "cus_unknown"),
        message_event("MessageSent", "evt_3", "cus_unknown").replace('"customer_id"', '"someone"'),
    ]
    answer = on_broadcast_event.handler(sqs_batch(bodies), lambda_context, MessageTimeline(service))
    assert len(answer["batchItemFailures"]) == 2


class RecordingClient:
    """A DynamoDB client that notes the IAM action of every call (and of every item of a transaction)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.actions: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        if not callable(attribute):
            return attribute

        def call(**kwargs: Any) -> Any:
            if name == "transact_write_items":
                self.actions.update(f"dynamodb:{next(iter(item))}Item" for item in kwargs["TransactItems"])
            else:
                self.actions.add("dynamodb:" + "".join(part.title() for part in name.split("_")))
            return attribute(**kwargs)

        return call


def test_the_contacts_function_needs_no_more_than_its_role_grants(
    service: CustomerService, dynamodb: Any, lambda_context: Any
) -> None:
    from infra.engines.customers import CONTACTS_TABLE_ACTIONS

    # Given a survivor with a merged id, and the function's use cases on a client that notes each action
    survivor = upsert(service, [{"type": "external_id", "namespace": "erp", "value": "E9"}])
    merged = upsert(service, [{"type": "email", "value": "old@example.com"}])
    upsert(
        service,
        [{"type": "email", "value": "old@example.com"}, {"type": "external_id", "namespace": "erp", "value": "E9"}],
    )
    recording = RecordingClient(dynamodb)
    directory = ContactDirectory(
        CustomerService(CustomerStore(recording, TABLE), service.publisher, service.clock, service.policy)
    )

    # When it answers cards and records a withdrawal
    task_contacts.handler(
        {"operation": "cards", "customer_ids": [survivor, merged, "cus_x"]}, lambda_context, directory
    )
    task_contacts.handler(unsubscribe(survivor), lambda_context, directory)

    # Then every action it took is one its role grants
    assert recording.actions <= set(CONTACTS_TABLE_ACTIONS), recording.actions - set(CONTACTS_TABLE_ACTIONS)
    assert "dynamodb:PutItem" in recording.actions
