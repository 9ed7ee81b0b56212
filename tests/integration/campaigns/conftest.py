"""The campaigns engine on moto: its table (as `infra/engines/campaigns.py` declares it) and the bucket of its
long uploaded lists, the services on a fixed clock with fakes for the run's starter, the scheduler, the
manifest bucket and broadcast."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from ecrm.broadcast.models import MessageRequest
from ecrm.campaigns.models import Campaign
from ecrm.campaigns.ports import CampaignAudience, S3AudienceLists
from ecrm.campaigns.runs import CampaignRunSteps
from ecrm.campaigns.service import CampaignService, JourneyService
from ecrm.campaigns.store import CampaignStore
from ecrm.core.clock import FixedClock
from moto import mock_aws

os.environ.setdefault("CAMPAIGNS_TABLE_NAME", "ecrm-campaigns")

REGION = "us-east-1"
TABLE = "ecrm-campaigns"
LIST_BUCKET = "ecrm-lake"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
INDEXES = ("by_kind",)


def create_table(client: Any) -> None:
    client.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"}
            for name in ("pk", "sk", *(f"{i}_{k}" for i in INDEXES for k in ("pk", "sk")))
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": f"{index}_pk", "KeyType": "HASH"},
                    {"AttributeName": f"{index}_sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in INDEXES
        ],
    )


class FakeBroadcast:
    """Broadcast's bulk request as the campaigns engine sees it: one message per key, whatever the calls.

    `fail_after` makes the call after that many messages raise, as a crash mid-chunk would.
    """

    def __init__(self) -> None:
        self.messages: dict[tuple[str, str, str], MessageRequest] = {}
        self.calls = 0
        self.fail_after: int | None = None

    def request(self, messages: list[MessageRequest]) -> list[str]:
        assert len(messages) <= 100
        self.calls += 1
        ids = []
        for message in messages:
            if self.fail_after is not None and len(self.messages) >= self.fail_after:
                raise RuntimeError("the worker died")
            key = (message.source or "", message.customer_id, message.step)
            self.messages.setdefault(key, message)
            ids.append("msg_" + "|".join(key))
        return ids


class FakeRuns:
    def __init__(self) -> None:
        self.started: set[tuple[str, int, int]] = set()

    def start(self, campaign_id: str, run: int, attempt: int) -> str:
        self.started.add((campaign_id, run, attempt))
        return f"arn:exec:{campaign_id}-r{run}-a{attempt}"


class FakeScheduler:
    def __init__(self) -> None:
        self.schedules: dict[str, Campaign] = {}

    def schedule(self, campaign: Campaign) -> None:
        self.schedules[campaign.campaign_id] = campaign

    def unschedule(self, campaign_id: str) -> None:
        self.schedules.pop(campaign_id, None)


class MemoryManifests:
    """The manifest bucket: `files` as it holds them now, `written` the last content ever written per key (a
    finished run deletes its manifests; the tests still read what the run froze)."""

    def __init__(self) -> None:
        self.files: dict[str, str] = {}
        self.written: dict[str, str] = {}

    def write(self, key: str, items: list[dict[str, Any]]) -> dict[str, str]:
        self.files[key] = self.written[key] = json.dumps(items)
        return {"bucket": "manifests", "key": key}

    def read(self, key: str) -> list[dict[str, Any]] | None:
        return json.loads(self.files[key]) if key in self.files else None

    def keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.files if k.startswith(prefix))

    def delete(self, key: str) -> None:
        self.files.pop(key, None)


class FakeZones:
    """The customer store's answer about time zones: each customer's, when it holds one."""

    def __init__(self) -> None:
        self.of: dict[str, str] = {}
        self.asked = 0

    def zones(self, customer_ids: list[str]) -> dict[str, str]:
        self.asked += 1
        return {c: self.of[c] for c in customer_ids if c in self.of}


class FakeSegments:
    def __init__(self) -> None:
        self.of: dict[str, list[str]] = {}

    def members(self, segment_id: str) -> list[str]:
        return list(self.of[segment_id])


class Engine:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.clock = FixedClock(NOW)
        self.store = CampaignStore(client, TABLE)
        self.runs = FakeRuns()
        self.scheduler = FakeScheduler()
        self.broadcast = FakeBroadcast()
        self.manifests = MemoryManifests()
        self.handed_at: list[tuple[datetime, int]] = []
        self.zones = FakeZones()
        self.segments = FakeSegments()
        self.s3 = boto3.client("s3", region_name=REGION)
        self.s3.create_bucket(Bucket=LIST_BUCKET)
        audiences = CampaignAudience(self.segments, S3AudienceLists(self.s3, LIST_BUCKET))
        self.campaigns = CampaignService(
            self.store, self.clock, audiences=audiences, runs=self.runs, scheduler=self.scheduler
        )
        self.journeys = JourneyService(self.store, self.clock)
        self.steps = CampaignRunSteps(
            self.store,
            self.clock,
            audiences=audiences,
            manifests=self.manifests,
            broadcast=self.broadcast,
            zones=self.zones,
            chunk_size=50,
        )

    def execute(self, campaign_id: str, run: int) -> dict[str, Any]:
        """What the run's state machine does: freeze, each chunk of the manifest (its wait as a move of the
        clock to its `not_before`), the auto-winner's test hours and pick, the rest's chunks, finish."""
        frozen = self.steps.freeze(campaign_id, run)
        self.send(frozen["key"])
        if frozen["phased"]:
            self.wait_until(frozen["decide_at"])
            self.steps.pick_winner(campaign_id, run)
            self.send(frozen["rest_key"])
        return self.steps.finish(campaign_id, run, frozen["chunks"])

    def send(self, key: str) -> None:
        for item in json.loads(self.manifests.files[key]):
            self.wait_until(item["not_before"])
            self.handed_at.append((self.clock.now(), item["chunk"]))
            self.steps.send_chunk(item["campaign_id"], item["run"], item["chunk"], item["customer_ids"], item["phase"])

    def wait_until(self, stamp: str) -> None:
        moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        if moment > self.clock.now():
            self.clock.at = moment


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client)
        yield Engine(client)
