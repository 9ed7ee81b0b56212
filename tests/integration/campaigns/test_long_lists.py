"""An uploaded list too long for the campaign's item is kept as an object in the engine's bucket: a campaign of
100,000 listed recipients is defined, dry-run and frozen into its run's manifest; a short list stays in the
item; a request naming a stored list is refused with nothing written; a long list's recipients convert."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from ecrm.campaigns.assignment import arms_of, assign
from ecrm.campaigns.models import INLINE_LIST_LIMIT, MAX_LIST, Audience
from ecrm.campaigns.outcomes import CampaignOutcomes
from ecrm.campaigns.ports import CampaignAudience
from ecrm.campaigns.store import CAMPAIGN_SK, campaign_pk
from ecrm.core.errors import InvalidInput, ServiceUnavailable

from tests.integration.campaigns.conftest import LIST_BUCKET, TABLE, Engine
from tests.integration.campaigns.test_api import CAMPAIGN, call
from tests.unit.campaigns.factories import campaign_in


def listed(count: int) -> list[str]:
    return [f"cus_{i:06d}" for i in range(count)]


def stored_objects(engine: Engine) -> list[str]:
    return [o["Key"] for o in engine.s3.list_objects_v2(Bucket=LIST_BUCKET).get("Contents", [])]


def test_a_campaign_of_100000_listed_recipients_is_kept_apart_dry_run_and_frozen(engine: Engine) -> None:
    # Given a campaign whose uploaded list holds 100,000 customers
    audience = listed(MAX_LIST)
    campaign = engine.campaigns.create(
        campaign_in(audience={"customer_ids": audience}), actor="staff-1", correlation_id=None
    )

    # Then the campaign's item holds where the list is, not the list
    stored = engine.campaigns.get(campaign.campaign_id)
    assert stored.audience.customer_ids == []
    assert stored.audience.stored_list is not None
    assert stored.audience.stored_list.count == MAX_LIST
    key = {"pk": {"S": campaign_pk(campaign.campaign_id)}, "sk": {"S": CAMPAIGN_SK}}
    item = engine.client.get_item(TableName=TABLE, Key=key)
    assert "Item" in item
    assert len(json.dumps(item.get("Item", {}))) < 20_000

    # And the dry run counts all of them in their arms
    dry = engine.campaigns.dry_run(campaign.campaign_id)
    assert dry.audience == MAX_LIST
    assert sum(a.recipients for a in dry.arms) == MAX_LIST

    # When it is launched, the run's freeze writes every recipient into its manifest once
    engine.campaigns.launch(campaign.campaign_id, correlation_id=None)
    frozen = engine.steps.freeze(campaign.campaign_id, 1)
    chunks = json.loads(engine.manifests.written[frozen["key"]])
    frozen_ids = [c for chunk in chunks for c in chunk["customer_ids"]]
    assert frozen["audience"] == MAX_LIST
    assert sorted(frozen_ids) == audience


def test_a_short_list_stays_in_the_item_and_a_longer_one_goes_to_the_bucket(engine: Engine) -> None:
    short = engine.campaigns.create(
        campaign_in(audience={"customer_ids": listed(INLINE_LIST_LIMIT)}), actor="staff-1", correlation_id=None
    )
    long = engine.campaigns.create(
        campaign_in(audience={"customer_ids": listed(INLINE_LIST_LIMIT + 1)}), actor="staff-1", correlation_id=None
    )
    assert len(short.audience.customer_ids) == INLINE_LIST_LIMIT
    assert short.audience.stored_list is None
    assert long.audience.stored_list is not None
    assert stored_objects(engine) == [long.audience.stored_list.key]


def test_a_request_naming_a_stored_list_is_refused_with_nothing_written(engine: Engine, lambda_context: Any) -> None:
    # Given a request that claims a list kept by the engine (another campaign's, or any object of the bucket)
    body = {**CAMPAIGN, "audience": {"stored_list": {"key": "audiences/seg_1/manifest.json", "count": 5}}}

    # When it is posted
    status, problem = call(engine, lambda_context, "POST", "/campaigns", body=body)

    # Then it is a 400 that says so, and nothing is saved
    assert status == 400, problem
    assert "stored_list" in problem["detail"]
    assert call(engine, lambda_context, "GET", "/campaigns", groups="analyst")[1]["items"] == []
    assert stored_objects(engine) == []


def test_the_api_answers_a_long_list_campaign_with_where_its_list_is(engine: Engine, lambda_context: Any) -> None:
    body = {**CAMPAIGN, "audience": {"customer_ids": listed(INLINE_LIST_LIMIT + 500)}}
    status, created = call(engine, lambda_context, "POST", "/campaigns", body=body)
    assert status == 201, created
    assert created["audience"]["customer_ids"] == []
    assert created["audience"]["stored_list"]["count"] == INLINE_LIST_LIMIT + 500
    path = {"campaign_id": created["campaign_id"]}
    status, dry = call(engine, lambda_context, "POST", "/campaigns/{campaign_id}/dry-run", path=path)
    assert (status, dry["audience"]) == (200, INLINE_LIST_LIMIT + 500)


def test_without_a_list_bucket_a_long_list_is_a_503_and_a_short_one_is_kept() -> None:
    audiences = CampaignAudience()
    with pytest.raises(ServiceUnavailable):
        audiences.keep("cmp_1", Audience(customer_ids=listed(INLINE_LIST_LIMIT + 1)))
    assert audiences.keep("cmp_1", Audience(customer_ids=["c1"])).customer_ids == ["c1"]
    with pytest.raises(InvalidInput):
        audiences.keep("cmp_1", Audience.model_validate({"stored_list": {"key": "x", "count": 1}}))


def test_a_long_list_recipient_converts_on_their_arm(engine: Engine) -> None:
    # Given a campaign of a long list whose run handed its chunks to broadcast
    audience = listed(INLINE_LIST_LIMIT + 50)
    campaign = engine.campaigns.create(
        campaign_in(audience={"customer_ids": audience}), actor="staff-1", correlation_id=None
    )
    engine.campaigns.launch(campaign.campaign_id, correlation_id=None)
    assert engine.execute(campaign.campaign_id, 1) == {"status": "completed"}
    arms = arms_of(campaign)

    # When two recipients, one of them held out, order within the window
    outcomes = CampaignOutcomes(engine.store, engine.clock)
    placed = engine.clock.now() + timedelta(hours=2)
    held_out = next(c for c in audience if assign(campaign.campaign_id, c, arms) == "holdout")
    treated = next(c for c in audience if assign(campaign.campaign_id, c, arms) != "holdout")
    outcomes.convert(held_out, "ord-1", 1000, placed)
    outcomes.convert(treated, "ord-2", 1000, placed)

    # Then each counts on their own arm
    arms_report = {a.arm: a for a in engine.campaigns.report(campaign.campaign_id).arms}
    assert arms_report["holdout"].converted == 1
    assert arms_report[assign(campaign.campaign_id, treated, arms)].converted == 1
