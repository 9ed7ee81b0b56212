"""The collection table on moto: write keys by hash, rotation grace, names, and dedupe markers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from ecrm.collect import logic
from ecrm.collect.models import SourceIn, SourcePatch
from ecrm.collect.service import CollectService, WriteKeyRejected
from ecrm.collect.store import ClaimOutcome, CollectStore
from ecrm.core.clock import FixedClock
from ecrm.core.errors import Conflict, Forbidden

from tests.integration.collect.conftest import NOW, TABLE

WEEK = timedelta(days=7)
LEASE = timedelta(seconds=60)


def everything(dynamodb: Any) -> str:
    return str(dynamodb.scan(TableName=TABLE)["Items"])


def test_a_write_key_is_found_by_its_hash_and_is_never_stored(service: CollectService, store: CollectStore) -> None:
    # Given a new source
    created = service.create_source(SourceIn(name="shop-web", description="The shop", kind="web"))
    # Then its key is found by the hash, and nowhere in the table is the key itself
    match = store.find_by_write_key(logic.hash_write_key(created.write_key))
    assert match is not None
    assert match.source.source_id == created.source_id
    assert match.valid_until is None
    assert created.write_key not in everything(store.client)
    assert store.find_by_write_key(logic.hash_write_key("wk_unknown")) is None


def test_source_names_are_unique_and_sources_list_without_keys(service: CollectService) -> None:
    service.create_source(SourceIn(name="shop-web"))
    service.create_source(SourceIn(name="app-ios", kind="ios"))
    with pytest.raises(Conflict):
        service.create_source(SourceIn(name="shop-web"))
    listed = service.list_sources()
    assert [s.name for s in listed] == ["app-ios", "shop-web"]
    assert all("write_key" not in s.model_dump() for s in listed)


def test_a_source_saved_from_a_stale_read_is_a_conflict(service: CollectService, store: CollectStore) -> None:
    created = service.create_source(SourceIn(name="shop-web"))
    stale = store.get_source(created.source_id)
    assert stale is not None
    store.save_source(stale, stale.source.model_copy(update={"description": "first"}))
    with pytest.raises(Conflict):
        store.save_source(stale, stale.source.model_copy(update={"description": "second"}))
    assert service.get_source(created.source_id).description == "first"


def test_a_rotated_key_keeps_working_for_24_hours_then_stops(
    service: CollectService, store: CollectStore, clock: FixedClock
) -> None:
    # Given a source whose key was rotated
    created = service.create_source(SourceIn(name="shop-web"))
    rotated = service.rotate_key(created.source_id)
    # Then the table knows the new key, and the old one until 24 hours from now (and expires it then)
    old = store.find_by_write_key(logic.hash_write_key(created.write_key))
    assert old is not None
    assert old.valid_until == NOW + timedelta(hours=24)
    old_item = store.client.get_item(
        TableName=TABLE,
        Key={"pk": {"S": f"WRITEKEY#{logic.hash_write_key(created.write_key)}"}, "sk": {"S": "WRITEKEY"}},
    )["Item"]
    assert int(old_item["expires_at"]["N"]) == int((NOW + timedelta(hours=24)).timestamp())
    assert service.authenticate(rotated.write_key).source.key_prefix == rotated.write_key[:10]
    assert service.authenticate(created.write_key).source.source_id == created.source_id
    # When a day has passed (and the cached lookup has expired), Then the old key is refused
    clock.advance(hours=24)
    with pytest.raises(WriteKeyRejected):
        service.authenticate(created.write_key)
    service.authenticate(rotated.write_key)


def test_rotating_twice_revokes_the_oldest_key_at_once(service: CollectService, store: CollectStore) -> None:
    created = service.create_source(SourceIn(name="shop-web"))
    first = service.rotate_key(created.source_id)
    service.rotate_key(created.source_id)
    assert store.find_by_write_key(logic.hash_write_key(created.write_key)) is None
    assert store.find_by_write_key(logic.hash_write_key(first.write_key)) is not None
    assert service.get_source(created.source_id).rotated_at == NOW


def test_a_disabled_source_is_refused_and_its_key_still_known(service: CollectService) -> None:
    created = service.create_source(SourceIn(name="shop-web"))
    service.authenticate(created.write_key)
    disabled = service.update_source(created.source_id, SourcePatch(enabled=False, description="paused"))
    assert (disabled.enabled, disabled.description) == (False, "paused")
    with pytest.raises(Forbidden):
        service.authenticate(created.write_key)
    assert service.list_sources()[0].enabled is False


# -- dedupe markers -----------------------------------------------------------------------------------
def claim(store: CollectStore, ids: list[str], token: str = "t1", now: Any = NOW) -> dict[str, ClaimOutcome]:
    return store.claim_messages("src_1", ids, token=token, now=now, lease_until=now + LEASE, expires_at=now + WEEK)


def test_a_claim_is_taken_once_and_reads_as_in_flight_then_duplicate(store: CollectStore) -> None:
    # Given m1 claimed
    assert claim(store, ["m1"]) == {"m1": ClaimOutcome.CLAIMED}
    # Then another request sees it in flight, until it is confirmed; then it is a duplicate
    assert claim(store, ["m1"], token="t2") == {"m1": ClaimOutcome.IN_FLIGHT}
    store.confirm_messages("src_1", ["m1"], expires_at=NOW + WEEK)
    assert claim(store, ["m1"], token="t2") == {"m1": ClaimOutcome.DUPLICATE}


def test_a_claim_whose_lease_ran_out_is_taken_over(store: CollectStore) -> None:
    claim(store, ["m1"])
    assert claim(store, ["m1"], token="t2", now=NOW + LEASE - timedelta(seconds=1)) == {"m1": ClaimOutcome.IN_FLIGHT}
    assert claim(store, ["m1"], token="t2", now=NOW + LEASE) == {"m1": ClaimOutcome.CLAIMED}


def test_an_expired_marker_counts_as_absent_before_dynamodb_deletes_it(store: CollectStore) -> None:
    claim(store, ["m1"])
    store.confirm_messages("src_1", ["m1"], expires_at=NOW + WEEK)
    assert claim(store, ["m1"], token="t2", now=NOW + WEEK) == {"m1": ClaimOutcome.CLAIMED}


def test_only_the_claiming_request_can_release_its_claim(store: CollectStore) -> None:
    claim(store, ["m1", "m2"])
    store.release_messages("src_1", ["m1"], token="someone-else")
    store.release_messages("src_1", ["m2"], token="t1")
    assert claim(store, ["m1", "m2"], token="t2") == {"m1": ClaimOutcome.IN_FLIGHT, "m2": ClaimOutcome.CLAIMED}


def test_many_claims_run_in_parallel_and_confirm_in_batches(store: CollectStore) -> None:
    ids = [f"m{i:03d}" for i in range(60)]
    assert set(claim(store, ids).values()) == {ClaimOutcome.CLAIMED}
    store.confirm_messages("src_1", ids, expires_at=NOW + WEEK)
    again = claim(store, [*ids, "new"], token="t2")
    assert again.pop("new") is ClaimOutcome.CLAIMED
    assert set(again.values()) == {ClaimOutcome.DUPLICATE}


def test_markers_of_different_sources_are_separate(store: CollectStore) -> None:
    claim(store, ["m1"])
    other = store.claim_messages("src_2", ["m1"], token="t", now=NOW, lease_until=NOW + LEASE, expires_at=NOW + WEEK)
    assert other == {"m1": ClaimOutcome.CLAIMED}
