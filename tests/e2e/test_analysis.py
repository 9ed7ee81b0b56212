"""Segmentation on the local cloud: real-time membership, preview and builds on the lake, OLAP."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ecrm.core.ids import new_id
from ecrm_ops.tour.context import TourContext, expect, wait_for

FRENCH_BUYERS = {
    "all": [
        {"attribute": "country", "op": "eq", "value": "FR"},
        {"event": "order_completed", "window": {"last_days": 30}, "count": {"op": "gte", "value": 1}},
    ]
}


def _customer(tour: TourContext, token: str, country: str) -> str:
    body = {
        "source": "web",
        "identities": [{"type": "email", "value": f"{new_id('e2e').lower()}@example.org"}],
        "attributes": {"country": country, "first_name": "Alex"},
    }
    return str(expect(tour.call("POST", "/customers", token=token, body=body), 201, "customer").body["customer_id"])


def _order(tour: TourContext, token: str, customer_id: str, amount: float) -> None:
    body = {
        "type": "order_completed",
        "occurred_at": datetime.now(UTC).isoformat(),
        "source": "shop",
        "channel": "web",
        "properties": {"revenue": amount, "category": "shoes"},
    }
    expect(tour.call("POST", f"/customers/{customer_id}/interactions", token=token, body=body), 201, "order")


def test_segments_stay_current_in_real_time_and_build_on_the_lake(tour: TourContext) -> None:
    marketer = tour.token(group="marketer")
    # Given a dynamic segment and two customers, one French, one German
    segment = expect(
        tour.call("POST", "/segments", token=marketer, body={"name": "French buyers", "rule": FRENCH_BUYERS}),
        201,
        "segment",
    ).body
    french, german = _customer(tour, marketer, "FR"), _customer(tour, marketer, "DE")
    # When both order
    _order(tour, marketer, french, 120.0)
    _order(tour, marketer, german, 80.0)

    # Then only the French customer enters, within seconds, and their profile says so
    def entered() -> Any:
        profile = tour.call("GET", f"/customers/{french}", token=marketer).body
        return profile if segment["segment_id"] in profile.get("segments", []) else None

    wait_for(entered, timeout=60, what="the French buyer in the segment")
    assert segment["segment_id"] not in tour.call("GET", f"/customers/{german}", token=marketer).body["segments"]
    counted = wait_for(
        lambda: (
            (s := tour.call("GET", f"/segments/{segment['segment_id']}", token=marketer).body)["member_count"] >= 1
            and s
        ),
        timeout=30,
        what="the live count",
    )
    assert counted["rule_text"].startswith("(country is FR and order completed")

    # And the same rule previewed on the lake finds the French customer
    preview = wait_for(
        lambda: (
            (
                p := tour.call(
                    "POST", "/segments/preview", token=marketer, body={"rule": FRENCH_BUYERS, "sample": 50}
                ).body
            )
            and french in p.get("sample", [])
            and p
        ),
        timeout=60,
        what="the preview on the lake",
    )
    assert german not in preview["sample"]

    # And a build leaves a manifest whose parts hold the audience
    build = expect(tour.call("POST", f"/segments/{segment['segment_id']}/build", token=marketer), 202, "build").body
    done = wait_for(
        lambda: (
            (b := tour.call("GET", f"/audiences/{build['audience_id']}", token=marketer).body)["status"] != "running"
            and b
        ),
        timeout=180,
        what="the audience build",
    )
    assert done["status"] == "completed", done
    bucket, key = done["manifest"].removeprefix("s3://").split("/", 1)
    s3 = tour.cloud.client("s3")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    members: set[str] = set()
    for part in manifest["parts"]:
        part_bucket, part_key = part["location"].removeprefix("s3://").split("/", 1)
        lines = s3.get_object(Bucket=part_bucket, Key=part_key)["Body"].read().decode().splitlines()
        members |= {line.strip('"') for line in lines[1:]}
    assert french in members
    assert german not in members
    assert manifest["count"] == len(members) == done["count"]


def test_a_rule_the_catalogue_refuses_names_the_part(tour: TourContext) -> None:
    marketer = tour.token(group="marketer")
    rule = {"all": [{"attribute": "shoe_size", "op": "eq", "value": "42"}]}
    refused = tour.call("POST", "/segments", token=marketer, body={"name": "Bad", "rule": rule})
    assert refused.status == 422
    assert refused.body["errors"][0]["path"] == "rule.all[0].attribute"


def test_olap_slices_orders_by_country(tour: TourContext) -> None:
    analyst, marketer = tour.token(group="analyst"), tour.token(group="marketer")
    customer = _customer(tour, marketer, "BE")
    _order(tour, marketer, customer, 50.0)
    body = {"measures": ["orders", "revenue", "customers"], "dimensions": ["country"]}

    def belgium() -> Any:
        rows = expect(tour.call("POST", "/analysis/olap", token=analyst, body=body), 200, "olap").body["rows"]
        return next((r for r in rows if r["country"] == "BE" and r["orders"] >= 1), None)

    row = wait_for(belgium, timeout=60, what="Belgian orders in OLAP")
    assert row["revenue"] >= 50.0
