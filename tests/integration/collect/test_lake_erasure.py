"""Erasure in the lake: the customer's collected events leave the Parquet objects, nobody else's do.

The lake as the local cloud runs it (moto server, the `Lake` construct's template provisioned,
Firehose writing Parquet, Athena on DuckDB with UNLOAD and `"$path"`), the eraser wired as the
collection engine's erasure consumer wires it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from ecrm.collect.erasure import CollectErasure, tracked_rows_predicate
from ecrm.collect.lake_records import collected_event_record
from ecrm.collect.models import CollectDataErased, CollectedEvent
from ecrm.core.clock import FixedClock
from ecrm.core.lake import ERASURE_STAGING, AthenaLake, LakeObjectBusy, LakeRowEraser, ObjectLeases, firehose_data
from ecrm.customers.models import CustomerErasureRequested, TrackedIds

from infra.local import athena
from infra.local.lake import LocalLake
from tests.integration.test_lake import LocalLakeCloud, lake, lake_template, moto_endpoint  # noqa: F401

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LEASES = "collect-leases"
WORKGROUP = "erasure-it"
ADA = TrackedIds(anonymous_ids=["anon-ada-1", "anon-ada-2"], user_ids={"shopweb": ["u-ada"]})
ADA_SECRETS = ("ada@example.com", "+14155552671", "203.0.113.7", "AdaBrowser/1.0")


class Published:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def publish_all(self, events: list[Any], *, correlation_id: str | None = None) -> None:
        self.events.extend(events)


def call(
    message_id: str,
    *,
    source: str = "shopweb",
    user_id: str | None = None,
    anonymous_id: str | None = None,
    email: str | None = None,
    ip: str = "198.51.100.1",
    agent: str = "OtherBrowser/2.0",
) -> bytes:
    event = CollectedEvent(
        message_id=message_id,
        type="identify" if email else "track",
        source_id=f"src-{source}",
        source_name=source,
        user_id=user_id,
        anonymous_id=anonymous_id,
        event=None if email else "Product Viewed",
        properties={} if email else {"product_id": "sku-1"},
        traits={"email": email} if email else {},
        context={"ip": ip, "userAgent": agent, "page": {"path": "/p", "url": f"https://shop.example/p?e={email}"}},
        timestamp=NOW,
        received_at=NOW,
    )
    return firehose_data(collected_event_record(event))


@pytest.fixture(scope="module", autouse=True)
def athena_emulation() -> None:
    athena.install()


@pytest.fixture
def eraser_parts(lake: LocalLakeCloud) -> tuple[CollectErasure, Published, ObjectLeases]:  # noqa: F811
    leases_table = f"{LEASES}-{uuid.uuid4().hex[:8]}"  # one moto server for the module: names of its own
    lake.client("dynamodb").create_table(
        TableName=leases_table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
        BillingMode="PAY_PER_REQUEST",
    )
    athena_client = lake.client("athena")
    name = f"{WORKGROUP}-{leases_table[-8:]}"
    athena_client.create_work_group(
        Name=name,
        Configuration={
            "ResultConfiguration": {"OutputLocation": f"s3://{lake.bucket}/query-results/"},
            "EnforceWorkGroupConfiguration": True,
        },
    )
    clock = FixedClock(NOW)
    leases = ObjectLeases(lake.client("dynamodb"), leases_table, owner="eraser-under-test")
    eraser = LakeRowEraser(
        AthenaLake(athena_client, workgroup=name, database=lake.database, poll_seconds=0.01),
        lake.client("s3"),
        bucket=lake.bucket,
        leases=leases,
        now=clock.now,
    )
    published = Published()
    return CollectErasure(eraser=eraser, publisher=published, clock=clock), published, leases


def put(lake: LocalLakeCloud, *records: bytes) -> None:  # noqa: F811
    response = lake.client("firehose").put_record_batch(
        DeliveryStreamName=lake.stream, Records=[{"Data": r} for r in records]
    )
    assert response["FailedPutCount"] == 0


def request(ids: TrackedIds = ADA) -> CustomerErasureRequested:
    return CustomerErasureRequested(
        request_id="era_01", customer_id="cus_ada", customer_ids=["cus_ada"], requested_at=NOW, tracked_ids=ids
    )


def rows(lake: LocalLakeCloud) -> list[dict[str, Any]]:  # noqa: F811
    return LocalLake(lake.client("s3"), lake.bucket).query(
        "SELECT message_id, source_name, user_id, anonymous_id FROM {collected_events} ORDER BY message_id"
    )


def lake_bytes(lake: LocalLakeCloud) -> bytes:  # noqa: F811
    s3 = lake.client("s3")
    return b"".join(s3.get_object(Bucket=lake.bucket, Key=k)["Body"].read() for k in lake.keys(""))


def test_an_erasure_leaves_nothing_of_the_customer_in_the_lake_and_everyone_else_whole(
    lake: LocalLakeCloud,  # noqa: F811
    eraser_parts: tuple[CollectErasure, Published, ObjectLeases],
) -> None:
    erasure, published, _ = eraser_parts
    # Given one object mixing the customer's calls with others', and one holding only hers
    put(
        lake,
        call("m01", anonymous_id="anon-ada-1"),
        call(
            "m02",
            user_id="u-ada",
            anonymous_id="anon-ada-1",
            email="ada@example.com",
            ip="203.0.113.7",
            agent="AdaBrowser/1.0",
        ),
        call("m03", anonymous_id="anon-bob-1"),
        call("m04", user_id="u-bob", anonymous_id="anon-bob-1", email="bob@example.com"),
        call("m05", source="app", user_id="u-ada"),  # the same user id in another source is someone else
        call("m06", user_id="u-bob"),  # no anonymous id: NULL must not erase it
    )
    put(lake, call("m07", anonymous_id="anon-ada-2"), call("m08", user_id=" u-ada ", anonymous_id="anon-ada-3"))
    assert len(rows(lake)) == 8
    # When the collection engine handles the erasure request
    erased = erasure.erase(request())
    erasure.acknowledge(request())
    # Then no row of her tracked ids is left, and nobody else's row is lost
    assert erased == 4
    assert [r["message_id"] for r in rows(lake)] == ["m03", "m04", "m05", "m06"]
    # and no value of hers is anywhere in the bucket (the lake never held them, staging is emptied)
    everything = lake_bytes(lake)
    for secret in (*ADA_SECRETS, b"anon-ada".decode(), "u-ada\x00"):
        assert secret.encode() not in everything, secret
    assert not lake.keys(ERASURE_STAGING)
    assert [type(e) for e in published.events] == [CollectDataErased]
    assert published.events[0].engine == "collect"


def test_a_redelivered_request_finds_nothing_more_and_changes_nothing(
    lake: LocalLakeCloud,  # noqa: F811
    eraser_parts: tuple[CollectErasure, Published, ObjectLeases],
) -> None:
    erasure, _, _ = eraser_parts
    put(lake, call("m01", anonymous_id="anon-ada-1"), call("m02", anonymous_id="anon-bob-1"))
    erasure.erase(request())
    objects = {key: lake.read(key) for key in lake.keys("collected_events/")}
    # When the same request is delivered again
    again = erasure.erase(request())
    # Then nothing is erased and no object is touched
    assert again == 0
    assert {key: lake.read(key) for key in lake.keys("collected_events/")} == objects


def test_an_object_another_eraser_is_rewriting_is_left_for_a_retry(
    lake: LocalLakeCloud,  # noqa: F811
    eraser_parts: tuple[CollectErasure, Published, ObjectLeases],
) -> None:
    erasure, _, leases = eraser_parts
    put(lake, call("m01", anonymous_id="anon-ada-1"), call("m02", anonymous_id="anon-bob-1"))
    (key,) = lake.keys("collected_events/")
    other = ObjectLeases(lake.client("dynamodb"), leases.table_name, owner="another-eraser")
    other.acquire(key, NOW)
    # When an erasure meets the object under another eraser's lease, it fails (its record is retried)
    with pytest.raises(LakeObjectBusy):
        erasure.erase(request())
    assert len(rows(lake)) == 2
    # and once the lease is released, the retry erases
    other.release(key)
    assert erasure.erase(request()) == 1
    assert [r["message_id"] for r in rows(lake)] == ["m02"]


def test_a_request_without_tracked_ids_selects_nothing() -> None:
    assert tracked_rows_predicate(TrackedIds()) is None
    assert tracked_rows_predicate(TrackedIds(user_ids={"o'shop": ["it's"]})) == (
        "(source_name = 'o''shop' AND trim(user_id) IN ('it''s'))"
    )
