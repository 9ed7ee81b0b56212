"""DynamoPingStore against a DynamoDB table (moto) with the platform's key design."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError
from ecrm.platform.models import PingRecord
from ecrm.platform.store import PING_TTL, DynamoPingStore

REQUESTED_AT = datetime(2026, 11, 23, 10, 15, 30, 120000, tzinfo=UTC)
RECEIVED_AT = REQUESTED_AT + timedelta(milliseconds=880)


@pytest.fixture
def store(platform_table) -> DynamoPingStore:
    return DynamoPingStore(platform_table)


def _record(ping_id: str = "png_01JD3Z6Q5N8V4W7X2Y9A0B1C2D", message: str = "hello") -> PingRecord:
    return PingRecord(
        ping_id=ping_id,
        message=message,
        requested_by="marketer@example.com",
        requested_at=REQUESTED_AT,
        received_at=RECEIVED_AT,
        round_trip_ms=880,
    )


def test_a_saved_ping_reads_back_equal(store):
    # Given / When
    assert store.save(_record()) is True
    loaded = store.get("png_01JD3Z6Q5N8V4W7X2Y9A0B1C2D")

    # Then
    assert loaded == _record()


def test_the_item_follows_the_documented_keys_and_expires(store, platform_table):
    # Given / When
    store.save(_record())

    # Then the item is keyed PING#<id> / PING and expires 7 days after arrival
    item = platform_table.get_item(Key={"pk": "PING#png_01JD3Z6Q5N8V4W7X2Y9A0B1C2D", "sk": "PING"})["Item"]
    assert int(item["expires_at"]) == int((RECEIVED_AT + PING_TTL).timestamp())


def test_a_second_save_of_the_same_ping_changes_nothing(store):
    # Given a recorded ping
    store.save(_record())

    # When the same ping arrives again with other content
    saved_again = store.save(_record(message="redelivered"))

    # Then the conditional write refused it and the first record stands
    assert saved_again is False
    assert store.get("png_01JD3Z6Q5N8V4W7X2Y9A0B1C2D").message == "hello"


def test_a_missing_ping_is_none(store):
    # Given / When / Then
    assert store.get("png_01JD3Z6Q5N8V4W7X2Y9A0B1C2Z") is None


def test_other_write_errors_are_not_swallowed(aws):
    # Given a store pointed at a table that does not exist
    store = DynamoPingStore(boto3.resource("dynamodb", region_name="us-east-1").Table("no-such-table"))

    # When / Then the error surfaces instead of reading as a redelivery
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        store.save(_record())
