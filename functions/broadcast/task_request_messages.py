"""Broadcast's bulk entry for other engines' workers (a campaign run's chunks, journeys): up to 100 message
requests per invocation, each through `MessageService.request`, the same idempotent request as
`POST /messages`. Each request names its source (`campaign:<id>`, `journey:<id>`...), so a re-invoked batch
addresses the same messages and answers their ids again; a request whose key was used with another body
fails the whole invocation (the caller's retry, or its DLQ, shows it).

`{"operation": "preview", "requests": [...]}` answers, per request, what the delivery policy would decide
now (the dispatcher's own decision, on the same cards), storing nothing: a campaign's dry run asks it.
`{"operation": "test", "tests": [...]}` sends proofs (a campaign's test sends) to raw staff addresses
(`ecrm.broadcast.proofs`): once per key, never to a customer, never counted.
"""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from ecrm.broadcast.models import MessageRequest, TestMessage
from ecrm.broadcast.proofs import ProofSender
from ecrm.broadcast.sending import Dispatcher
from ecrm.broadcast.service import MessageService
from ecrm.broadcast.wiring import BroadcastConfig, dispatcher_for, message_service_for, proof_sender_for
from ecrm.core.config import load_config
from ecrm.core.contract import Contract
from ecrm.core.observability import Observability
from pydantic import Field, field_validator

config = load_config(BroadcastConfig)
obs = Observability(config)


class RequestBatch(Contract):
    operation: Literal["request"] = "request"
    requests: list[MessageRequest] = Field(min_length=1, max_length=100)

    @field_validator("requests")
    @classmethod
    def _sources_named(cls, requests: list[MessageRequest]) -> list[MessageRequest]:
        if any(r.source is None for r in requests):
            raise ValueError("every request of a batch names its source, which keys its message")
        return requests


class PreviewBatch(Contract):
    operation: Literal["preview"]
    requests: list[MessageRequest] = Field(min_length=1, max_length=100)


class TestBatch(Contract):
    __test__ = False

    operation: Literal["test"]
    tests: list[TestMessage] = Field(min_length=1, max_length=100)


@obs.entrypoint()
def handler(
    event: dict[str, Any],
    context: LambdaContext,
    injected: MessageService | None = None,
    dispatcher: Dispatcher | None = None,
    proofs: ProofSender | None = None,
) -> dict[str, Any]:
    operation = event.get("operation", "request")
    if operation == "test":
        batch_of_tests = TestBatch.model_validate(event)
        sent = (proofs or proof_sender_for(config)).send(batch_of_tests.tests)
        return {"tests": [t.model_dump(mode="json") for t in sent]}
    if operation == "preview":
        previews = PreviewBatch.model_validate(event)
        decided = (dispatcher or dispatcher_for(config)).preview(previews.requests)
        return {"previews": [p.model_dump(mode="json") for p in decided]}
    batch = RequestBatch.model_validate(event)
    service = injected or message_service_for(config)
    accepted = service.request_all(batch.requests)
    return {"message_ids": [a.message_id for a in accepted]}
