"""The adapters of the campaigns engine against doubles of their AWS clients."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from ecrm.broadcast.models import MessageRequest
from ecrm.campaigns.ports import ContactCardFacts, LambdaBroadcastGateway
from ecrm.core.errors import ServiceUnavailable


class FakeLambda:
    def __init__(self, answer: dict[str, Any], *, error: bool = False) -> None:
        self.answer = answer
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        self.calls.append({"function": FunctionName, "payload": json.loads(Payload)})
        response: dict[str, Any] = {"Payload": io.BytesIO(json.dumps(self.answer).encode())}
        if self.error:
            response["FunctionError"] = "Unhandled"
        return response


CARD = {
    "customer_id": "c1",
    "status": "active",
    "profile": {"spend": 900},
    "traits": {"segments": ["seg_vip"]},
    "preferences": {"time_zone": "Asia/Tokyo"},
}


def test_facts_come_from_the_customer_stores_contact_card() -> None:
    client = FakeLambda({"cards": {"c1": CARD}, "missing": []})
    facts = ContactCardFacts(client, "contacts").facts("c1")
    assert client.calls == [{"function": "contacts", "payload": {"operation": "cards", "customer_ids": ["c1"]}}]
    assert (facts.profile, facts.segments, facts.timezone) == ({"spend": 900}, frozenset({"seg_vip"}), "Asia/Tokyo")
    assert ContactCardFacts(FakeLambda({"cards": {}, "missing": ["c2"]}), "contacts").facts("c2").profile == {}


def test_an_unanswered_question_is_a_503_not_an_empty_customer() -> None:
    with pytest.raises(ServiceUnavailable):
        ContactCardFacts(FakeLambda({"errorMessage": "boom"}, error=True), "contacts").facts("c1")


def test_the_broadcast_gateway_sends_at_most_100_and_reads_back_the_ids() -> None:
    request = MessageRequest.model_validate(
        {"customer_id": "c1", "purpose": "marketing", "content": {"sms": {"body": "Hi"}}, "source": "campaign:cmp_1"}
    )
    client = FakeLambda({"message_ids": ["msg_1"]})
    assert LambdaBroadcastGateway(client, "bulk").request([request]) == ["msg_1"]
    assert client.calls[0]["payload"]["requests"][0]["source"] == "campaign:cmp_1"
    with pytest.raises(ValueError, match="at most 100"):
        LambdaBroadcastGateway(client, "bulk").request([request] * 101)
    with pytest.raises(RuntimeError, match="refused"):
        LambdaBroadcastGateway(FakeLambda({"errorMessage": "bad"}, error=True), "bulk").request([request])
