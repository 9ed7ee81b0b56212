"""The personalization engine on moto: its table, the lake bucket, services on them, and event builders.

The table is shaped as every engine table is (`EngineTable`: string `pk`/`sk`, TTL `expires_at`). The clock is
fixed; the recommendation service reads the active model pointer afresh on every request (no cache between
test steps), so a test can train and ask at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from ecrm.analysis.models import CustomerTraits, SegmentEntered, SegmentExited, TraitsComputed
from ecrm.core.clock import FixedClock
from ecrm.core.ids import new_id
from ecrm.customers.models import ConsentChanged, CustomerCreated, InteractionRecorded, ProfileSnapshot
from ecrm.personalization.customer_events import ProjectionService
from ecrm.personalization.offer_service import OfferService
from ecrm.personalization.recommendation_service import RecommendationService
from ecrm.personalization.recommenders import RecommenderModel
from ecrm.personalization.selection import SelectionRules
from ecrm.personalization.store import PersonalizationStore
from ecrm.personalization.template_service import TemplateService
from moto import mock_aws

REGION = "us-east-1"
TABLE = "ecrm-personalization"
BUCKET = "ecrm-lake"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
_INTERACTIONS = itertools.count()


class RecordingPublisher:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def publish_all(self, events: Sequence[Any], *, correlation_id: str | None = None) -> None:
        self.events.extend(events)

    def of(self, detail_type: str) -> list[Any]:
        return [e for e in self.events if e.detail_type == detail_type]


class CountingClient:
    """A boto3 client that counts the calls made through it, by operation."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith("_") or name in {"get_paginator", "meta"}:
            if name == "get_paginator":
                self.calls.append("query")
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attribute(*args, **kwargs)

        return call


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(aws: None) -> CountingClient:
    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk")],
    )
    return CountingClient(client)


@pytest.fixture
def s3(aws: None) -> Any:
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def store(dynamodb: CountingClient) -> PersonalizationStore:
    return PersonalizationStore(dynamodb, TABLE)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def rules() -> SelectionRules:
    return SelectionRules(exclude_bought=True, max_per_category=2)


@pytest.fixture
def recommendations(store: PersonalizationStore, clock: FixedClock, rules: SelectionRules) -> RecommendationService:
    return RecommendationService(store, clock, rules=rules, pointer_ttl_seconds=-1)


@pytest.fixture
def offers(store: PersonalizationStore, publisher: RecordingPublisher, clock: FixedClock) -> OfferService:
    return OfferService(store, publisher, clock)


@pytest.fixture
def templates(
    store: PersonalizationStore, clock: FixedClock, recommendations: RecommendationService, offers: OfferService
) -> TemplateService:
    return TemplateService(store, clock, recommendations, offers)


@pytest.fixture
def projections(store: PersonalizationStore, publisher: RecordingPublisher, clock: FixedClock) -> ProjectionService:
    return ProjectionService(store, publisher, clock)


# -- a small model, written as the training job writes one ------------------------------------------------------
# Shoes s1..s4 and hats h1..h3; s1's neighbours are the other shoes then a hat, in that order.
MODEL = RecommenderModel(
    algorithm="rp3beta",
    neighbours={
        "s1": [("s2", 0.9), ("s3", 0.8), ("s4", 0.7), ("h1", 0.6)],
        "s2": [("s1", 0.9), ("s3", 0.5)],
        "h1": [("h2", 0.8), ("h3", 0.4)],
    },
    bought_together={"s1": [("h1", 0.7), ("s2", 0.3)]},
    popular=[("p1", 9.0), ("p2", 8.0), ("s1", 7.0), ("h2", 6.0), ("p3", 5.0), ("p4", 4.0)],
    trending=[("t1", 3.0), ("p2", 2.0)],
    popular_by_category={"shoes": [("s4", 5.0), ("s3", 4.0)]},
)
VERSION = "20261122T030000000Z"


def write_model(store: PersonalizationStore, model: RecommenderModel = MODEL, version: str = VERSION) -> None:
    store.write_model_lists(
        version,
        neighbours=model.neighbours,
        together=model.bought_together,
        popular=model.popular,
        trending=model.trending,
        by_category=model.popular_by_category,
        expires_at=int((NOW + timedelta(days=30)).timestamp()),
    )
    store.activate_model(version, at=NOW)


# -- events from the customer store and segmentation -------------------------------------------------------------
def customer_id() -> str:
    return new_id("cus_")


def created(
    customer: str, *, version: int = 1, consents: dict[str, str] | None = None, at: datetime = NOW, **attributes: Any
) -> CustomerCreated:
    return CustomerCreated(
        customer_id=customer,
        record_source="web",
        identity_types=["email"],
        created_at=at,
        snapshot=ProfileSnapshot(
            version=version,
            attributes=attributes,
            identity_types=["email"],
            consents=consents or {},
        ),
    )


def interaction(
    customer: str, *items: str, kind: str = "product_viewed", at: datetime = NOW, interaction_id: str | None = None
) -> InteractionRecorded:
    properties: dict[str, Any] = {"product_id": items[0]} if len(items) == 1 else {"products": list(items)}
    return InteractionRecorded(
        customer_id=customer,
        interaction_id=interaction_id or f"int_{next(_INTERACTIONS):06d}",
        type=kind,
        channel="web",
        record_source="shop",
        occurred_at=at,
        properties=properties,
    )


def consent(customer: str, channel: str, purpose: str, state: str, *, at: datetime = NOW) -> ConsentChanged:
    return ConsentChanged(
        customer_id=customer,
        channel=channel,
        purpose=purpose,
        state=state,
        previous_state=None,
        proof_source="web",
        changed_at=at,
    )


def entered(customer: str, segment: str, *, at: datetime = NOW) -> SegmentEntered:
    return SegmentEntered(
        segment_id=segment, segment_name=segment, customer_id=customer, entered_at=at, trigger="order_completed"
    )


def exited(customer: str, segment: str, *, at: datetime = NOW) -> SegmentExited:
    return SegmentExited(segment_id=segment, segment_name=segment, customer_id=customer, exited_at=at, trigger="build")


def traits(customer: str, *, at: datetime = NOW, **values: Any) -> TraitsComputed:
    return TraitsComputed(
        model="traits",
        model_version="v1",
        computed_at=at,
        customers=[CustomerTraits(customer_id=customer, traits=values)],
    )
