"""In-memory doubles of the collection engine's collaborators: its table and its lake."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ecrm.collect.models import CollectedEvent, Source
from ecrm.collect.store import ClaimOutcome, KeyMatch, StoredSource
from ecrm.core.errors import Conflict


@dataclass
class Marker:
    state: str
    expires_at: datetime
    claim: str | None = None
    lease_until: datetime | None = None


@dataclass
class FakeCollectStore:
    """The table's rules (claims, leases, TTL, key grace) without DynamoDB; calls are recorded."""

    sources: dict[str, StoredSource] = field(default_factory=dict)
    keys: dict[str, tuple[str, datetime | None]] = field(default_factory=dict)
    markers: dict[tuple[str, str], Marker] = field(default_factory=dict)
    key_lookups: int = 0
    confirm_fails: bool = False

    def create_source(self, source: Source, key_hash: str, identity_secret: str | None = None) -> None:
        if any(s.source.name == source.name for s in self.sources.values()):
            raise Conflict(f"a source named {source.name!r} exists")
        self.sources[source.source_id] = StoredSource(source, key_hash, identity_secret=identity_secret)
        self.keys[key_hash] = (source.source_id, None)

    def get_source(self, source_id: str) -> StoredSource | None:
        return self.sources.get(source_id)

    def list_sources(self) -> list[Source]:
        return sorted((s.source for s in self.sources.values()), key=lambda s: s.name)

    def save_source(self, stored: StoredSource, updated: Source) -> StoredSource:
        saved = StoredSource(
            updated,
            stored.key_hash,
            stored.version + 1,
            stored.previous_key_hash,
            stored.previous_key_valid_until,
            stored.identity_secret,
        )
        self.sources[updated.source_id] = saved
        return saved

    def rotate_key(
        self, stored: StoredSource, updated: Source, new_key_hash: str, previous_valid_until: datetime
    ) -> StoredSource:
        if stored.previous_key_hash:
            self.keys.pop(stored.previous_key_hash, None)
        self.keys[stored.key_hash] = (updated.source_id, previous_valid_until)
        self.keys[new_key_hash] = (updated.source_id, None)
        rotated = StoredSource(
            updated, new_key_hash, stored.version + 1, stored.key_hash, previous_valid_until, stored.identity_secret
        )
        self.sources[updated.source_id] = rotated
        return rotated

    def find_by_write_key(self, key_hash: str) -> KeyMatch | None:
        self.key_lookups += 1
        found = self.keys.get(key_hash)
        if found is None:
            return None
        stored = self.sources[found[0]]
        return KeyMatch(stored.source, found[1], stored.identity_secret)

    def claim_messages(
        self,
        source_id: str,
        message_ids: Sequence[str],
        *,
        token: str,
        now: datetime,
        lease_until: datetime,
        expires_at: datetime,
    ) -> dict[str, ClaimOutcome]:
        outcomes = {}
        for message_id in message_ids:
            marker = self.markers.get((source_id, message_id))
            free = (
                marker is None
                or marker.expires_at <= now
                or (marker.state == "pending" and marker.lease_until is not None and marker.lease_until <= now)
            )
            if free:
                self.markers[(source_id, message_id)] = Marker("pending", expires_at, token, lease_until)
                outcomes[message_id] = ClaimOutcome.CLAIMED
            else:
                assert marker is not None
                outcomes[message_id] = ClaimOutcome.DUPLICATE if marker.state == "published" else ClaimOutcome.IN_FLIGHT
        return outcomes

    def confirm_messages(self, source_id: str, message_ids: Sequence[str], *, expires_at: datetime) -> None:
        if self.confirm_fails:
            raise RuntimeError("dedupe markers stayed unprocessed")
        for message_id in message_ids:
            self.markers[(source_id, message_id)] = Marker("published", expires_at)

    def release_messages(self, source_id: str, message_ids: Sequence[str], *, token: str) -> None:
        for message_id in message_ids:
            marker = self.markers.get((source_id, message_id))
            if marker is not None and marker.claim == token:
                del self.markers[(source_id, message_id)]

    def states(self, source_id: str) -> dict[str, str]:
        return {m: marker.state for (s, m), marker in self.markers.items() if s == source_id}


@dataclass
class FakeLake:
    """A lake that keeps what it is given; `refuse` names message ids it will not take."""

    written: list[CollectedEvent] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    calls: int = 0

    def write(self, events: Sequence[CollectedEvent]) -> list[CollectedEvent]:
        self.calls += 1
        refused = [e for e in events if e.message_id in self.refuse]
        self.written.extend(e for e in events if e.message_id not in self.refuse)
        return refused
