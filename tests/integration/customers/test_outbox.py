"""The customer store's events leave through its outbox: moto's DynamoDB stream, the real relay, a fake bus (ADR 11)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import boto3
import pytest
from ecrm.core.outbox_relay import OutboxRelay
from ecrm.customers.models import ConsentChanged, ConsentUpdate, CustomerUpsert
from ecrm.customers.service import CustomerService
from ecrm.customers.store import CustomerStore

from tests.integration.customers.conftest import STREAMS_ENDPOINT, TABLE
from tests.integration.outbox import StreamTail, domain_events
from tests.unit.fakes import FakeEventsClient


@pytest.fixture
def tail(dynamodb: Any) -> StreamTail:
    return StreamTail(
        dynamodb, boto3.client("dynamodbstreams", region_name="us-east-1", endpoint_url=STREAMS_ENDPOINT), TABLE
    )


def new_customer(service: CustomerService, email: str) -> str:
    record = {
        "source": "web",
        "identities": [{"type": "email", "value": email}],
        "consents": [
            {
                "channel": "email",
                "purpose": "marketing",
                "state": "granted",
                "proof": {"source": "web_form", "captured_at": "2026-11-20T09:00:00+00:00"},
            }
        ],
    }
    return service.upsert(CustomerUpsert.model_validate(record)).customer_id


def set_email_marketing(service: CustomerService, customer_id: str, state: str) -> None:
    service.set_consent(
        customer_id, "email", "marketing", ConsentUpdate(state=state), source="staff", recorded_by="staff-1"
    )


def run_like_lambda(relay: OutboxRelay, records: list[dict[str, Any]], max_invocations: int = 10) -> int:
    """Invoke the relay from a checkpoint until the batch is done, as Lambda's stream poller does."""
    checkpoint, invocations = 0, 0
    while checkpoint < len(records) and invocations < max_invocations:
        invocations += 1
        batch = records[checkpoint:]
        try:
            failures = [f["itemIdentifier"] for f in relay.handle({"Records": batch})["batchItemFailures"]]
        except ConnectionError:
            continue  # the invocation died: Lambda retries the whole batch
        sequence = [r["dynamodb"]["SequenceNumber"] for r in batch]
        checkpoint += min(sequence.index(f) for f in failures) if failures else len(batch)
    return invocations


def consent_states(bus: FakeEventsClient, customer_id: str) -> list[str]:
    return [
        e.state for e in domain_events(bus.accepted) if isinstance(e, ConsentChanged) and e.customer_id == customer_id
    ]


def test_put_events_failing_on_the_first_try_still_delivers_the_withdrawal(
    service: CustomerService, tail: StreamTail
) -> None:
    # Given a customer who granted email marketing, and a bus that refuses the next events a few times
    customer = new_customer(service, "withdraws@example.com")
    tail.read()
    refusals = {"n": 3}

    def outcome(call: int, index: int, entry: Mapping[str, Any]) -> str | None:
        if refusals["n"] > 0:
            refusals["n"] -= 1
            return "InternalFailure"
        return None

    bus = FakeEventsClient(outcome=outcome)
    # When the customer withdraws: the request succeeds, the bus is not on its path
    set_email_marketing(service, customer, "denied")
    records = tail.read()
    # Then the relay's first invocation gives up on the record, and Lambda's retry from it publishes the withdrawal
    relay = OutboxRelay("ecrm", bus, sleep=lambda _: None)
    assert run_like_lambda(relay, records) == 2
    assert consent_states(bus, customer) == ["denied"]


def test_a_crash_between_the_write_and_the_publication_loses_nothing(
    service: CustomerService, tail: StreamTail
) -> None:
    # Given a withdrawal committed, and a relay that dies mid-publish
    customer = new_customer(service, "crash@example.com")
    tail.read()
    set_email_marketing(service, customer, "denied")
    calls = {"n": 0}

    class DyingBus(FakeEventsClient):
        def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            calls["n"] += 1
            if calls["n"] == 1:
                raise ConnectionError("the relay died")
            return super().put_events(Entries=Entries)

    bus = DyingBus()
    # When the stream is read again from the checkpoint (the batch retried)
    assert run_like_lambda(OutboxRelay("ecrm", bus), tail.read()) == 2
    # Then the withdrawal is published
    assert consent_states(bus, customer) == ["denied"]


def test_a_failed_transaction_leaves_neither_the_change_nor_its_event(
    service: CustomerService, dynamodb: Any, tail: StreamTail
) -> None:
    # Given a customer, and the next transaction failing
    customer = new_customer(service, "atomic@example.com")
    tail.read()

    class FailingClient:
        def __getattr__(self, name: str) -> Any:
            if name == "transact_write_items":

                def fail(**_: Any) -> None:
                    raise ConnectionError("the write never reached DynamoDB")

                return fail
            return getattr(dynamodb, name)

    failing = CustomerService(CustomerStore(FailingClient(), TABLE), service.publisher, service.clock, service.policy)
    # When a withdrawal fails to commit
    with pytest.raises(ConnectionError):
        set_email_marketing(failing, customer, "denied")
    # Then the consent is unchanged and the stream carries nothing
    assert [c.state for c in service.get(customer).consents] == ["granted"]
    assert tail.read() == []


def test_a_merge_committed_before_the_request_failed_keeps_its_event(
    service: CustomerService, dynamodb: Any, tail: StreamTail
) -> None:
    # Given two customers, and a store whose save after the merge fails (the request will fail)
    a = new_customer(service, "merge.a@example.com")
    b = service.upsert(
        CustomerUpsert.model_validate({"source": "web", "identities": [{"type": "phone", "value": "+4930111111"}]})
    ).customer_id
    tail.read()

    class FailsAfterMerge(CustomerStore):
        def save(self, *args: Any, **kwargs: Any) -> None:
            raise ConnectionError("died after the merge")

    failing = CustomerService(FailsAfterMerge(dynamodb, TABLE), service.publisher, service.clock, service.policy)
    linking = {
        "source": "web",
        "identities": [{"type": "email", "value": "merge.a@example.com"}, {"type": "phone", "value": "+4930111111"}],
        "attributes": {"city": "Berlin"},
    }
    with pytest.raises(ConnectionError):
        failing.upsert(CustomerUpsert.model_validate(linking))
    # Then the merge that was committed is on its way to the bus
    bus = FakeEventsClient()
    OutboxRelay("ecrm", bus).relay(tail.read())
    merged = [e for e in domain_events(bus.accepted) if e.detail_type == "CustomersMerged"]
    assert [(e.survivor_id, e.merged_ids) for e in merged] == [(a, [b])]  # type: ignore[attr-defined]


def test_each_customers_events_are_relayed_in_the_order_of_the_changes(
    service: CustomerService, tail: StreamTail
) -> None:
    # Given two customers changing their consent back and forth, interleaved
    first = new_customer(service, "order.1@example.com")
    second = new_customer(service, "order.2@example.com")
    tail.read()
    for state in ("denied", "granted", "denied"):
        set_email_marketing(service, first, state)
        set_email_marketing(service, second, "granted" if state == "denied" else "denied")
    # When the relay publishes the stream
    bus = FakeEventsClient()
    OutboxRelay("ecrm", bus).relay(tail.read())
    # Then each customer's consent events are in the order they changed, and no call held two of one customer
    assert consent_states(bus, first) == ["denied", "granted", "denied"]
    assert consent_states(bus, second) == ["denied", "granted"]  # its first statement changed nothing
    for call in bus.calls:
        customers = [json.loads(e["Detail"])["data"]["customer_id"] for e in call]
        assert len(customers) == len(set(customers))


def test_a_batch_relayed_twice_publishes_the_same_event_ids(service: CustomerService, tail: StreamTail) -> None:
    customer = new_customer(service, "twice@example.com")
    set_email_marketing(service, customer, "denied")
    records = tail.read()
    bus = FakeEventsClient()
    relay = OutboxRelay("ecrm", bus)
    relay.relay(records)
    once = [json.loads(e["Detail"])["metadata"]["id"] for e in bus.accepted]
    relay.relay(records)
    twice = [json.loads(e["Detail"])["metadata"]["id"] for e in bus.accepted]
    assert twice == once + once


def test_erasure_removes_the_outbox_with_the_customers_data(service: CustomerService, tail: StreamTail) -> None:
    # Given a customer whose outbox holds a profile snapshot
    customer = new_customer(service, "erase.me@example.com")
    request = service.request_erasure(customer, requested_by="dpo@example.com")
    bus = FakeEventsClient()
    OutboxRelay("ecrm", bus).relay(tail.read())
    (requested,) = [e for e in domain_events(bus.accepted) if e.detail_type == "CustomerErasureRequested"]
    # When the customer store erases its part
    service.erase_own_data(requested)  # type: ignore[arg-type]
    # Then only the tombstone remains under the customer: the outbox item went with the data
    assert [i["sk"] for i in service.store.all_items(customer)] == ["PROFILE"]
    assert request.customer_ids == [customer]


class DownBus:
    """A publisher whose every direct publish fails (the bus unreachable): a write that needs it fails with it."""

    def publish_all(self, events: Any, *, correlation_id: str | None = None) -> None:
        raise ConnectionError("the bus did not answer")


def test_an_interactions_event_rides_in_its_timeline_item_and_is_relayed_once(
    dynamodb: Any, service: CustomerService, tail: StreamTail
) -> None:
    from ecrm.customers.models import InteractionIn

    # Given a customer, and the service's direct publisher down
    customer = new_customer(service, "visits@example.com")
    tail.read()
    service.publisher = DownBus()
    visit = InteractionIn.model_validate(
        {"type": "page_view", "occurred_at": "2026-11-23T10:00:00+00:00", "source": "web", "interaction_id": "v-1"}
    )
    # When the interaction is recorded, then recorded again (a redelivered event)
    first = service.record_interaction(customer, visit, correlation_id="cor-v")
    again = service.record_interaction(customer, visit, correlation_id="cor-v")
    # Then it was recorded once, without the direct publisher, and its one event leaves through the stream
    assert (first[1], again[1]) == (True, False)
    bus = FakeEventsClient()
    OutboxRelay("ecrm", bus).relay(tail.read())
    relayed = [e for e in domain_events(bus.accepted) if e.detail_type == "InteractionRecorded"]
    assert [(e.customer_id, e.interaction_id, e.type) for e in relayed] == [(customer, "v-1", "page_view")]
