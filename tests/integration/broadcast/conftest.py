"""The broadcast engine on moto's DynamoDB, with in-memory doubles of the customer store's contacts function,
the channel queues and the channel adapters. The clock is fixed and moved by tests."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from ecrm.broadcast.channels.base import ChannelError, OutboundMessage, SendResult
from ecrm.broadcast.feedback import FeedbackService, GuardSettings
from ecrm.broadcast.preferences import PreferenceCentre
from ecrm.broadcast.sending import Dispatcher, Sender, SendingSettings
from ecrm.broadcast.service import MessageService
from ecrm.broadcast.store import BroadcastStore
from ecrm.core.clock import FixedClock
from ecrm.core.events import DomainEvent
from moto import mock_aws

REGION = "us-east-1"
TABLE = "ecrm-broadcast"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # 13:00 in Paris
SECRET = b"link-signing-key-for-tests-only"


class RecordingStore(BroadcastStore):
    """The real store, remembering every event it wrote to an outbox (the relay's input, in order)."""

    def __init__(self, client: Any, table: str) -> None:
        super().__init__(client, table)
        self.published: list[DomainEvent] = []

    def create_message(self, message: Any, events: Sequence[DomainEvent], **kwargs: Any) -> bool:
        created = super().create_message(message, events, **kwargs)
        if created:
            self.published.extend(events)
        return created

    def save_transition(self, message: Any, events: Sequence[DomainEvent], **kwargs: Any) -> None:
        super().save_transition(message, events, **kwargs)
        self.published.extend(events)

    def publish_for_customer(self, customer_id: str, events: Sequence[DomainEvent], **kwargs: Any) -> None:
        super().publish_for_customer(customer_id, events, **kwargs)
        self.published.extend(events)

    def of(self, detail_type: str) -> list[Any]:
        return [e for e in self.published if e.detail_type == detail_type]


class FakeContacts:
    """The contacts function: cards kept here, consents recorded as the customer store would."""

    def __init__(self) -> None:
        self.cards_by_id: dict[str, dict[str, Any]] = {}
        self.recorded: list[dict[str, Any]] = []
        self.card_calls = 0

    def add(self, customer_id: str, **overrides: Any) -> dict[str, Any]:
        card: dict[str, Any] = {
            "customer_id": customer_id,
            "status": "active",
            "addresses": {"email": [f"{customer_id}@example.com"], "phone": ["+33612345678"]},
            "consents": [
                {"channel": ch, "purpose": "marketing", "state": "granted", "updated_at": "2026-01-01T00:00:00Z"}
                for ch in ("email", "sms", "push", "in_app", "webhook")
            ],
            "preferences": {"preferred_channels": ["email"], "time_zone": "Europe/Paris"},
            "profile": {"first_name": "Ada", "country": "FR"},
            "traits": {},
        }
        card.update(overrides)
        self.cards_by_id[customer_id] = card
        return card

    def set_consent(self, customer_id: str, channel: str, purpose: str, state: str) -> None:
        consents = [
            c for c in self.cards_by_id[customer_id]["consents"] if (c["channel"], c["purpose"]) != (channel, purpose)
        ]
        consents.append({"channel": channel, "purpose": purpose, "state": state, "updated_at": NOW.isoformat()})
        self.cards_by_id[customer_id]["consents"] = consents

    def cards(self, customer_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        self.card_calls += 1
        return {i: json.loads(json.dumps(self.cards_by_id[i])) for i in customer_ids if i in self.cards_by_id}

    def record_consents(
        self, customer_id: str, consents: Sequence[Mapping[str, str]], *, proof: Mapping[str, Any], recorded_by: str
    ) -> dict[str, Any]:
        self.recorded.append(
            {"customer_id": customer_id, "consents": list(consents), "recorded_by": recorded_by, "proof": dict(proof)}
        )
        for c in consents:
            self.set_consent(customer_id, c["channel"], c["purpose"], c["state"])
        return self.cards_by_id[customer_id]


class FakeQueues:
    def __init__(self) -> None:
        self.bodies: dict[str, list[dict[str, Any]]] = {}

    def enqueue(self, channel: str, bodies: Sequence[Mapping[str, Any]]) -> None:
        self.bodies.setdefault(channel, []).extend(json.loads(json.dumps(b)) for b in bodies)

    def drain(self) -> list[dict[str, Any]]:
        out = [b for bodies in self.bodies.values() for b in bodies]
        self.bodies.clear()
        return out


class FakeAdapter:
    """A channel that records what it sent; `script` raises errors on given calls (0-based)."""

    def __init__(self, channel: str, script: Mapping[int, ChannelError] | None = None) -> None:
        self.channel = channel
        self.script = dict(script or {})
        self.calls = 0
        self.sent: list[OutboundMessage] = []

    def send(self, message: OutboundMessage) -> SendResult:
        call, self.calls = self.calls, self.calls + 1
        if call in self.script:
            raise self.script[call]
        self.sent.append(message)
        return SendResult(provider_message_id=f"prov-{len(self.sent)}")


class Engine:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.clock = FixedClock(NOW)
        self.store = RecordingStore(client, TABLE)
        self.contacts = FakeContacts()
        self.queues = FakeQueues()
        self.adapters = {ch: FakeAdapter(ch) for ch in ("email", "sms", "voice", "push", "in_app", "webhook")}
        settings = SendingSettings(links_base_url="https://api.example.com/v1", link_secret=SECRET)
        self.settings = settings
        self.messages = MessageService(self.store, self.clock)
        self.dispatcher = Dispatcher(
            self.store, self.contacts, self.queues, self.clock, settings, channels=frozenset(self.adapters)
        )
        self.sender = Sender(self.store, self.contacts, self.adapters, self.clock, settings)
        self.feedback = FeedbackService(self.store, self.contacts, self.clock, GuardSettings(min_sends=10))
        self.centre = PreferenceCentre(self.contacts, self.store, self.clock, [SECRET])

    def request(self, customer_id: str = "c1", *, key: str = "k1", **body: Any) -> str:
        from ecrm.broadcast.models import MessageRequest

        fields: dict[str, Any] = {
            "customer_id": customer_id,
            "purpose": "marketing",
            "content": {
                "email": {"subject": "Hello {{ first_name }}", "text": "Hi {{ first_name }}, {{ data.offer }}"}
            },
            "data": {"offer": "20% off"},
        }
        fields.update(body)
        accepted = self.messages.request(MessageRequest.model_validate(fields), idempotency_key=key, correlation_id="c")
        return accepted.message_id

    def run(self, *message_ids: str) -> dict[str, str]:
        """Dispatch the messages, then send every queued body once; answers the senders' outcomes."""
        self.dispatcher.dispatch(list(message_ids), correlation_id="c")
        return {b["message_id"]: self.sender.send(b) for b in self.queues.drain()}


def suppression_reads(engine: Engine) -> list[list[str]]:
    """From now on, the addresses of each read of the suppression list (sorted), in order."""
    reads: list[list[str]] = []
    real = engine.store.suppressed

    def counted(addresses: Any) -> dict[str, str]:
        reads.append(sorted(addresses))
        return real(addresses)

    engine.store.suppressed = counted  # type: ignore[method-assign]
    return reads


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
            # As deployed: the relay's and the outcome counter's stream (`test_outcome_counter.py` reads it)
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        yield Engine(client)
