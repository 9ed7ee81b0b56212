"""A campaign's test send on moto: the API, the campaigns service, the real gateway to broadcast's bulk function
(invoked in process) and broadcast's proof sender on its table with recording channel adapters. Each variant
goes to each staff address once, marked as a test, never as a customer's message; a retry sends nothing
again; bad bodies are 4xx problems with nothing sent; only admins and marketers may send."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from ecrm.broadcast.channels.base import ChannelError
from ecrm.broadcast.proofs import ProofSender
from ecrm.campaigns.models import CampaignIn
from ecrm.campaigns.ports import CampaignAudience, LambdaBroadcastGateway
from ecrm.campaigns.service import CampaignService, JourneyService
from ecrm.campaigns.store import CampaignStore

from functions.broadcast import task_request_messages
from tests.conftest import FakeLambdaContext
from tests.integration.broadcast.conftest import Engine, engine  # noqa: F401 (the fixture)
from tests.integration.campaigns.conftest import TABLE, FakeRuns, FakeScheduler, create_table
from tests.samples import api_request

bulk: Any = task_request_messages.handler
CONTENT = {
    "email": {"subject": "Hello {{ first_name }}", "text": "Spring sale for {{ data.variant }}"},
    "sms": {"body": "Hi {{ first_name }}"},
}
ADDRESSES = ["qa@example.com", "+33612345678"]


class InProcessLambda:
    def __init__(self, broadcast: Engine) -> None:
        self.proofs = ProofSender(broadcast.store, broadcast.adapters, broadcast.clock)
        self.calls = 0

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        self.calls += 1
        answer = bulk(json.loads(Payload), FakeLambdaContext(), None, None, self.proofs)
        return {"Payload": io.BytesIO(json.dumps(answer).encode())}


class Setup:
    def __init__(self, broadcast: Engine) -> None:
        create_table(broadcast.client)
        self.broadcast = broadcast
        self.lambda_client = InProcessLambda(broadcast)
        store = CampaignStore(broadcast.client, TABLE)
        self.campaigns = CampaignService(
            store,
            broadcast.clock,
            audiences=CampaignAudience(),
            runs=FakeRuns(),
            scheduler=FakeScheduler(),
            proofs=LambdaBroadcastGateway(self.lambda_client, "ecrm-broadcast-request-messages"),
        )
        self.journeys = JourneyService(store, broadcast.clock)
        body = CampaignIn.model_validate(
            {
                "name": "Spring sale",
                "audience": {"customer_ids": ["c1", "c2"]},
                "variants": [
                    {"key": "a", "share": 50, "content": CONTENT},
                    {"key": "b", "share": 50, "content": CONTENT},
                ],
            }
        )
        self.campaign = self.campaigns.create(body, actor="marketer", correlation_id=None)

    def call(self, body: Any, *, groups: str = "marketer", key: str | None = None) -> tuple[int, Any]:
        from functions.campaigns import api

        event = api_request(
            "POST",
            "/campaigns/{campaign_id}/test-send",
            path_parameters={"campaign_id": self.campaign.campaign_id},
            body=body,
            groups=groups,
        )
        if key is not None:
            event["headers"] = {**(event.get("headers") or {}), "Idempotency-Key": key}
            event["multiValueHeaders"] = {**(event.get("multiValueHeaders") or {}), "Idempotency-Key": [key]}
        handler: Any = api.handler
        response = handler(event, FakeLambdaContext(), api.Deps(self.campaigns, self.journeys))
        return response["statusCode"], json.loads(response["body"]) if response.get("body") else None

    def sent(self) -> list[Any]:
        return [m for adapter in self.broadcast.adapters.values() for m in adapter.sent]


@pytest.fixture
def setup(engine: Engine) -> Setup:  # noqa: F811
    return Setup(engine)


def test_each_variant_goes_to_each_address_once_as_a_test(setup: Setup) -> None:
    status, answer = setup.call({"addresses": ADDRESSES}, key="try-1")
    assert status == 200, answer
    assert sorted((i["variant"], i["channel"], i["status"]) for i in answer["items"]) == [
        ("a", "email", "sent"),
        ("a", "sms", "sent"),
        ("b", "email", "sent"),
        ("b", "sms", "sent"),
    ]
    emails = setup.broadcast.adapters["email"].sent
    assert sorted(m.content["subject"] for m in emails) == ["[Test] Hello Sample"] * 2
    assert sorted(m.content["text"] for m in emails) == ["Spring sale for a", "Spring sale for b"]
    assert all(m.address == "qa@example.com" for m in emails)
    assert [m.address for m in setup.broadcast.adapters["sms"].sent] == ["+33612345678"] * 2
    for message in setup.sent():
        assert (message.purpose, message.customer_id, message.tags.get("test")) == ("transactional", "proof", "true")
    # never a customer's message: nothing stored as a message, no event for a report or insights to count
    assert setup.broadcast.store.published == []
    assert setup.broadcast.contacts.card_calls == 0

    status, again = setup.call({"addresses": ADDRESSES}, key="try-1")
    assert status == 200
    assert {i["status"] for i in again["items"]} == {"already_sent"}
    assert len(setup.sent()) == 4
    status, fresh = setup.call({"addresses": ["qa@example.com"]}, key="try-2")
    assert {i["status"] for i in fresh["items"]} == {"sent"}
    assert len(setup.sent()) == 6


def test_a_provider_failure_frees_the_key_and_the_retry_sends_once(setup: Setup) -> None:
    setup.broadcast.adapters["email"].script = {0: ChannelError("down", permanent=False, code="Throttling")}
    status, answer = setup.call({"addresses": ["qa@example.com"]}, key="k")
    assert status == 200
    assert sorted(i["status"] for i in answer["items"]) == ["failed", "sent"]
    status, retried = setup.call({"addresses": ["qa@example.com"]}, key="k")
    assert sorted(i["status"] for i in retried["items"]) == ["already_sent", "sent"]
    assert len(setup.broadcast.adapters["email"].sent) == 2


@pytest.mark.parametrize(
    "body",
    [
        {"addresses": []},
        {"addresses": ["not-an-address"]},
        {"addresses": ["0612345678"]},
        {"addresses": [f"qa{i}@example.com" for i in range(21)]},
        {"addresses": ["qa@example.com", "QA@example.com"]},
        {"addresses": ["qa@example.com"], "customer_id": "c1"},
        {},
    ],
)
def test_bad_bodies_are_refused_with_nothing_sent(setup: Setup, body: Any) -> None:
    status, problem = setup.call(body)
    assert 400 <= status < 500, problem
    assert setup.sent() == []
    assert setup.lambda_client.calls == 0


def test_only_admins_and_marketers_may_send_tests(setup: Setup) -> None:
    assert setup.call({"addresses": ADDRESSES}, groups="analyst")[0] == 403
    assert setup.call({"addresses": ADDRESSES}, groups="agent")[0] == 403
    assert setup.sent() == []
    assert setup.call({"addresses": ["qa@example.com"]}, groups="admin")[0] == 200
