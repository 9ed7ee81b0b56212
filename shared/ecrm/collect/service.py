"""The collection engine's use cases: sources and their write keys, and ingesting tracking calls.

Ingestion, and why in this order (never lose an accepted event, do not publish one twice):

1. claim: one conditional write per message id, `MSG#<source>#<message>` in state `pending` with a
   lease of 60 s and the request's own token. A marker that is `published` makes the message a
   duplicate (counted, not published again); one that is `pending` under a live lease belongs to a
   request still running, so this request answers 503 and the client retries after it.
2. lake, then bus: each claimed event is appended to the lake stream, then put on the bus as its
   domain event (batches of 10). The lake comes first because it is an append-only log whose
   readers dedupe by `message_id` anyway (Firehose itself delivers at least once), while a second
   copy on the bus would run every consumer twice. An event the lake refused is not put on the bus.
3. confirm: the markers of delivered events become `published` (batched writes). If this fails the
   events are out and the answer is still 200; their markers only stay `pending`, which makes a
   later copy wait for the lease and then publish again: at least once, never lost.
4. on failure of step 2 the markers of the events that did not get through are released (deleted,
   if still ours) and the request answers 503 with `Retry-After`; every SDK retries a 503 with the
   whole batch, whose delivered part is then counted as duplicates.

A request that dies between 1 and 4 (timeout, crash) leaves `pending` markers: the lease runs out
and the client's retry claims them again. The lease must outlast the function's timeout.
Messages without a `messageId` get a generated one, so they cannot be deduplicated across retries.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from ecrm.collect import logic
from ecrm.collect.logic import IncomingMessage
from ecrm.collect.models import (
    EVENT_FOR_TYPE,
    CollectedEvent,
    IngestResult,
    Rejection,
    Source,
    SourceIn,
    SourcePatch,
    SourceWithKey,
)
from ecrm.collect.store import ClaimOutcome, KeyMatch, StoredSource
from ecrm.core.clock import Clock
from ecrm.core.errors import Forbidden, NotFound, ServiceUnavailable, Unauthorized
from ecrm.core.events import DomainEvent
from ecrm.core.ids import new_id
from ecrm.core.publisher import EventsNotPublished

logger = logging.getLogger(__name__)

DEDUPE_WINDOW = timedelta(days=7)
CLAIM_LEASE = timedelta(seconds=60)
PREVIOUS_KEY_GRACE = timedelta(hours=24)
KEY_CACHE_TTL = timedelta(seconds=60)
KEY_CACHE_SIZE = 1024
BUS_BATCH = 10
RETRY_AFTER_SECONDS = 2


class Publisher(Protocol):
    """What the service needs of an event publisher (`EventPublisher.publish_all`)."""

    def publish_all(self, events: Sequence[DomainEvent], *, correlation_id: str | None = None) -> Any: ...


class CollectRepository(Protocol):
    """What the service needs of the table (`ecrm.collect.store.CollectStore`)."""

    def create_source(self, source: Source, key_hash: str, identity_secret: str | None = None) -> None: ...
    def get_source(self, source_id: str) -> StoredSource | None: ...
    def list_sources(self) -> list[Source]: ...
    def save_source(self, stored: StoredSource, updated: Source) -> StoredSource: ...
    def rotate_key(
        self, stored: StoredSource, updated: Source, new_key_hash: str, previous_valid_until: datetime
    ) -> StoredSource: ...
    def find_by_write_key(self, key_hash: str) -> KeyMatch | None: ...
    def claim_messages(
        self,
        source_id: str,
        message_ids: Sequence[str],
        *,
        token: str,
        now: datetime,
        lease_until: datetime,
        expires_at: datetime,
    ) -> dict[str, ClaimOutcome]: ...
    def confirm_messages(self, source_id: str, message_ids: Sequence[str], *, expires_at: datetime) -> None: ...
    def release_messages(self, source_id: str, message_ids: Sequence[str], *, token: str) -> None: ...


class LakeWriter(Protocol):
    """Appends collected events to the data lake."""

    def write(self, events: Sequence[CollectedEvent]) -> list[CollectedEvent]:
        """Write what can be written; return the events that could not be, after retries."""
        ...


class NoLake:
    """The lake writer of a deployment without a lake stream."""

    def write(self, events: Sequence[CollectedEvent]) -> list[CollectedEvent]:
        return []


class WriteKeyRejected(Unauthorized):
    """No write key, or one that matches no source: answered with a Basic auth challenge."""

    challenge = 'Basic realm="ecrm"'


class IngestUnavailable(ServiceUnavailable):
    """Some events could not be stored; the client should send the request again."""

    retry_after_seconds = RETRY_AFTER_SECONDS


@dataclass(frozen=True)
class Caller:
    """Who sent a tracking request: an enabled source, and the secret its user ids are signed with."""

    source: Source
    identity_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class _CachedKey:
    match: KeyMatch | None
    cached_at: datetime


class WriteKeyCache:
    """Write-key hash -> its source, for `ttl`, in the function's memory.

    Ingestion is the busiest path; without this every call would cost two reads. Unknown keys are
    cached too, so a client with a wrong key does not turn into a read per request. Changes to a
    source (disable, rotation) therefore reach every running function within `ttl`.
    """

    def __init__(self, ttl: timedelta = KEY_CACHE_TTL, max_entries: int = KEY_CACHE_SIZE) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, _CachedKey] = {}

    def get(self, key_hash: str, now: datetime) -> _CachedKey | None:
        entry = self._entries.get(key_hash)
        if entry is None or now - entry.cached_at >= self.ttl:
            return None
        return entry

    def put(self, key_hash: str, match: KeyMatch | None, now: datetime) -> None:
        if key_hash not in self._entries and len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))  # the oldest insertion
        self._entries.pop(key_hash, None)
        self._entries[key_hash] = _CachedKey(match, now)

    def clear(self) -> None:
        self._entries.clear()


@dataclass
class CollectService:
    store: CollectRepository
    publisher: Publisher
    lake: LakeWriter
    clock: Clock
    keys: WriteKeyCache = field(default_factory=WriteKeyCache)

    # -- sources --------------------------------------------------------------------------------
    def create_source(self, body: SourceIn) -> SourceWithKey:
        """A source and its write key; a client source also gets the secret its backend signs user ids with."""
        write_key = logic.new_write_key()
        source = logic.new_source(body, write_key, self.clock.now())
        identity_secret = None if source.trusted else logic.new_identity_secret()
        self.store.create_source(source, logic.hash_write_key(write_key), identity_secret)
        return SourceWithKey(**source.model_dump(), write_key=write_key, identity_secret=identity_secret)

    def list_sources(self) -> list[Source]:
        return self.store.list_sources()

    def get_source(self, source_id: str) -> Source:
        return self._stored(source_id).source

    def update_source(self, source_id: str, patch: SourcePatch) -> Source:
        stored = self._stored(source_id)
        changes = patch.model_dump(exclude_none=True)
        updated = stored.source.model_copy(update=changes)
        if updated == stored.source:
            return updated
        self.store.save_source(stored, updated)
        self.keys.clear()
        return updated

    def rotate_key(self, source_id: str) -> SourceWithKey:
        """A new write key; the current one keeps working for 24 hours, any older one stops now."""
        stored = self._stored(source_id)
        now = self.clock.now()
        write_key = logic.new_write_key()
        previous_valid_until = now + PREVIOUS_KEY_GRACE
        updated = stored.source.model_copy(update={"key_prefix": logic.key_prefix(write_key), "rotated_at": now})
        self.store.rotate_key(stored, updated, logic.hash_write_key(write_key), previous_valid_until)
        self.keys.clear()
        return SourceWithKey(**updated.model_dump(), write_key=write_key, previous_key_valid_until=previous_valid_until)

    def _stored(self, source_id: str) -> StoredSource:
        stored = self.store.get_source(source_id)
        if stored is None:
            raise NotFound(f"source {source_id} does not exist")
        return stored

    # -- ingestion ------------------------------------------------------------------------------
    def authenticate(self, write_key: str | None) -> Caller:
        """The enabled source a write key belongs to; 401 for none or an unknown key, 403 if disabled."""
        if not write_key:
            raise WriteKeyRejected("a write key is required: send it as the username of HTTP Basic auth")
        now = self.clock.now()
        key_hash = logic.hash_write_key(write_key)
        cached = self.keys.get(key_hash, now)
        if cached is None:
            match = self.store.find_by_write_key(key_hash) if write_key.startswith(logic.WRITE_KEY_PREFIX) else None
            self.keys.put(key_hash, match, now)
        else:
            match = cached.match
        if match is None or not match.valid_at(now):
            raise WriteKeyRejected("the write key is not valid")
        if not match.source.enabled:
            raise Forbidden(f"source {match.source.name} is disabled")
        return Caller(match.source, match.identity_secret)

    def ingest(
        self,
        caller: Caller,
        messages: Sequence[IncomingMessage],
        rejections: Sequence[Rejection] = (),
        *,
        correlation_id: str | None = None,
    ) -> IngestResult:
        """Accept the valid messages of one request, once each; see the module docstring."""
        now = self.clock.now()
        source = caller.source
        events, repeated = logic.first_occurrences(
            logic.collected_event(m.message, source, now, identity_secret=caller.identity_secret) for m in messages
        )
        token = new_id("clm_")
        expires_at = now + DEDUPE_WINDOW
        outcomes = self._claim(source, events, token, now, expires_at)
        claimed = [e for e in events if outcomes[e.message_id] is ClaimOutcome.CLAIMED]
        duplicates = repeated + sum(1 for o in outcomes.values() if o is ClaimOutcome.DUPLICATE)
        in_flight = sum(1 for o in outcomes.values() if o is ClaimOutcome.IN_FLIGHT)
        try:
            failed = self._deliver(claimed, correlation_id)
        except Exception:
            self._release(source, claimed, token)
            raise
        failed_ids = {e.message_id for e in failed}
        delivered = [e for e in claimed if e.message_id not in failed_ids]
        self._confirm(source, delivered, expires_at)
        if failed:
            self._release(source, failed, token)
            raise IngestUnavailable(
                f"{len(failed)} of {len(claimed)} event(s) could not be stored; send the request again",
                accepted=len(delivered),
                duplicates=duplicates,
            )
        if in_flight:
            raise IngestUnavailable(
                f"{in_flight} message(s) with the same messageId are being stored by another request; "
                "send the request again",
                accepted=len(delivered),
                duplicates=duplicates,
            )
        success = bool(delivered) or duplicates > 0 or not rejections
        return IngestResult(success=success, accepted=len(delivered), duplicates=duplicates, rejected=list(rejections))

    def _claim(
        self, source: Source, events: Sequence[CollectedEvent], token: str, now: datetime, expires_at: datetime
    ) -> dict[str, ClaimOutcome]:
        message_ids = [e.message_id for e in events]
        try:
            return self.store.claim_messages(
                source.source_id,
                message_ids,
                token=token,
                now=now,
                lease_until=now + CLAIM_LEASE,
                expires_at=expires_at,
            )
        except (ClientError, BotoCoreError) as exc:
            logger.exception("claiming messages failed")
            self._release(source, events, token)
            raise IngestUnavailable("the dedupe table is unavailable; send the request again") from exc

    def _deliver(self, events: Sequence[CollectedEvent], correlation_id: str | None) -> list[CollectedEvent]:
        """Lake, then bus; the events that did not reach both."""
        if not events:
            return []
        refused = self.lake.write(events)
        refused_ids = {e.message_id for e in refused}
        return [*refused, *self._publish([e for e in events if e.message_id not in refused_ids], correlation_id)]

    def _publish(self, events: Sequence[CollectedEvent], correlation_id: str | None) -> list[CollectedEvent]:
        """Put events on the bus 10 at a time; at the first failure, the rest is not tried."""
        for start in range(0, len(events), BUS_BATCH):
            chunk = events[start : start + BUS_BATCH]
            domain = [EVENT_FOR_TYPE[e.type](message=e) for e in chunk]
            try:
                self.publisher.publish_all(domain, correlation_id=correlation_id)
            except EventsNotPublished as exc:
                failed = {id(f.event) for f in exc.receipt.failed}
                logger.warning("the bus refused %d event(s): %s", len(failed), exc.detail)
                return [e for e, d in zip(chunk, domain, strict=True) if id(d) in failed] + list(
                    events[start + BUS_BATCH :]
                )
            except (ClientError, BotoCoreError):
                logger.exception("publishing to the bus failed")
                return list(events[start:])
        return []

    def _confirm(self, source: Source, events: Sequence[CollectedEvent], expires_at: datetime) -> None:
        if not events:
            return
        try:
            self.store.confirm_messages(source.source_id, [e.message_id for e in events], expires_at=expires_at)
        except (ClientError, BotoCoreError, RuntimeError):
            # Delivered all the same: the markers stay pending and a late copy waits out the lease.
            logger.exception("confirming %d dedupe marker(s) failed", len(events))

    def _release(self, source: Source, events: Sequence[CollectedEvent], token: str) -> None:
        if not events:
            return
        try:
            self.store.release_messages(source.source_id, [e.message_id for e in events], token=token)
        except (ClientError, BotoCoreError):
            # The claims then lapse with their lease, after which a retry claims them again.
            logger.exception("releasing %d dedupe marker(s) failed", len(events))
