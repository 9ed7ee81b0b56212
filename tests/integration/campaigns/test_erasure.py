"""The campaigns engine's part of an erasure request: the customer's journey passes, arms, conversion markers
and listed ids go (in the campaign's item, in a long list's object, in the manifest of a run under way), the
counters stay, other customers are untouched, a redelivered request changes nothing more; a finished run
deletes its manifests; a list whose only id was erased stays a readable campaign."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ecrm.campaigns.erasure import CampaignErasure
from ecrm.campaigns.journey_runtime import ObservedEvent
from ecrm.campaigns.models import INLINE_LIST_LIMIT
from ecrm.campaigns.ports import S3AudienceLists
from ecrm.campaigns.runs import manifest_key
from ecrm.campaigns.state_store import JourneyStateStore
from ecrm.core.erasure import CustomerErasureRequested

from tests.integration.campaigns.conftest import LIST_BUCKET, TABLE, Engine
from tests.integration.journeys.test_library_journeys import runtime
from tests.unit.campaigns.factories import campaign_in, welcome_journey

ERASED = "cus-erased"
KEPT = "cus-kept"


def erasure(engine: Engine) -> CampaignErasure:
    return CampaignErasure(
        engine.store,
        JourneyStateStore(engine.client, TABLE),
        engine.clock,
        lists=S3AudienceLists(engine.s3, LIST_BUCKET),
        manifests=engine.manifests,
    )


def request(customer_id: str = ERASED) -> CustomerErasureRequested:
    return CustomerErasureRequested(
        request_id="era-1", customer_id=customer_id, customer_ids=[customer_id], requested_at=datetime(2026, 1, 1)
    )


def items(engine: Engine) -> list[dict[str, Any]]:
    return list(engine.client.scan(TableName=TABLE)["Items"])


def naming(engine: Engine, customer_id: str) -> list[str]:
    """Every item whose key or document names the customer."""
    return [f"{i['pk']['S']} {i['sk']['S']}" for i in items(engine) if customer_id in json.dumps(i)]


def test_an_erased_customer_leaves_every_journey_campaign_list_and_running_manifest(engine: Engine) -> None:
    # Given a customer waiting in a journey beside another customer
    journey = engine.journeys.activate(
        engine.journeys.create(welcome_journey(), actor="s", correlation_id=None).journey_id, correlation_id=None
    )
    run = runtime(engine)
    for n, customer in enumerate((ERASED, KEPT)):
        run.observe(ObservedEvent(f"evt-{n}", "CustomerCreated", "ecrm.customers", customer), [journey])
    assert engine.journeys.report(journey.journey_id).active == 2

    # And a finished campaign that sent to them (and counted their conversion), one whose long list names them,
    # and one whose run is under way (its audience frozen, nothing sent yet)
    short = [ERASED, KEPT, *(f"c{i}" for i in range(10))]
    done = engine.campaigns.create(campaign_in(audience={"customer_ids": short}), actor="s", correlation_id=None)
    engine.campaigns.launch(done.campaign_id, correlation_id=None)
    assert engine.execute(done.campaign_id, 1) == {"status": "completed"}
    arm = engine.store.recipient_arm(done.campaign_id, ERASED)
    assert arm is not None
    engine.store.record_conversion(done.campaign_id, arm, ERASED, "ord-1", 1999)
    long_ids = [ERASED, *(f"c{i}" for i in range(INLINE_LIST_LIMIT))]
    long = engine.campaigns.create(campaign_in(audience={"customer_ids": long_ids}), actor="s", correlation_id=None)
    running = engine.campaigns.create(campaign_in(audience={"customer_ids": short}), actor="s", correlation_id=None)
    engine.campaigns.launch(running.campaign_id, correlation_id=None)
    frozen = engine.steps.freeze(running.campaign_id, 1)
    assert naming(engine, ERASED)
    counters_before = engine.store.arm_counts(done.campaign_id)

    # When the campaigns engine erases them
    ack = erasure(engine).erase(request())

    # Then nothing in the table names them; the other customer and the counters are as they were
    assert (ack.engine, ack.request_id) == ("campaigns", "era-1")
    assert naming(engine, ERASED) == []
    report = engine.journeys.report(journey.journey_id)
    assert (report.entered, report.active, report.exited) == (2, 1, {"erased": 1})
    assert engine.store.recipient_arm(done.campaign_id, KEPT) is not None
    assert engine.store.arm_counts(done.campaign_id) == counters_before
    assert engine.campaigns.get(done.campaign_id).audience.customer_ids == short[1:]
    assert engine.campaigns.get(done.campaign_id).audience.erased == 1

    # And the long list's object lost the id and its count says so
    stored = engine.campaigns.get(long.campaign_id).audience
    assert stored.stored_list is not None
    assert (stored.stored_list.count, stored.erased) == (INLINE_LIST_LIMIT, 1)
    assert ERASED not in S3AudienceLists(engine.s3, LIST_BUCKET).get(stored.stored_list)

    # And the run under way hands over everyone else when it goes on
    manifest = engine.manifests.read(frozen["key"]) or []
    frozen_ids = [c for item in manifest for c in item["customer_ids"]]
    assert ERASED not in frozen_ids
    assert KEPT in frozen_ids

    # When the request is delivered again, nothing more changes
    before = items(engine)
    erasure(engine).erase(request())
    assert items(engine) == before


def test_a_finished_run_deletes_its_manifest_and_a_paused_one_keeps_it(engine: Engine) -> None:
    done = engine.campaigns.create(campaign_in(), actor="s", correlation_id=None)
    engine.campaigns.launch(done.campaign_id, correlation_id=None)
    assert engine.execute(done.campaign_id, 1) == {"status": "completed"}
    assert engine.manifests.keys(manifest_key(done.campaign_id, 1)) == []

    paused = engine.campaigns.create(campaign_in(), actor="s", correlation_id=None)
    engine.campaigns.launch(paused.campaign_id, correlation_id=None)
    frozen = engine.steps.freeze(paused.campaign_id, 1)
    engine.campaigns.pause(paused.campaign_id, correlation_id=None)
    assert engine.steps.finish(paused.campaign_id, 1, frozen["chunks"]) == {"status": "paused"}
    assert engine.manifests.keys(frozen["key"]) == [frozen["key"]]


def test_a_list_whose_only_recipient_was_erased_stays_a_readable_campaign(engine: Engine) -> None:
    alone = engine.campaigns.create(campaign_in(audience={"customer_ids": [ERASED]}), actor="s", correlation_id=None)
    erasure(engine).erase(request())
    audience = engine.campaigns.get(alone.campaign_id).audience
    assert (audience.customer_ids, audience.erased) == ([], 1)
    assert engine.campaigns.dry_run(alone.campaign_id).audience == 0
