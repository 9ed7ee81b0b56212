"""The collection engine's pure rules: keys, reading requests, limits, normalisation."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ecrm.collect import logic
from ecrm.collect.logic import PayloadTooLarge
from ecrm.collect.models import MAX_BATCH_BYTES, Message, Source
from ecrm.core.errors import InvalidInput
from ecrm.core.ids import is_id
from hypothesis import given, settings
from hypothesis import strategies as st

FAST = settings(max_examples=100, deadline=None)
NOW = datetime(2026, 11, 23, 10, 15, 31, tzinfo=UTC)
SOURCE = Source(source_id="src_01JDQ6V5XW3C9ZKDT8M0A4N2PB", name="shop-web", key_prefix="wk_abcdefg", created_at=NOW)


def basic(username: str, password: str | None = "") -> str:
    credentials = username if password is None else f"{username}:{password}"
    return "Basic " + base64.b64encode(credentials.encode()).decode()


# -- write keys ----------------------------------------------------------------------------------
def test_a_write_key_is_prefixed_random_and_stored_only_as_its_hash() -> None:
    # Given two new keys
    first, second = logic.new_write_key(), logic.new_write_key()
    # Then they are distinct, prefixed, with 32 random bytes behind the prefix
    assert first != second
    assert first.startswith("wk_")
    assert len(first) == 3 + 43
    # And what is stored is the sha256 hex, which does not contain the key
    digest = logic.hash_write_key(first)
    assert len(digest) == 64
    assert all(c in "0123456789abcdef" for c in digest)
    assert first not in digest
    assert logic.key_prefix(first) == first[:10]


@pytest.mark.parametrize(
    ("authorization", "body", "expected"),
    [
        (basic("wk_key"), None, "wk_key"),  # analytics-python: "key:"
        (basic("wk_key", None), None, "wk_key"),  # analytics-node: "key" without the colon
        ("basic " + base64.b64encode(b"wk_key:").decode(), None, "wk_key"),  # scheme is case-insensitive
        (None, {"writeKey": "wk_body"}, "wk_body"),  # analytics.js
        (basic("wk_header"), {"writeKey": "wk_body"}, "wk_header"),  # the header wins
        ("Bearer abc", {"writeKey": "wk_body"}, "wk_body"),
        ("Basic %%%not-base64", {"writeKey": "wk_body"}, None),  # a broken header is not skipped silently
        (basic(""), None, None),
        (None, {"writeKey": 42}, None),
        (None, None, None),
    ],
)
def test_the_write_key_comes_from_basic_auth_or_the_body(
    authorization: str | None, body: dict[str, Any] | None, expected: str | None
) -> None:
    assert logic.write_key_from(authorization, body) == expected


# -- the body ------------------------------------------------------------------------------------
def test_a_body_over_500_kb_is_413_and_one_at_the_limit_is_read() -> None:
    at_limit = "x" * MAX_BATCH_BYTES
    assert len(logic.read_body(at_limit)) == MAX_BATCH_BYTES
    with pytest.raises(PayloadTooLarge) as raised:
        logic.read_body(at_limit + "x")
    assert raised.value.status == 413
    assert "500 KB" in raised.value.detail


def test_a_gzip_body_is_inflated_and_its_inflated_size_is_what_counts() -> None:
    # Given a gzip body (analytics-python with gzip=True), base64-encoded by API Gateway
    document = {"batch": [{"type": "track", "event": "x", "userId": "u"}]}
    packed = base64.b64encode(gzip.compress(json.dumps(document).encode())).decode()
    # When it is read, Then it is the JSON document
    raw = logic.read_body(packed, base64_encoded=True, content_encoding="gzip")
    assert logic.parse_document(raw) == document
    # And a small body that inflates past the limit is refused without inflating it all
    bomb = base64.b64encode(gzip.compress(b" " * (MAX_BATCH_BYTES * 4))).decode()
    assert len(bomb) < 10_000
    with pytest.raises(PayloadTooLarge):
        logic.read_body(bomb, base64_encoded=True, content_encoding="gzip")
    # And a body that claims gzip and is not is a 400 (no gateway in front inflates bodies)
    with pytest.raises(InvalidInput, match="claims Content-Encoding gzip"):
        logic.read_body('{"batch": []}', content_encoding="gzip")


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_a_body_that_is_not_a_json_object_is_invalid(raw: bytes) -> None:
    with pytest.raises(InvalidInput):
        logic.parse_document(raw)


# -- single calls ----------------------------------------------------------------------------------
def test_a_single_call_takes_its_type_from_the_route() -> None:
    message = logic.parse_call({"userId": "u1", "traits": {"plan": "pro"}}, "identify")
    assert message.type == "identify"
    assert message.traits == {"plan": "pro"}
    # an explicit matching type is fine, and analytics.js's writeKey in the body is no problem
    assert logic.parse_call({"type": "page", "anonymousId": "a1", "writeKey": "wk_x"}, "page").type == "page"


def test_a_single_call_with_another_type_is_400_naming_the_type() -> None:
    with pytest.raises(InvalidInput) as raised:
        logic.parse_call({"type": "track", "event": "Signed Up", "userId": "u1"}, "identify")
    assert raised.value.detail.startswith("type:")
    assert "identify" in raised.value.detail


@pytest.mark.parametrize(
    ("call_type", "body", "named"),
    [
        ("track", {"userId": "u1"}, "event name"),
        ("track", {"userId": 7, "event": "x"}, "userId"),
        ("identify", {"traits": {"a": 1}}, "userId or anonymousId"),
        ("group", {"userId": "u1"}, "groupId"),
        ("alias", {"userId": "u1"}, "previousId"),
        ("page", {"anonymousId": "a1", "timestamp": "2026-11-23T10:00:00"}, "timestamp"),
        ("page", {"anonymousId": "a1", "properties": "not an object"}, "properties"),
    ],
)
def test_an_invalid_single_call_is_400_naming_the_field(call_type: Any, body: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        logic.parse_call(body, call_type)
    assert named in raised.value.detail


def test_a_single_message_over_32_kb_is_400() -> None:
    with pytest.raises(InvalidInput) as raised:
        logic.parse_call({"userId": "u1", "event": "big", "properties": {"blob": "x" * 33_000}}, "track")
    assert "32 KB" in raised.value.detail


# -- batches ---------------------------------------------------------------------------------------
def test_batch_context_and_integrations_are_merged_into_each_message_whose_own_values_win() -> None:
    # Given a batch-level context and integrations, and a message with some of its own
    document = {
        "batch": [
            {"type": "track", "userId": "u1", "event": "A", "context": {"ip": "198.51.100.7", "library": {"v": "2"}}},
            {"type": "identify", "userId": "u2", "integrations": {"All": True}},
        ],
        "context": {"ip": "203.0.113.1", "library": {"name": "analytics-python", "v": "1"}},
        "integrations": {"All": False, "Mixpanel": True},
        "sentAt": "2026-11-23T10:15:30Z",
    }
    # When the batch is read
    parsed = logic.parse_batch(document)
    first, second = (m.message for m in parsed.messages)
    # Then each message carries the batch's objects, its own values winning key by key
    assert first.context == {"ip": "198.51.100.7", "library": {"name": "analytics-python", "v": "2"}}
    assert first.integrations == {"All": False, "Mixpanel": True}
    assert second.context == {"ip": "203.0.113.1", "library": {"name": "analytics-python", "v": "1"}}
    assert second.integrations == {"All": True, "Mixpanel": True}
    # And the batch's sentAt (analytics-python sends it only there) applies to each message
    assert first.sent_at == datetime(2026, 11, 23, 10, 15, 30, tzinfo=UTC)
    assert parsed.rejections == []


def test_a_bad_message_in_a_batch_is_rejected_with_its_index_id_and_field_and_the_rest_accepted() -> None:
    # Given a batch with good messages around two bad ones
    document = {
        "batch": [
            {"type": "track", "userId": "u1", "event": "Good"},
            {"type": "track", "userId": "u1", "messageId": "m-bad"},
            {"type": "screen", "anonymousId": "a1", "name": "Home"},
            {"userId": "u1"},
            {"type": "page", "anonymousId": "a1", "properties": {"blob": "x" * 33_000}, "messageId": "m-big"},
        ]
    }
    # When it is read
    parsed = logic.parse_batch(document)
    # Then the good ones are kept in order, each with its index
    assert [(m.index, m.message.type) for m in parsed.messages] == [(0, "track"), (2, "screen")]
    # And each bad one says which, and why, naming the field
    reasons = {r.index: r for r in parsed.rejections}
    assert set(reasons) == {1, 3, 4}
    assert reasons[1].message_id == "m-bad"
    assert "event name" in reasons[1].reason
    assert reasons[3].reason.startswith("type:")
    assert reasons[4].message_id == "m-big"
    assert "32 KB" in reasons[4].reason


def test_a_message_is_measured_with_the_batch_context_it_will_carry() -> None:
    # Given a small message and a batch context that makes it larger than 32 KB
    document = {"batch": [{"type": "track", "userId": "u", "event": "x"}], "context": {"pad": "x" * 33_000}}
    # When it is read, Then the message is rejected for its size
    parsed = logic.parse_batch(document)
    assert parsed.messages == []
    assert "32 KB" in parsed.rejections[0].reason


@pytest.mark.parametrize(
    ("document", "named"),
    [({"batch": []}, "batch"), ({"messages": []}, "batch"), ({"batch": [{}], "sentAt": "yesterday"}, "sentAt")],
)
def test_a_malformed_batch_is_400_naming_the_field(document: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        logic.parse_batch(document)
    assert raised.value.detail.startswith(named)


# -- normalisation ---------------------------------------------------------------------------------
def message(**fields: Any) -> Message:
    return Message.model_validate({"type": "track", "userId": "u1", "event": "Order Completed", **fields})


def test_the_clients_timestamp_is_corrected_for_its_clock_skew() -> None:
    # Given a client whose clock is 1 hour behind: it says it sent at 09:15:30 an event of 09:10:00
    collected = logic.collected_event(
        message(timestamp="2026-11-23T09:10:00Z", sentAt="2026-11-23T09:15:30Z"), SOURCE, NOW
    )
    # Then the event happened 5.5 minutes before the server received it
    assert collected.timestamp == NOW - timedelta(minutes=5, seconds=30)
    assert collected.original_timestamp == datetime(2026, 11, 23, 9, 10, tzinfo=UTC)
    assert collected.sent_at == datetime(2026, 11, 23, 9, 15, 30, tzinfo=UTC)
    assert collected.received_at == NOW


def test_without_sent_at_the_timestamp_is_taken_and_without_either_the_receipt_time() -> None:
    only_timestamp = logic.collected_event(message(timestamp="2026-11-20T08:00:00+02:00"), SOURCE, NOW)
    assert only_timestamp.timestamp == datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
    assert only_timestamp.timestamp.tzinfo == UTC
    neither = logic.collected_event(message(sentAt="2026-11-23T10:15:30Z"), SOURCE, NOW)
    assert neither.timestamp == NOW
    assert neither.original_timestamp is None


def test_a_late_event_is_kept_as_it_is() -> None:
    # Given an event from a phone that was offline for three days
    collected = logic.collected_event(
        message(timestamp="2026-11-20T10:00:00Z", sentAt="2026-11-23T10:15:31Z"), SOURCE, NOW
    )
    # Then it keeps its time, three days ago
    assert collected.timestamp == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@FAST
@given(
    skew=st.integers(min_value=-86_400, max_value=86_400),
    age=st.integers(min_value=0, max_value=30 * 86_400),
)
def test_skew_correction_keeps_the_clients_interval_between_event_and_send(skew: int, age: int) -> None:
    # Given a client clock off by `skew` seconds, and an event `age` seconds before it was sent
    sent_at = NOW + timedelta(seconds=skew)
    timestamp = sent_at - timedelta(seconds=age)
    # Then the corrected time is `age` seconds before receipt, whatever the skew
    assert logic.corrected_timestamp(timestamp, sent_at, NOW) == NOW - timedelta(seconds=age)


def test_the_clients_message_id_is_kept_and_a_missing_one_is_generated() -> None:
    kept = logic.collected_event(message(messageId="ajs-next-1"), SOURCE, NOW)
    assert kept.message_id == "ajs-next-1"
    generated = [logic.collected_event(message(), SOURCE, NOW).message_id for _ in range(2)]
    assert all(is_id(m, "msg_") for m in generated)
    assert generated[0] != generated[1]


def test_the_collected_event_carries_the_source_and_the_spec_fields() -> None:
    collected = logic.collected_event(
        Message.model_validate(
            {"type": "alias", "userId": "u-9", "previousId": "anon-3", "context": {"ip": "203.0.113.9"}, "x": 1}
        ),
        SOURCE,
        NOW,
    )
    assert (collected.source_id, collected.source_name) == (SOURCE.source_id, "shop-web")
    assert (collected.type, collected.user_id, collected.previous_id) == ("alias", "u-9", "anon-3")
    assert collected.context == {"ip": "203.0.113.9"}


def test_a_message_id_repeated_within_one_request_is_kept_once() -> None:
    events = [logic.collected_event(message(messageId=m), SOURCE, NOW) for m in ("a", "b", "a", "a")]
    unique, repeated = logic.first_occurrences(events)
    assert [e.message_id for e in unique] == ["a", "b"]
    assert repeated == 2
