"""The event consumer on moto: customer store and segmentation events into the projection, merges, erasure."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from ecrm.core.events import DomainEvent, envelope_for
from ecrm.customers.models import CustomerErasureRequested, CustomersMerged, ProfileSnapshot
from ecrm.personalization.customer_events import ProjectionService
from ecrm.personalization.offers import OutcomeCounts
from ecrm.personalization.store import PersonalizationStore

from functions.personalization import on_customer_event
from tests.integration.personalization.conftest import (
    NOW,
    RecordingPublisher,
    consent,
    created,
    customer_id,
    entered,
    exited,
    interaction,
    traits,
)
from tests.samples import load_sample, sqs_batch


def bus_body(event: DomainEvent, n: int = 0) -> str:
    body = load_sample("eventbridge/ping_requested.json")
    body.update({"id": f"00000000-0000-4000-8000-{n:012d}", "source": event.source, "detail-type": event.detail_type})
    body["detail"] = envelope_for(event, correlation_id="cor_test")
    return json.dumps(body)


@pytest.fixture
def consume(projections: ProjectionService, lambda_context: Any) -> Any:
    def run(*events: DomainEvent) -> dict[str, Any]:
        batch = sqs_batch([bus_body(e, n) for n, e in enumerate(events)])
        handler: Any = on_customer_event.handler  # the decorated handler takes the injected service too
        result: dict[str, Any] = handler(batch, lambda_context, projections)
        return result

    return run


def test_a_batch_of_events_builds_the_projection(consume: Any, store: PersonalizationStore) -> None:
    customer = customer_id()
    response = consume(
        created(customer, country="fr", language="fr-FR", consents={"email:marketing": "granted"}),
        interaction(customer, "s1", "s2", kind="order_completed", at=NOW - timedelta(days=2)),
        interaction(customer, "h1", at=NOW - timedelta(days=1)),
        entered(customer, "seg_vip"),
        traits(customer, churn_risk=0.4, rfm_segment="loyal"),
    )

    assert response == {"batchItemFailures": []}
    projection = store.projection(customer)
    assert projection is not None
    assert (projection.country, projection.language) == ("FR", "fr-FR")
    assert projection.marketing_channels == {"email"}
    assert projection.segment_ids == {"seg_vip"}
    assert projection.traits == {"churn_risk": 0.4, "rfm_segment": "loyal"}
    assert [r.item_id for r in projection.recent] == ["h1", "s2", "s1"]
    assert set(projection.bought) == {"s1", "s2"}


def test_redelivered_and_reordered_events_change_nothing(consume: Any, store: PersonalizationStore) -> None:
    customer = customer_id()
    viewed = interaction(customer, "s1")
    later_exit = exited(customer, "seg_vip", at=NOW + timedelta(hours=1))
    consume(created(customer, version=2, country="FR"), viewed, later_exit)
    before = store.projection(customer)

    # the same interaction again, an older snapshot, the entry that preceded the exit
    consume(viewed, created(customer, version=1, country="DE"), entered(customer, "seg_vip"))

    after = store.projection(customer)
    assert after is not None
    assert before is not None
    assert after.model_dump(exclude={"version"}) == before.model_dump(exclude={"version"})
    assert after.country == "FR"
    assert after.segment_ids == frozenset()


def test_an_event_this_consumer_does_not_take_fails_alone(consume: Any, lambda_context: Any) -> None:
    from ecrm.personalization.models import ModelTrained

    unexpected = ModelTrained(
        model_version="v",
        algorithm="ease",
        trained_at=NOW,
        interactions=1,
        customers=1,
        items=1,
        k=10,
        metrics={},
        activated=True,
        reason="r",
        artifact="",
    )
    response = consume(created(customer_id()), unexpected)
    assert len(response["batchItemFailures"]) == 1


def test_a_merge_moves_history_and_usage_to_the_survivor_and_later_events_follow(
    consume: Any, store: PersonalizationStore
) -> None:
    survivor, loser = customer_id(), customer_id()
    consume(
        created(survivor, country="FR"),
        created(loser, country="FR"),
        interaction(loser, "s9", kind="order_completed"),
    )
    store.add_usage(loser, {"off_1": OutcomeCounts(presented=2, accepted=1)})
    merged = CustomersMerged(
        survivor_id=survivor,
        merged_ids=[loser],
        matched_by=["email:x@example.com"],
        reason="same email",
        merged_at=NOW + timedelta(minutes=1),
        snapshot=ProfileSnapshot(version=5, attributes={"country": "BE"}),
    )

    consume(merged)
    consume(merged)  # redelivered
    consume(interaction(loser, "h7", at=NOW + timedelta(minutes=2)))  # a late event for the old id

    kept = store.load_customer(survivor)
    assert kept.projection is not None
    assert kept.projection.country == "BE"
    assert {r.item_id for r in kept.projection.recent} == {"s9", "h7"}
    assert "s9" in kept.projection.bought
    assert kept.usage["off_1"] == OutcomeCounts(presented=2, accepted=1)
    gone = store.load_customer(loser)
    assert gone.projection is not None
    assert gone.projection.status == "merged"
    assert gone.projection.recent == []
    assert gone.usage == {}


def test_erasure_forgets_the_customer_and_acknowledges(
    consume: Any, store: PersonalizationStore, publisher: RecordingPublisher
) -> None:
    customer = customer_id()
    consume(
        created(customer, country="FR"), interaction(customer, "s1"), consent(customer, "sms", "marketing", "granted")
    )
    store.write_for_you("v1", {customer: ["s2"]}, expires_at=2_000_000_000)
    request = CustomerErasureRequested(
        request_id="era_01JD3Z6Q5N8V4W7X2Y9A0B1C2D", customer_id=customer, customer_ids=[customer], requested_at=NOW
    )

    assert consume(request) == {"batchItemFailures": []}
    consume(interaction(customer, "s3"))  # a late event brings nothing back

    record = store.load_customer(customer)
    assert record.projection is not None
    assert record.projection.status == "erased"
    assert (record.projection.recent, record.projection.attributes, record.projection.consents) == ([], {}, {})
    assert (record.for_you, record.usage) == ([], {})
    (ack,) = publisher.of("CustomerDataErased")
    assert (ack.source, ack.engine, ack.request_id) == ("ecrm.personalization", "personalization", request.request_id)
