"""A campaign run's own work per recipient, beside writing the same number of items to its table.

Workload: ECRM_BENCH_RECIPIENTS recipients (default 20,000) in an A/B/holdout campaign (45/45/10) on moto's
in-process DynamoDB (`mock_aws`), broadcast replaced by a double that accepts each batch of 100 (what the
campaign engine does is measured, not broadcast's policy and sending: tests/bench/test_broadcast_enqueue.py
measures that).

Measured, one thread, each 3 times on a new campaign:
- the run's steps: freeze (the audience chunked into a manifest, in memory here), then each chunk of 500:
  arms assigned by hash, message requests built and validated, handed over by 100, the chunk recorded with
  its counts in one transaction;
- reference: one `put_item` per chunk of the same table (the least a run that records its chunks writes),
  plus building the same number of plain dicts.

Nothing asserts on time; every treated recipient is checked to be handed over exactly once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from ecrm.broadcast.models import MessageRequest
from moto import mock_aws

from tests.bench.harness import Measurement, report
from tests.integration.campaigns.conftest import TABLE, Engine, create_table
from tests.unit.campaigns.factories import campaign_in

RECIPIENTS = int(os.environ.get("ECRM_BENCH_RECIPIENTS", "20000"))
REPEAT = 3


class CountingBroadcast:
    def __init__(self) -> None:
        self.handed = 0

    def request(self, messages: list[MessageRequest]) -> list[str]:
        self.handed += len(messages)
        return [m.customer_id for m in messages]


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client)
        yield Engine(client)


def test_campaign_run_steps_beside_plain_writes(engine: Engine) -> None:
    audience = [f"cust-{i:07d}" for i in range(RECIPIENTS)]
    steps_rate, plain_rate = [], []
    for attempt in range(REPEAT):
        broadcast = CountingBroadcast()
        engine.steps.broadcast = broadcast
        engine.steps.chunk_size = 500
        campaign = engine.campaigns.create(
            campaign_in(audience={"customer_ids": audience}), actor="bench", correlation_id=None
        )
        engine.campaigns.launch(campaign.campaign_id, correlation_id=None)
        started = time.perf_counter()
        assert engine.execute(campaign.campaign_id, 1) == {"status": "completed"}
        steps_rate.append(RECIPIENTS / (time.perf_counter() - started))
        report_ = engine.campaigns.report(campaign.campaign_id)
        assert broadcast.handed == sum(a.requested for a in report_.arms)
        assert sum(a.targeted for a in report_.arms) == RECIPIENTS

        started = time.perf_counter()
        for chunk in range(0, RECIPIENTS, 500):
            rows: list[dict[str, Any]] = [{"customer_id": c} for c in audience[chunk : chunk + 500]]
            engine.client.put_item(
                TableName=TABLE,
                Item={"pk": {"S": f"PLAIN#{attempt}"}, "sk": {"S": str(chunk)}, "n": {"N": str(len(rows))}},
            )
        plain_rate.append(RECIPIENTS / (time.perf_counter() - started))

    report(
        f"Campaign run: {RECIPIENTS} recipients, A/B/holdout, chunks of 500 (recipients/s, one core)",
        [Measurement("freeze + assign + build requests + hand over + record", steps_rate, unit="/s")],
        Measurement("one put_item per chunk", plain_rate, unit="/s"),
    )
