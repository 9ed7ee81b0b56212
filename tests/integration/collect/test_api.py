"""The collection handler end to end on a moto table: write-key auth, Segment calls, limits, sources."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest
from ecrm.collect.logic import TRACKING_PATHS
from ecrm.collect.service import CollectService

from functions.collect import api
from tests.integration.collect.conftest import Answer, staff_request, tracking_request
from tests.unit.collect.fakes import FakeLake
from tests.unit.fakes import FakeEventsClient

SENT_AT = "2026-11-23T10:15:30.000Z"


@pytest.fixture
def write_key(call: Any) -> str:
    answer = call(staff_request("POST", "/sources", body={"name": "shop-web", "kind": "web"}))
    assert answer.status == 201
    return str(answer.body["write_key"])


def track(message_id: str | None = None, **fields: Any) -> dict[str, Any]:
    body = {"userId": "u-1", "event": "Product Viewed", "properties": {"sku": "A-1"}, **fields}
    if message_id:
        body["messageId"] = message_id
    return body


def published(bus: FakeEventsClient) -> list[tuple[str, str]]:
    return [(e["DetailType"], json.loads(e["Detail"])["data"]["message"]["message_id"]) for e in bus.accepted]


def assert_problem(answer: Answer, status: int) -> None:
    assert answer.status == status
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.body["status"] == status


# -- authentication ------------------------------------------------------------------------------------
def test_a_call_without_a_write_key_is_401_with_a_basic_challenge(call: Any, bus: FakeEventsClient) -> None:
    answer = call(tracking_request("/v1/track", track("m1")))
    assert_problem(answer, 401)
    assert answer.headers["WWW-Authenticate"] == 'Basic realm="ecrm"'
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert bus.accepted == []


def test_an_unknown_write_key_is_401(call: Any, write_key: str) -> None:
    answer = call(tracking_request("/v1/track", track("m1"), write_key=write_key + "x"))
    assert_problem(answer, 401)
    assert answer.headers["WWW-Authenticate"] == 'Basic realm="ecrm"'


def test_a_disabled_source_is_403(call: Any, write_key: str, bus: FakeEventsClient) -> None:
    # Given the source disabled by an admin
    source_id = call(staff_request("GET", "/sources")).body["items"][0]["source_id"]
    patched = call(
        staff_request(
            "PATCH", "/sources/{source_id}", path_parameters={"source_id": source_id}, body={"enabled": False}
        )
    )
    assert (patched.status, patched.body["enabled"]) == (200, False)
    # When it sends a call, Then it is refused and nothing is published
    answer = call(tracking_request("/v1/track", track("m1"), write_key=write_key))
    assert_problem(answer, 403)
    assert bus.accepted == []


# -- single calls -----------------------------------------------------------------------------------------
def test_a_track_call_with_basic_auth_is_accepted_and_published(
    call: Any, write_key: str, bus: FakeEventsClient, lake: FakeLake
) -> None:
    answer = call(tracking_request("/v1/track", track("m1", sentAt=SENT_AT), write_key=write_key))
    assert answer.status == 200
    assert answer.body == {"success": True, "accepted": 1, "duplicates": 0, "rejected": []}
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert published(bus) == [("TrackEventReceived", "m1")]
    assert lake.written[0].source_name == "shop-web"


@pytest.mark.parametrize(
    ("path", "body", "detail_type"),
    [
        ("/v1/identify", {"userId": "u-1", "traits": {"email": "a@example.com"}}, "UserIdentified"),
        ("/v1/page", {"anonymousId": "a-1", "name": "Home"}, "PageViewed"),
        ("/v1/screen", {"anonymousId": "a-1", "name": "Cart"}, "ScreenViewed"),
        ("/v1/group", {"userId": "u-1", "groupId": "g-1"}, "GroupIdentified"),
        ("/v1/alias", {"userId": "u-1", "previousId": "a-1"}, "UserAliased"),
    ],
)
def test_each_call_publishes_the_event_of_its_type(
    call: Any, write_key: str, bus: FakeEventsClient, path: str, body: dict[str, Any], detail_type: str
) -> None:
    answer = call(tracking_request(path, body, write_key=write_key))
    assert (answer.status, answer.body["accepted"]) == (200, 1)
    assert [e["DetailType"] for e in bus.accepted] == [detail_type]


def test_analytics_js_posts_text_plain_to_the_short_path_with_the_key_in_the_body(
    call: Any, write_key: str, bus: FakeEventsClient
) -> None:
    # Given what analytics.js sends: `/v1/p`, text/plain, the write key in the body, no Authorization
    body = {"type": "page", "anonymousId": "a-1", "writeKey": write_key, "messageId": "ajs-next-1", "sentAt": SENT_AT}
    event = tracking_request("/v1/p", json.dumps(body), headers={"Content-Type": "text/plain"})
    # When it arrives, Then it is accepted, and the write key is not part of what is kept
    answer = call(event)
    assert (answer.status, answer.body["accepted"]) == (200, 1)
    assert published(bus) == [("PageViewed", "ajs-next-1")]
    assert write_key not in bus.accepted[0]["Detail"]


def test_an_invalid_single_call_is_400_naming_the_field(call: Any, write_key: str, bus: FakeEventsClient) -> None:
    answer = call(tracking_request("/v1/track", {"userId": "u-1"}, write_key=write_key))
    assert_problem(answer, 400)
    assert "event name" in answer.body["detail"]
    mismatch = call(tracking_request("/v1/identify", track("m1", type="track"), write_key=write_key))
    assert_problem(mismatch, 400)
    assert mismatch.body["detail"].startswith("type:")
    assert bus.accepted == []


def test_a_body_that_is_not_json_is_400(call: Any, write_key: str) -> None:
    assert_problem(call(tracking_request("/v1/track", "{oops", write_key=write_key)), 400)


# -- batches ------------------------------------------------------------------------------------------------
def test_a_batch_with_a_bad_event_accepts_the_good_ones_and_names_the_bad_field(
    call: Any, write_key: str, bus: FakeEventsClient
) -> None:
    # Given a batch as analytics-python sends it, with one message missing its event name
    body = {
        "batch": [
            {"type": "track", "userId": "u-1", "event": "A", "messageId": "b1"},
            {"type": "track", "userId": "u-1", "messageId": "b2"},
            {"type": "identify", "anonymousId": "a-1", "traits": {"plan": "pro"}, "messageId": "b3"},
        ],
        "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
        "sentAt": SENT_AT,
    }
    # When it is posted
    answer = call(tracking_request("/v1/batch", body, write_key=write_key))
    # Then the two good messages are accepted, and the bad one is reported with its index, id and reason
    assert answer.status == 200
    assert (answer.body["success"], answer.body["accepted"], answer.body["duplicates"]) == (True, 2, 0)
    assert answer.body["rejected"] == [{"index": 1, "messageId": "b2", "reason": "a track call needs an event name"}]
    assert published(bus) == [("TrackEventReceived", "b1"), ("UserIdentified", "b3")]
    detail = json.loads(bus.accepted[0]["Detail"])
    assert detail["data"]["message"]["context"]["library"]["name"] == "analytics-python"


def test_a_batch_whose_every_message_is_bad_is_400_with_the_reasons(call: Any, write_key: str) -> None:
    body = {"batch": [{"type": "track", "userId": "u-1"}, {"type": "nope", "userId": "u-1"}]}
    answer = call(tracking_request("/v1/batch", body, write_key=write_key))
    assert_problem(answer, 400)
    assert (answer.body["success"], answer.body["accepted"]) == (False, 0)
    assert [r["index"] for r in answer.body["rejected"]] == [0, 1]
    assert answer.body["rejected"][1]["reason"].startswith("type:")


def test_a_repeated_message_id_is_counted_as_a_duplicate_and_published_once(
    call: Any, write_key: str, bus: FakeEventsClient
) -> None:
    body = {"batch": [{"type": "track", "userId": "u-1", "event": "A", "messageId": "d1"}]}
    first = call(tracking_request("/v1/batch", body, write_key=write_key))
    again = call(tracking_request("/v1/batch", body, write_key=write_key))
    single = call(tracking_request("/v1/track", track("d1"), write_key=write_key))
    assert (first.body["accepted"], first.body["duplicates"]) == (1, 0)
    assert (again.status, again.body["success"], again.body["accepted"], again.body["duplicates"]) == (200, True, 0, 1)
    assert single.body["duplicates"] == 1
    assert published(bus) == [("TrackEventReceived", "d1")]


def test_a_body_over_500_kb_is_413_and_nothing_is_accepted(call: Any, write_key: str, bus: FakeEventsClient) -> None:
    batch = [{"type": "track", "userId": "u-1", "event": "A", "properties": {"pad": "x" * 20_000}} for _ in range(30)]
    answer = call(tracking_request("/v1/batch", {"batch": batch}, write_key=write_key))
    assert_problem(answer, 413)
    assert bus.accepted == []


def test_a_gzip_batch_is_read(call: Any, write_key: str, bus: FakeEventsClient) -> None:
    # Given analytics-python with gzip=True, behind a gateway that passes the body base64-encoded
    body = {"batch": [{"type": "track", "userId": "u-1", "event": "A", "messageId": "g1"}], "sentAt": SENT_AT}
    event = tracking_request("/v1/batch", None, write_key=write_key, headers={"Content-Encoding": "gzip"})
    event.update(body=base64.b64encode(gzip.compress(json.dumps(body).encode())).decode(), isBase64Encoded=True)
    answer = call(event)
    assert (answer.status, answer.body["accepted"]) == (200, 1)
    assert published(bus) == [("TrackEventReceived", "g1")]


def test_when_the_bus_fails_the_answer_is_503_and_the_retry_publishes_once(
    call: Any, write_key: str, bus: FakeEventsClient
) -> None:
    # Given a bus refusing everything
    bus.outcome = lambda call_number, index, entry: "AccessDeniedException"
    body = {"batch": [{"type": "track", "userId": "u-1", "event": "A", "messageId": "f1"}]}
    # When a batch is posted, Then 503 with Retry-After, so the library sends it again
    answer = call(tracking_request("/v1/batch", body, write_key=write_key))
    assert_problem(answer, 503)
    assert answer.headers["Retry-After"] == "2"
    # When it is sent again and the bus is back, Then it is accepted, not taken for a duplicate
    bus.outcome = None
    retry = call(tracking_request("/v1/batch", body, write_key=write_key))
    assert (retry.status, retry.body["accepted"], retry.body["duplicates"]) == (200, 1, 0)
    assert published(bus) == [("TrackEventReceived", "f1")]


# -- sources (staff) ---------------------------------------------------------------------------------------
def test_sources_are_for_admins(call: Any) -> None:
    assert_problem(call(staff_request("POST", "/sources", groups="marketer", body={"name": "x"})), 403)
    assert_problem(call(staff_request("GET", "/sources", groups="analyst")), 403)
    no_token = staff_request("GET", "/sources")
    no_token["requestContext"].pop("authorizer")
    assert_problem(call(no_token), 401)


def test_the_write_key_is_shown_once_and_rotation_keeps_the_old_one_for_a_day(
    call: Any, service: CollectService
) -> None:
    # Given a new source
    created = call(staff_request("POST", "/sources", body={"name": "app-ios", "kind": "ios", "description": "iOS"}))
    assert created.status == 201
    source_id, key = created.body["source_id"], created.body["write_key"]
    assert key.startswith("wk_")
    assert created.body["key_prefix"] == key[:10]
    # Then reading it back never shows the key
    listed = call(staff_request("GET", "/sources"))
    one = call(staff_request("GET", "/sources/{source_id}", path_parameters={"source_id": source_id}))
    assert "write_key" not in listed.body["items"][0]
    assert (one.status, one.body["name"], one.body["description"]) == (200, "app-ios", "iOS")
    assert "write_key" not in one.body
    # When its key is rotated
    rotated = call(staff_request("POST", "/sources/{source_id}/rotate-key", path_parameters={"source_id": source_id}))
    assert rotated.status == 200
    assert rotated.body["write_key"] != key
    assert rotated.body["previous_key_valid_until"] == "2026-11-24T10:15:31Z"
    # Then both keys are accepted for now
    for k in (key, rotated.body["write_key"]):
        assert call(tracking_request("/v1/identify", {"userId": "u-1"}, write_key=k)).status == 200


def test_source_problems(call: Any, write_key: str) -> None:
    assert_problem(call(staff_request("POST", "/sources", body={"name": "shop-web"})), 409)
    assert_problem(call(staff_request("POST", "/sources", body={"name": "Shop Web!"})), 422)
    missing = call(
        staff_request("GET", "/sources/{source_id}", path_parameters={"source_id": "src_01JDQ6V5XW3C9ZKDT8M0A4N2PZ"})
    )
    assert_problem(missing, 404)
    assert_problem(call(staff_request("GET", "/sources/{source_id}", path_parameters={"source_id": "nope"})), 422)


def test_the_resolver_serves_every_tracking_path_and_the_source_routes() -> None:
    served = {(r.method.upper(), r.path) for r in [*api.app._static_routes, *api.app._dynamic_routes]}
    assert served == {
        *(("POST", f"/v1/{path}") for path in TRACKING_PATHS),
        ("POST", "/sources"),
        ("GET", "/sources"),
        ("GET", "/sources/<source_id>"),
        ("PATCH", "/sources/<source_id>"),
        ("POST", "/sources/<source_id>/rotate-key"),
    }
    assert "/v1/track" in api.app.openapi_document()["paths"]
