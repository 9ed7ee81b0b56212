"""The domain event contract: the registry, the envelope and its JSON Schema."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import jsonschema
import pytest
from ecrm.core.events import (
    DomainEvent,
    EventEnvelope,
    envelope_for,
    envelope_schema,
    registered_events,
)
from ecrm.core.ids import is_id
from ecrm.platform.models import PingRequested

from tests.samples import load_sample

REQUESTED_AT = datetime(2026, 11, 23, 10, 15, 30, 120000, tzinfo=UTC)


@pytest.fixture(autouse=True)
def restore_registry() -> Iterator[None]:
    """Event classes defined by a test must not leak into schema generation or other tests."""
    saved = dict(DomainEvent._registry)
    yield
    DomainEvent._registry.clear()
    DomainEvent._registry.update(saved)


def _ping() -> PingRequested:
    return PingRequested(
        ping_id="png_01JD3Z6Q5N8V4W7X2Y9A0B1C2D",
        message="hello",
        requested_by="marketer@example.com",
        requested_at=REQUESTED_AT,
    )


def test_defining_an_event_registers_it_by_source_and_detail_type():
    # Given the platform models are imported
    # When the registry is read
    events = registered_events()

    # Then the ping event is found under its bus coordinates
    assert events[("ecrm.platform", "PingRequested")] is PingRequested


def test_the_registry_returned_is_a_copy():
    # Given / When the caller changes what it got
    events = registered_events()
    events.clear()

    # Then the registry itself is untouched
    assert ("ecrm.platform", "PingRequested") in registered_events()


def test_an_intermediate_class_without_bus_coordinates_is_not_registered():
    # Given / When an abstract base for an engine's events
    class CustomerEvent(DomainEvent):
        customer_id: str

    # Then it is not an event of its own
    assert CustomerEvent not in registered_events().values()


def test_a_second_class_for_the_same_detail_type_is_rejected():
    # Given PingRequested is registered
    # When / Then another class claims its source and detail-type
    with pytest.raises(TypeError, match="already registered"):

        class PingRequestedAgain(DomainEvent):
            source = "ecrm.platform"
            detail_type = "PingRequested"

            ping_id: str

    assert registered_events()[("ecrm.platform", "PingRequested")] is PingRequested


def test_a_source_outside_the_ecrm_namespace_is_rejected():
    # Given / When / Then
    with pytest.raises(TypeError, match=r"must start with 'ecrm\.'"):

        class OrderShipped(DomainEvent):
            source = "shop.orders"
            detail_type = "OrderShipped"


def test_the_envelope_has_metadata_and_data():
    # Given an event and the request's correlation id
    event = _ping()

    # When its envelope is built
    detail = envelope_for(event, correlation_id="cor_01JD3Z6Q5N8V4W7X2Y9A0B1C2E", occurred_at=REQUESTED_AT)

    # Then metadata describes the occurrence and data is the payload, both JSON-ready
    assert set(detail) == {"metadata", "data"}
    metadata = detail["metadata"]
    assert set(metadata) == {"id", "version", "correlation_id", "occurred_at"}
    assert is_id(metadata["id"], "evt_")
    assert metadata["version"] == "1"
    assert metadata["correlation_id"] == "cor_01JD3Z6Q5N8V4W7X2Y9A0B1C2E"
    assert metadata["occurred_at"] == "2026-11-23T10:15:30.120000Z"
    assert detail["data"] == {
        "ping_id": "png_01JD3Z6Q5N8V4W7X2Y9A0B1C2D",
        "message": "hello",
        "requested_by": "marketer@example.com",
        "requested_at": "2026-11-23T10:15:30.120000Z",
    }


def test_an_envelope_without_correlation_id_gets_a_new_one():
    # Given / When
    first, second = envelope_for(_ping()), envelope_for(_ping())

    # Then each envelope has its own ids
    assert is_id(first["metadata"]["correlation_id"], "cor_")
    assert first["metadata"]["correlation_id"] != second["metadata"]["correlation_id"]
    assert first["metadata"]["id"] != second["metadata"]["id"]


def test_an_envelope_parses_back_into_the_event():
    # Given an envelope as it travels on the bus
    detail = envelope_for(_ping(), correlation_id="cor_1")

    # When a consumer parses it
    envelope = EventEnvelope[PingRequested].model_validate(detail)

    # Then it gets the same event back
    assert envelope.data == _ping()
    assert envelope.metadata.correlation_id == "cor_1"


def test_an_event_rejects_unknown_fields():
    # Given / When / Then the contract is closed
    with pytest.raises(ValueError, match="extra"):
        PingRequested(ping_id="png_1", message="m", requested_by="u", requested_at=REQUESTED_AT, surprise=True)


def test_the_schema_carries_the_bus_coordinates():
    # Given / When
    schema = envelope_schema(PingRequested)

    # Then it names the event for the schema registry and readers
    assert schema["x-ecrm-source"] == "ecrm.platform"
    assert schema["x-ecrm-detail-type"] == "PingRequested"
    assert schema["x-ecrm-version"] == "1"
    assert schema["title"] == "PingRequested"
    assert schema["$id"] == "https://ecrm.dev/events/ecrm.platform/PingRequested.v1.json"
    assert schema["description"] == "An operator asked for a round trip through the event plumbing."
    assert set(schema["required"]) == {"metadata", "data"}


def test_the_schema_accepts_the_sample_event_and_rejects_a_broken_one():
    # Given the detail of the sample EventBridge event
    detail = load_sample("eventbridge/ping_requested.json")["detail"]
    schema = envelope_schema(PingRequested)

    # When / Then it validates, and fails once the payload loses a required field
    jsonschema.validate(detail, schema)
    del detail["data"]["ping_id"]
    with pytest.raises(jsonschema.ValidationError, match="ping_id"):
        jsonschema.validate(detail, schema)


def test_the_schema_of_an_envelope_built_here_validates():
    # Given / When / Then what the publisher sends matches the published schema
    jsonschema.validate(envelope_for(_ping()), envelope_schema(PingRequested))
