"""A campaign's dry run asks broadcast's bulk function to preview the policy for a sample of the treated
audience, each as the run would request it: counts per arm of send, defer and suppress with the top reasons.
On moto: the campaigns table and broadcast's, the bulk function invoked in process through the real gateway."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from ecrm.campaigns.assignment import arms_of, assign
from ecrm.campaigns.models import HOLDOUT, CampaignIn
from ecrm.campaigns.ports import CampaignAudience, LambdaBroadcastGateway
from ecrm.campaigns.service import POLICY_SAMPLE, CampaignService
from ecrm.campaigns.store import CampaignStore
from ecrm.core.errors import ServiceUnavailable

from functions.broadcast import task_request_messages
from tests.conftest import FakeLambdaContext
from tests.integration.broadcast.conftest import Engine, engine  # noqa: F401 (the fixture)
from tests.integration.campaigns.conftest import TABLE, FakeRuns, FakeScheduler, create_table

bulk: Any = task_request_messages.handler
EMAIL = {"email": {"subject": "Hello {{ first_name }}", "text": "Spring sale"}}


class InProcessLambda:
    """`lambda:InvokeFunction` of broadcast's bulk function, run here on the broadcast engine's dispatcher."""

    def __init__(self, broadcast: Engine) -> None:
        self.broadcast = broadcast
        self.payloads: list[dict[str, Any]] = []

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        event = json.loads(Payload)
        self.payloads.append(event)
        answer = bulk(event, FakeLambdaContext(), None, self.broadcast.dispatcher)
        return {"Payload": io.BytesIO(json.dumps(answer).encode())}


def service(broadcast: Engine, lambda_client: Any) -> CampaignService:
    create_table(broadcast.client)
    return CampaignService(
        CampaignStore(broadcast.client, TABLE),
        broadcast.clock,
        audiences=CampaignAudience(),
        runs=FakeRuns(),
        scheduler=FakeScheduler(),
        previewer=LambdaBroadcastGateway(lambda_client, "ecrm-broadcast-request-messages"),
    )


def test_the_dry_run_counts_the_policys_decisions_per_arm_with_the_reasons(engine: Engine) -> None:  # noqa: F811
    lambda_client = InProcessLambda(engine)
    campaigns = service(engine, lambda_client)
    customers = [f"c{i:03d}" for i in range(60)]
    for i, customer_id in enumerate(customers):
        if i % 3 == 0:
            engine.contacts.add(customer_id, consents=[])
        elif i % 3 == 1:
            engine.contacts.add(
                customer_id,
                preferences={
                    "preferred_channels": ["email"],
                    "time_zone": "Asia/Tokyo",
                    "quiet_hours": {"start": "21:00", "end": "08:00"},
                },
            )
        else:
            engine.contacts.add(customer_id)
    body = CampaignIn.model_validate(
        {
            "name": "Spring sale",
            "audience": {"customer_ids": customers},
            "variants": [{"key": "a", "share": 45, "content": EMAIL}, {"key": "b", "share": 45, "content": EMAIL}],
            "holdout_share": 10,
        }
    )
    campaign = campaigns.create(body, actor="marketer", correlation_id=None)
    dry = campaigns.dry_run(campaign.campaign_id)
    assert dry.policy is not None
    by_arm = {p.arm: p for p in dry.policy}
    assert set(by_arm) == {"a", "b"}
    recipients = {a.arm: a.recipients for a in dry.arms}
    for arm in ("a", "b"):
        tally = by_arm[arm]
        assert tally.sampled == recipients[arm]  # under the sample's size, everyone treated is previewed
        assert tally.send + tally.defer + tally.suppress == tally.sampled
    arms = arms_of(campaign)
    treated = [i for i, c in enumerate(customers) if assign(campaign.campaign_id, c, arms) != HOLDOUT]
    assert sum(p.suppress for p in dry.policy) == sum(1 for i in treated if i % 3 == 0)
    assert sum(p.defer for p in dry.policy) == sum(1 for i in treated if i % 3 == 1)
    assert sum(p.send for p in dry.policy) == sum(1 for i in treated if i % 3 == 2)
    reasons = {r for p in dry.policy for r in p.reasons}
    assert reasons == {"suppress:no_consent", "defer:quiet_hours"}
    assert str(POLICY_SAMPLE) in dry.note
    assert {p["operation"] for p in lambda_client.payloads} == {"preview"}
    assert all(p["requests"][0]["source"] == f"campaign:{campaign.campaign_id}" for p in lambda_client.payloads)
    assert engine.store.published == []  # nothing requested, nothing sent
    assert engine.queues.bodies == {}


def test_a_large_audience_is_sampled_evenly_up_to_the_limit(engine: Engine) -> None:  # noqa: F811
    lambda_client = InProcessLambda(engine)
    campaigns = service(engine, lambda_client)
    customers = [f"c{i:04d}" for i in range(1000)]
    body = CampaignIn.model_validate(
        {
            "name": "Big",
            "audience": {"customer_ids": customers},
            "variants": [{"key": "a", "share": 100, "content": EMAIL}],
        }
    )
    campaign = campaigns.create(body, actor="marketer", correlation_id=None)
    dry = campaigns.dry_run(campaign.campaign_id)
    assert dry.policy is not None
    (tally,) = dry.policy
    assert tally.sampled == POLICY_SAMPLE
    assert tally.suppress == POLICY_SAMPLE  # no card for anyone: unknown customers are not sent to
    assert [len(p["requests"]) for p in lambda_client.payloads] == [100, 100]
    sampled = [r["customer_id"] for p in lambda_client.payloads for r in p["requests"]]
    assert (sampled[0], sampled[-1]) == ("c0000", "c0995")


def test_broadcast_failing_the_preview_is_a_503_not_a_partial_answer(engine: Engine) -> None:  # noqa: F811
    class Refusing:
        def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
            return {"FunctionError": "Unhandled", "Payload": io.BytesIO(b'{"errorMessage": "boom"}')}

    campaigns = service(engine, Refusing())
    body = CampaignIn.model_validate(
        {"name": "X", "audience": {"customer_ids": ["c1"]}, "variants": [{"key": "a", "share": 100, "content": EMAIL}]}
    )
    campaign = campaigns.create(body, actor="marketer", correlation_id=None)
    with pytest.raises(ServiceUnavailable):
        campaigns.dry_run(campaign.campaign_id)
