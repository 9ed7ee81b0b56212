"""The insights engine's part of an erasure: the customer's touches (what they were sent, by which their orders
are attributed) go through the erasure consumer, which acknowledges; another customer's stay, the counters
stay, and a redelivered request changes nothing more."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ecrm.core.erasure import CustomerErasureRequested
from ecrm.insights.erasure import InsightsErasure

from functions.insights import on_erasure_requested, on_outcome_event
from tests.integration.insights.conftest import TABLE, Engine, bus_event, message_event
from tests.samples import sqs_batch

ERASED, KEPT = "cus_erased", "cus_kept"


class RecordingPublisher:
    def __init__(self) -> None:
        self.published: list[Any] = []

    def publish_all(self, events: list[Any], *, correlation_id: str | None = None) -> None:
        self.published += events


def request_body() -> str:
    request = CustomerErasureRequested(
        request_id="era-1", customer_id=ERASED, customer_ids=[ERASED], requested_at=datetime(2026, 11, 23)
    )
    return bus_event(request.source, request.detail_type, request.model_dump(mode="json"), event_id="evt-era-1")


def items(engine: Engine) -> list[dict[str, Any]]:
    return list(engine.client.scan(TableName=TABLE)["Items"])


def test_an_erased_customers_touches_go_and_the_counters_stay(engine: Engine, lambda_context: Any) -> None:
    # Given two customers sent a campaign message each
    bodies = [
        message_event("MessageSent", "m1", customer_id=ERASED),
        message_event("MessageSent", "m2", customer_id=KEPT),
    ]
    on_outcome_event.handler(sqs_batch(bodies), lambda_context, engine.service)
    assert engine.store.touches(ERASED)
    counted = [i for i in items(engine) if not i["pk"]["S"].startswith("TOUCH#")]

    # When the erasure of one reaches the engine, twice
    publisher = RecordingPublisher()
    injected = (InsightsErasure(engine.store, engine.clock), publisher)
    for _ in range(2):
        answer = on_erasure_requested.handler(sqs_batch([request_body()]), lambda_context, injected)
        assert answer == {"batchItemFailures": []}

    # Then nothing names them, the other customer's touch and every counter are as they were, and each delivery
    # was acknowledged
    assert [i for i in items(engine) if ERASED in json.dumps(i)] == []
    assert engine.store.touches(ERASED) == []
    assert [t.row for t in engine.store.touches(KEPT)]
    assert [i for i in items(engine) if not i["pk"]["S"].startswith("TOUCH#")] == counted
    assert [(e.engine, e.request_id) for e in publisher.published] == [("insights", "era-1")] * 2
