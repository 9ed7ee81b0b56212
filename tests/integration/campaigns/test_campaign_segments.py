"""Segment audiences on moto: the analysis engine's `AudienceBuilt` kept per segment (the latest build wins,
whatever order the events come in), and a campaign's audience read from that build's manifest and CSV
parts in the lake bucket, as `ecrm.analysis.audiences` writes them."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import boto3
from ecrm.campaigns.ports import BuiltSegmentAudiences, CampaignAudience

from functions.campaigns import on_audience_built
from tests.integration.campaigns.conftest import NOW, REGION, Engine
from tests.samples import sqs_batch
from tests.unit.campaigns.factories import campaign_in

BUCKET = "ecrm-lake"
consume: Any = on_audience_built.handler


def built(segment_id: str, audience_id: str, manifest: str, hours_ago: int) -> str:
    at = (NOW - timedelta(hours=hours_ago)).isoformat()
    data = {"audience_id": audience_id, "segment_id": segment_id, "count": 3, "manifest": manifest, "built_at": at}
    return json.dumps(
        {
            "id": f"eb-{audience_id}",
            "source": "ecrm.analysis",
            "detail-type": "AudienceBuilt",
            "time": at,
            "detail": {"metadata": {"id": f"evt-{audience_id}", "version": "1", "occurred_at": at}, "data": data},
        }
    )


def put_build(s3: Any, audience_id: str, parts: list[list[str]]) -> str:
    """A build's CSV parts (Athena's results, quoted with a header) and its manifest listing them."""
    listed = []
    for n, ids in enumerate(parts):
        key = f"query-results/{audience_id}-{n}.csv"
        s3.put_object(Bucket=BUCKET, Key=key, Body=('"customer_id"\n' + "".join(f'"{c}"\n' for c in ids)).encode())
        listed.append({"location": f"s3://{BUCKET}/{key}", "count": len(ids)})
    manifest = {
        "audience_id": audience_id,
        "format": "csv",
        "header": True,
        "columns": ["customer_id"],
        "parts": listed,
    }
    s3.put_object(Bucket=BUCKET, Key=f"audiences/{audience_id}/manifest.json", Body=json.dumps(manifest).encode())
    return f"s3://{BUCKET}/audiences/{audience_id}/manifest.json"


def test_a_segment_campaign_reads_the_segments_latest_build(engine: Engine, lambda_context: Any) -> None:
    # Given two builds of a segment and one of an excluded segment in the lake bucket
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    old = put_build(s3, "aud_old", [["cus_1", "cus_2"]])
    new = put_build(s3, "aud_new", [["cus_1", "cus_2"], ["cus_3", "cus_4"]])
    out = put_build(s3, "aud_out", [["cus_4"]])

    # When their AudienceBuilt events arrive, the newer build before the older one, one twice
    events = [
        built("seg_vip", "aud_new", new, 1),
        built("seg_vip", "aud_old", old, 5),
        built("seg_churned", "aud_out", out, 2),
        built("seg_churned", "aud_out", out, 2),
    ]
    assert consume(sqs_batch(events), lambda_context, engine.store) == {"batchItemFailures": []}

    # Then the latest build is kept, and the campaign's audience is its members minus the excluded, and the list
    assert engine.store.segment_manifest("seg_vip") == new
    audience = CampaignAudience(BuiltSegmentAudiences(s3, engine.store.segment_manifest))
    campaign = campaign_in(
        audience={"segment_ids": ["seg_vip"], "exclude_segment_ids": ["seg_churned"], "customer_ids": ["cus_9"]}
    )
    assert audience.customers(campaign.audience) == ["cus_9", "cus_1", "cus_2", "cus_3"]
