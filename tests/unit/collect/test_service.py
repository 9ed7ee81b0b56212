"""Ingestion and sources with in-memory fakes: auth, dedupe, publishing order and failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from ecrm.collect import logic
from ecrm.collect.logic import IncomingMessage
from ecrm.collect.models import EVENT_FOR_TYPE, Message, Rejection, SourceIn, SourcePatch, SourceWithKey
from ecrm.collect.service import CLAIM_LEASE, CollectService, IngestUnavailable, WriteKeyRejected
from ecrm.core.clock import FixedClock
from ecrm.core.errors import Forbidden, NotFound
from ecrm.core.publisher import EventPublisher

from tests.unit.collect.fakes import FakeCollectStore, FakeLake
from tests.unit.fakes import FakeEventsClient

NOW = datetime(2026, 11, 23, 10, 15, 31, tzinfo=UTC)


class Harness:
    def __init__(self, events_client: FakeEventsClient | None = None) -> None:
        self.clock = FixedClock(NOW)
        self.store = FakeCollectStore()
        self.lake = FakeLake()
        self.bus = events_client or FakeEventsClient()
        publisher = EventPublisher("ecrm", self.bus, sleep=lambda _: None, clock=self.clock)
        self.service = CollectService(self.store, publisher, self.lake, self.clock)
        self.source = self.service.create_source(SourceIn(name="shop-web", kind="web"))

    def ingest(self, *messages: dict[str, Any], rejections: list[Rejection] | None = None) -> Any:
        incoming = [IncomingMessage(i, Message.model_validate(m)) for i, m in enumerate(messages)]
        caller = self.service.authenticate(self.source.write_key)
        return self.service.ingest(caller, incoming, rejections or [], correlation_id="cor-test")

    def published_ids(self) -> list[str]:
        return [d["data"]["message"]["message_id"] for d in self.bus.accepted_details()]


def track(message_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": "track", "userId": "u1", "event": "Product Viewed", "messageId": message_id, **fields}


@pytest.fixture
def h() -> Harness:
    return Harness()


# -- write keys ------------------------------------------------------------------------------------
def test_a_new_source_shows_its_key_once_and_the_key_authenticates(h: Harness) -> None:
    assert isinstance(h.source, SourceWithKey)
    assert h.source.key_prefix == h.source.write_key[:10]
    assert h.source.write_key not in str(h.store.sources)  # only the hash is kept
    assert h.service.authenticate(h.source.write_key).source.source_id == h.source.source_id


@pytest.mark.parametrize("key", [None, "", "wk_unknown", "not-even-a-write-key"])
def test_a_missing_or_unknown_key_is_401_with_a_challenge(h: Harness, key: str | None) -> None:
    with pytest.raises(WriteKeyRejected) as raised:
        h.service.authenticate(key)
    assert raised.value.status == 401
    assert raised.value.challenge == 'Basic realm="ecrm"'


def test_a_disabled_source_is_403_and_enabled_again_it_works(h: Harness) -> None:
    h.service.update_source(h.source.source_id, SourcePatch(enabled=False))
    with pytest.raises(Forbidden):
        h.service.authenticate(h.source.write_key)
    h.service.update_source(h.source.source_id, SourcePatch(enabled=True))
    assert h.service.authenticate(h.source.write_key).source.enabled


def test_key_lookups_are_cached_for_60_seconds_known_or_not(h: Harness) -> None:
    # Given a key used many times within a minute, and an unknown key tried twice
    for _ in range(5):
        h.service.authenticate(h.source.write_key)
    for _ in range(2):
        with pytest.raises(WriteKeyRejected):
            h.service.authenticate("wk_wrong")
    # Then each was looked up once
    assert h.store.key_lookups == 2
    # When a minute has passed, Then the next use looks the key up again
    h.clock.advance(seconds=60)
    h.service.authenticate(h.source.write_key)
    assert h.store.key_lookups == 3


def test_a_disable_in_another_function_reaches_this_one_within_the_cache_ttl(h: Harness) -> None:
    # Given a key cached here, and the source disabled elsewhere (straight in the table)
    h.service.authenticate(h.source.write_key)
    stored = h.store.sources[h.source.source_id]
    h.store.save_source(stored, stored.source.model_copy(update={"enabled": False}))
    # Then it still works until the cached entry is 60 s old, and is 403 after
    h.clock.advance(seconds=59)
    h.service.authenticate(h.source.write_key)
    h.clock.advance(seconds=1)
    with pytest.raises(Forbidden):
        h.service.authenticate(h.source.write_key)


def test_a_rotated_key_works_24_hours_more_and_a_second_rotation_revokes_it(h: Harness) -> None:
    # Given a rotation
    old_key = h.source.write_key
    rotated = h.service.rotate_key(h.source.source_id)
    # Then the new key works, and so does the old one, until 24 hours from now
    assert rotated.write_key != old_key
    assert rotated.previous_key_valid_until == NOW + timedelta(hours=24)
    assert rotated.rotated_at == NOW
    assert rotated.key_prefix == rotated.write_key[:10]
    h.service.authenticate(rotated.write_key)
    h.clock.advance(hours=23, minutes=59)
    h.service.authenticate(old_key)
    h.clock.advance(minutes=1)
    with pytest.raises(WriteKeyRejected):
        h.service.authenticate(old_key)
    # When the key is rotated twice, Then the key before the previous one stops at once
    second = h.service.rotate_key(h.source.source_id)
    third = h.service.rotate_key(h.source.source_id)
    with pytest.raises(WriteKeyRejected):
        h.service.authenticate(rotated.write_key)
    h.service.authenticate(second.write_key)
    h.service.authenticate(third.write_key)


def test_an_unknown_source_is_404(h: Harness) -> None:
    with pytest.raises(NotFound):
        h.service.get_source("src_01JDQ6V5XW3C9ZKDT8M0A4N2PZ")


# -- ingestion ---------------------------------------------------------------------------------------
def test_each_accepted_message_goes_to_the_lake_and_on_the_bus_as_its_domain_event(h: Harness) -> None:
    # Given one message of each type
    messages = [
        {"type": "identify", "userId": "u1", "traits": {"email": "a@example.com"}, "messageId": "m1"},
        track("m2"),
        {"type": "page", "anonymousId": "a1", "name": "Home", "messageId": "m3"},
        {"type": "screen", "anonymousId": "a1", "name": "Cart", "messageId": "m4"},
        {"type": "group", "userId": "u1", "groupId": "g1", "messageId": "m5"},
        {"type": "alias", "userId": "u1", "previousId": "a1", "messageId": "m6"},
    ]
    # When they are ingested
    result = h.ingest(*messages)
    # Then all are accepted, in the lake and on the bus, each as the event of its type
    assert (result.success, result.accepted, result.duplicates) == (True, 6, 0)
    assert [e.message_id for e in h.lake.written] == ["m1", "m2", "m3", "m4", "m5", "m6"]
    assert [e["DetailType"] for e in h.bus.accepted] == [EVENT_FOR_TYPE[m["type"]].detail_type for m in messages]
    assert {e["Source"] for e in h.bus.accepted} == {"ecrm.collect"}
    detail = h.bus.accepted_details()[0]
    assert detail["metadata"]["correlation_id"] == "cor-test"
    assert detail["data"]["message"]["source_name"] == "shop-web"
    # And their markers say published
    assert set(h.store.states(h.source.source_id).values()) == {"published"}


def test_events_go_on_the_bus_ten_at_a_time(h: Harness) -> None:
    h.ingest(*(track(f"m{i}") for i in range(25)))
    assert [len(call) for call in h.bus.calls] == [10, 10, 5]
    assert h.lake.calls == 1


def test_a_repeated_message_id_is_a_duplicate_and_not_published_again(h: Harness) -> None:
    # Given a batch accepted once
    first = h.ingest(track("m1"), track("m2"))
    assert (first.accepted, first.duplicates) == (2, 0)
    # When the client sends it again with one new message, and a message twice in one request
    again = h.ingest(track("m1"), track("m2"), track("m3"), track("m3"))
    # Then only the new one is accepted, the rest counted as duplicates
    assert (again.success, again.accepted, again.duplicates) == (True, 1, 3)
    assert h.published_ids() == ["m1", "m2", "m3"]
    assert [e.message_id for e in h.lake.written] == ["m1", "m2", "m3"]


def test_the_dedupe_window_is_seven_days(h: Harness) -> None:
    h.ingest(track("m1"))
    h.clock.advance(days=7, seconds=-1)
    assert h.ingest(track("m1")).duplicates == 1
    h.clock.advance(seconds=1)
    assert h.ingest(track("m1")).accepted == 1


def test_the_same_message_id_from_another_source_is_not_a_duplicate(h: Harness) -> None:
    h.ingest(track("m1"))
    other = h.service.create_source(SourceIn(name="shop-ios", kind="ios"))
    caller = h.service.authenticate(other.write_key)
    result = h.service.ingest(caller, [IncomingMessage(0, Message.model_validate(track("m1")))])
    assert result.accepted == 1


def test_a_bus_failure_releases_the_markers_of_what_failed_and_is_503() -> None:
    # Given a bus that refuses every entry of the second PutEvents call
    h = Harness(FakeEventsClient(outcome=lambda call, index, entry: "AccessDeniedException" if call == 1 else None))
    # When 15 events are ingested
    with pytest.raises(IngestUnavailable) as raised:
        h.ingest(*(track(f"m{i:02d}") for i in range(15)))
    # Then the request is 503, saying to send it again
    assert raised.value.status == 503
    assert raised.value.extensions["accepted"] == 10
    # And the first ten are published and marked, the last five have no marker any more
    assert h.published_ids() == [f"m{i:02d}" for i in range(10)]
    assert h.store.states(h.source.source_id) == {f"m{i:02d}": "published" for i in range(10)}
    # When the client retries the whole batch and the bus is back
    h.bus.outcome = None
    retry = h.ingest(*(track(f"m{i:02d}") for i in range(15)))
    # Then the five are published now, the ten are duplicates: each event on the bus exactly once
    assert (retry.accepted, retry.duplicates) == (5, 10)
    assert sorted(h.published_ids()) == [f"m{i:02d}" for i in range(15)]


def test_a_throttled_entry_is_retried_by_the_publisher_and_the_request_succeeds() -> None:
    h = Harness(FakeEventsClient(script=[{3: "ThrottlingException"}]))
    result = h.ingest(*(track(f"m{i}") for i in range(5)))
    assert result.accepted == 5
    assert sorted(h.published_ids()) == [f"m{i}" for i in range(5)]


def test_a_bus_outage_releases_every_claim_and_is_503() -> None:
    class Down(FakeEventsClient):
        def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "InternalFailure", "Message": "down"}}, "PutEvents")

    h = Harness(Down())
    with pytest.raises(IngestUnavailable):
        h.ingest(track("m1"), track("m2"))
    assert h.store.states(h.source.source_id) == {}


def test_an_event_the_lake_refused_is_not_put_on_the_bus_and_is_released(h: Harness) -> None:
    # Given a lake that will not take m2
    h.lake.refuse = {"m2"}
    # When m1..m3 are ingested, Then 503, and m2 is neither on the bus nor marked
    with pytest.raises(IngestUnavailable):
        h.ingest(track("m1"), track("m2"), track("m3"))
    assert h.published_ids() == ["m1", "m3"]
    assert set(h.store.states(h.source.source_id)) == {"m1", "m3"}
    # When the retry finds the lake well, Then m2 is accepted once and the others are duplicates
    h.lake.refuse = set()
    retry = h.ingest(track("m1"), track("m2"), track("m3"))
    assert (retry.accepted, retry.duplicates) == (1, 2)
    assert h.published_ids() == ["m1", "m3", "m2"]


def test_an_unexpected_error_releases_the_claims_and_propagates(h: Harness) -> None:
    class Broken(FakeLake):
        def write(self, events: Any) -> Any:
            raise KeyError("bug")

    h.service.lake = Broken()
    with pytest.raises(KeyError):
        h.ingest(track("m1"))
    assert h.store.states(h.source.source_id) == {}


def test_a_message_claimed_by_a_running_request_is_503_until_its_lease_runs_out(h: Harness) -> None:
    # Given m1 claimed by another request that has not finished (or died)
    h.store.claim_messages(
        h.source.source_id,
        ["m1"],
        token="other",
        now=NOW,
        lease_until=NOW + CLAIM_LEASE,
        expires_at=NOW + timedelta(days=7),
    )
    # When the client sends m1 and m2 meanwhile, Then m2 is accepted but the answer is 503
    with pytest.raises(IngestUnavailable) as raised:
        h.ingest(track("m1"), track("m2"))
    assert raised.value.extensions == {"accepted": 1, "duplicates": 0}
    assert h.published_ids() == ["m2"]
    # When it retries after the lease, Then m1 is taken over and published: nothing lost
    h.clock.advance(seconds=CLAIM_LEASE.total_seconds())
    retry = h.ingest(track("m1"), track("m2"))
    assert (retry.accepted, retry.duplicates) == (1, 1)
    assert h.published_ids() == ["m2", "m1"]


def test_a_failed_confirmation_still_answers_200_the_events_being_out(h: Harness) -> None:
    h.store.confirm_fails = True
    result = h.ingest(track("m1"))
    assert (result.success, result.accepted) == (True, 1)
    assert h.published_ids() == ["m1"]


def test_success_is_false_only_when_nothing_was_accepted_nor_already_known(h: Harness) -> None:
    rejected = [Rejection(index=0, reason="event: missing")]
    assert h.ingest(rejections=rejected).success is False
    h.ingest(track("m1"))
    only_duplicates = h.ingest(track("m1"), rejections=rejected)
    assert (only_duplicates.success, only_duplicates.duplicates) == (True, 1)
    mixed = h.ingest(track("m2"), rejections=rejected)
    assert (mixed.success, mixed.accepted, len(mixed.rejected)) == (True, 1, 1)


def test_timestamps_are_normalised_with_the_servers_clock(h: Harness) -> None:
    h.ingest(track("m1", timestamp="2026-11-23T09:10:00Z", sentAt="2026-11-23T09:15:30Z"))
    event = h.lake.written[0]
    assert event.received_at == NOW
    assert event.timestamp == NOW - timedelta(minutes=5, seconds=30)


def test_messages_without_an_id_get_one_each(h: Harness) -> None:
    h.ingest({"type": "page", "anonymousId": "a1"}, {"type": "page", "anonymousId": "a1"})
    ids = h.published_ids()
    assert len(set(ids)) == 2
    assert all(i.startswith(logic.MESSAGE_ID_PREFIX) for i in ids)
