"""Erasure reaches the lake: after `DELETE /customers/{id}` completes, no lake table holds anything of them.

Through the real segment-analytics-python client and the local API: an anonymous visitor browses,
signs in with contact traits from a browser-like context, the customer store links the anonymous
id, segmentation records the behaviour, she orders and is sent an email (the order lines and the
message outcomes other engines write to the lake); then the customer is erased. Every lake table is read
back (DuckDB over the same Parquet objects Athena reads) and every object of the lake bucket is
scanned for the customer's values.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from ecrm.analysis.segment_sql import lake_table_columns
from ecrm.core.lake import LAKE_TABLES
from ecrm_ops.tour.context import TourContext, wait_for
from segment.analytics import Client

from infra.local.lake import LocalLake
from tests.e2e.test_broadcast import send
from tests.e2e.test_transactions import place

SOURCE = "e2eerase"
LAKE_TABLE_PREFIXES = (
    "collected_events",
    "customer_changes",
    "segment_profiles",
    "behaviour_events",
    "order_lines",
    "message_outcomes",
)


@pytest.fixture(scope="module")
def analytics(tour: TourContext) -> Iterator[Client]:
    created = tour.call("POST", "/sources", token=tour.token(group="admin"), body={"name": SOURCE, "kind": "server"})
    assert created.status == 201, created.body
    client = Client(str(created.body["write_key"]), host=tour.api, sync_mode=True, max_retries=1, timeout=15)
    yield client
    client.flush()


def test_after_an_erasure_the_lake_holds_nothing_of_the_customer_identified_or_anonymous(
    tour: TourContext, analytics: Client
) -> None:
    admin = tour.token(group="admin")
    run = uuid.uuid4().hex[:8]
    anonymous_id, user_id = f"anon-{run}", f"user-{run}"
    email, phone = f"lake.erase.{run}@example.com", "+14155550142"
    ip, agent = "203.0.113.77", f"EraseMeBrowser/{run}"
    other_anonymous, other_user = f"anon-other-{run}", f"user-other-{run}"
    browser = {"ip": ip, "userAgent": agent, "page": {"path": "/account", "url": f"https://shop.example/?e={email}"}}
    # Given a visitor who browsed anonymously, then signed in with her contact details
    analytics.page(anonymous_id=anonymous_id, name="Home", context=browser)
    analytics.track(
        anonymous_id=anonymous_id, event="Product Viewed", properties={"product_id": "sku-9"}, context=browser
    )
    analytics.identify(
        user_id=user_id,
        anonymous_id=anonymous_id,
        traits={"email": email, "phone": phone, "first_name": f"Erin{run}"},
        context=browser,
    )
    analytics.track(user_id=user_id, event="Order Completed", properties={"revenue": 19.5}, context=browser)
    # And another visitor, who stays
    analytics.identify(user_id=other_user, anonymous_id=other_anonymous, traits={"email": f"other.{run}@example.com"})
    analytics.track(user_id=other_user, event="Order Completed", properties={"revenue": 5.0})
    analytics.flush()
    found = wait_for(
        lambda: (
            (r := tour.call("GET", f"/customers?external_id={SOURCE}:{user_id}", token=admin)).status == 200
            and len(
                tour.call("GET", f"/customers/{r.body['customer_id']}/timeline?limit=100", token=admin).body["items"]
            )
            >= 3
            and r.body
        ),
        timeout=30,
        what="the customer and her timeline",
    )
    customer_id = found["customer_id"]
    lake = LocalLake(tour.cloud.client("s3"), tour.cloud.physical_id("AWS::S3::Bucket", "LakeBucket"))
    # And she ordered through the API and was sent an email: the transactions engine's order lines and insights'
    # message outcomes in the lake name her too
    order = {
        "customer_id": customer_id,
        "currency": "EUR",
        "channel": "web",
        "lines": [{"sku": "sku-9", "name": "Lamp", "category": "home", "quantity": 1, "unit_price_minor": 1950}],
    }
    assert place(tour, tour.token(group="agent"), order, f"erase-{run}")[0] == 201
    send(tour, admin, customer_id, f"erase-msg-{run}", purpose="transactional")
    for table in ("behaviour_events", "order_lines", "message_outcomes"):
        wait_for(
            lambda table=table: lake.query(f"select count(*) n from {{{table}}} where customer_id = ?", [customer_id])[
                0
            ]["n"],
            timeout=60,
            what=f"her rows in the lake's {table}",
        )

    # When she is erased and every participant acknowledges
    request = tour.call("DELETE", f"/customers/{customer_id}", token=admin).body["request_id"]
    done = wait_for(
        lambda: (e := tour.call("GET", f"/erasures/{request}", token=admin).body)["status"] == "completed" and e,
        timeout=60,
        what="the erasure",
    )
    assert {"collect", "analysis"} <= set(done["acknowledged"])

    # Then no lake table has a row of her tracked ids or her customer id
    assert not lake.query(
        "select message_id from {collected_events} where anonymous_id = ? or (source_name = ? and user_id = ?)",
        [anonymous_id, SOURCE, user_id],
    )
    for table in ("segment_profiles", "behaviour_events", "order_lines", "message_outcomes"):
        assert not lake.query(f"select customer_id from {{{table}}} where customer_id = ?", [customer_id]), table
    # And no object of any lake table (nor the eraser's staging) holds any value of hers
    s3, bucket = tour.cloud.client("s3"), tour.cloud.physical_id("AWS::S3::Bucket", "LakeBucket")
    keys = [
        o["Key"]
        for prefix in (*LAKE_TABLE_PREFIXES, "erasure-staging")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
        for o in page.get("Contents", [])
    ]
    everything = b"".join(s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys)
    # (customer_changes keeps the customer id beside field names and times, never a value: see ADR 10)
    for value in (email, phone, ip, agent, anonymous_id, user_id, f"Erin{run}"):
        assert value.encode() not in everything, value
    # And the other visitor's rows are all there
    kept = lake.query(
        "select type from {collected_events} where source_name = ? and user_id = ? order by type", [SOURCE, other_user]
    )
    assert [r["type"] for r in kept] == ["identify", "track"]


def test_the_lake_tables_the_runtime_declares_are_the_glue_tables_the_local_cloud_reads(tour: TourContext) -> None:
    # Given the lake's tables as the runtime declares them (the same SQL runs over them in both clouds)
    declared = {**LAKE_TABLES, **lake_table_columns()}
    # When the local cloud's catalog is read, as its Athena and LocalLake read it
    lake = LocalLake(tour.cloud.client("s3"), tour.cloud.physical_id("AWS::S3::Bucket", "LakeBucket"))
    glue = tour.cloud.client("glue")
    found = {
        table: [
            (c["Name"], c["Type"])
            for c in glue.get_table(DatabaseName=database, Name=table)["Table"]["StorageDescriptor"]["Columns"]
        ]
        for table, database in lake.tables().items()
    }
    # Then every table is there with the declared columns, and there is no other
    assert found == declared
