"""Erasure fans out to every participating engine and completes only when all acknowledged."""

from __future__ import annotations

from ecrm.core.clock import FixedClock
from ecrm.customers.models import CustomerDataErased, CustomerErasureRequested, CustomerUpsert
from ecrm.customers.service import CustomerService

from tests.integration.customers.conftest import RecordingPublisher


def test_the_request_completes_only_when_every_engine_acknowledged(
    service: CustomerService, publisher: RecordingPublisher, clock: FixedClock
) -> None:
    # Given two engines hold data on customers
    service.erasure_participants = ("broadcast", "customers")
    customer = service.upsert(
        CustomerUpsert.model_validate(
            {"source": "web", "identities": [{"type": "email", "value": "two.engines@example.com"}]}
        )
    ).customer_id
    # When erasure is requested
    request = service.request_erasure(customer, requested_by="dpo@example.com")
    (requested,) = publisher.of("CustomerErasureRequested")
    assert isinstance(requested, CustomerErasureRequested)
    assert requested.customer_ids == [customer]
    # And the customer store erases its part and acknowledges
    own = service.erase_own_data(requested)
    after_one = service.acknowledge_erasure(own)
    # Then the request still waits for the other engine
    assert after_one is not None
    assert after_one.status == "pending"
    assert not publisher.of("CustomerErased")
    # When the other engine acknowledges (twice: at-least-once delivery)
    clock.advance(seconds=5)
    other = CustomerDataErased(request_id=request.request_id, engine="broadcast", erased_at=clock.now())
    service.acknowledge_erasure(other)
    done = service.acknowledge_erasure(other)
    # Then it is completed once, and CustomerErased is published once
    assert done is not None
    assert done.status == "completed"
    assert set(done.acknowledged) == {"broadcast", "customers"}
    assert len(publisher.of("CustomerErased")) == 1


def test_erasing_a_survivor_also_erases_everyone_merged_into_it(
    service: CustomerService, publisher: RecordingPublisher
) -> None:
    def upsert(*identities: tuple[str, str]) -> str:
        return service.upsert(
            CustomerUpsert.model_validate(
                {"source": "web", "identities": [{"type": t, "value": v} for t, v in identities]}
            )
        ).customer_id

    a = upsert(("email", "first@example.com"))
    b = upsert(("phone", "+4930333333"))
    upsert(("email", "first@example.com"), ("phone", "+4930333333"))
    request = service.request_erasure(a, requested_by="dpo@example.com")
    assert sorted(request.customer_ids) == sorted([a, b])
    service.erase_own_data(publisher.of("CustomerErasureRequested")[0])
    assert service.store.load(a, follow=False).status == "erased"  # type: ignore[union-attr]
    assert service.store.load(b, follow=False).status == "erased"  # type: ignore[union-attr]
    assert service.store.owners_of(["email:first@example.com", "phone:+4930333333"]) == {}
