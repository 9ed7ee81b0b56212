"""The collection engine's part of an erasure: every lake row of the customer's tracked ids.

`collected_events` keeps no personal values (`ecrm.collect.lake_records.collected_event_record`), but each row is
keyed by the ids tracking knew the customer by: their user id in each source's namespace and the
anonymous ids linked to them. The erasure request carries those ids (the customer store erases
its identities concurrently), and this service deletes the rows that carry any of them from the
lake, by copy-on-write through Athena (`ecrm.core.lake.LakeRowEraser`), then acknowledges.

Order and redelivery: the request reaches this engine's queue after the lake stream's buffering
interval and a margin (the queue's delivery delay), so every call accepted before the request is
in S3 by then. Erasing is idempotent, so a redelivered request finds nothing more and acknowledges
again, which the customer store takes as a repeat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ecrm.collect.models import CollectDataErased
from ecrm.core.clock import Clock
from ecrm.core.erasure import CustomerErasureRequested, TrackedIds
from ecrm.core.lake import COLLECTED_EVENT_COLUMNS, COLLECTED_EVENTS, sql_in_list

ENGINE = "collect"


class RowEraser(Protocol):
    def erase(self, table: str, columns: Sequence[tuple[str, str]], predicate: str, *, job_id: str) -> int: ...


class Publisher(Protocol):
    def publish_all(self, events: Sequence[Any], *, correlation_id: str | None = None) -> Any: ...


def tracked_rows_predicate(ids: TrackedIds) -> str | None:
    """SQL selecting the collected events of these ids (None: no id, nothing to select).

    A user id counts only in the namespace it was given in (`source_name`): `u-7` of one site is not
    `u-7` of another. Values are compared trimmed, as identity resolution stored them.
    """
    terms = []
    if ids.anonymous_ids:
        terms.append(f"trim(anonymous_id) IN {sql_in_list(ids.anonymous_ids)}")
    for source, user_ids in sorted(ids.user_ids.items()):
        if user_ids:
            terms.append(f"(source_name = {sql_in_list([source])[1:-1]} AND trim(user_id) IN {sql_in_list(user_ids)})")
    return " OR ".join(terms) if terms else None


@dataclass
class CollectErasure:
    eraser: RowEraser
    publisher: Publisher
    clock: Clock

    def erase(self, request: CustomerErasureRequested) -> int:
        """Delete the lake rows of the request's tracked ids; returns how many were erased."""
        predicate = tracked_rows_predicate(request.tracked_ids)
        if predicate is None:
            return 0
        return self.eraser.erase(COLLECTED_EVENTS, COLLECTED_EVENT_COLUMNS, predicate, job_id=request.request_id)

    def acknowledge(self, request: CustomerErasureRequested, *, correlation_id: str | None = None) -> None:
        ack = CollectDataErased(request_id=request.request_id, engine=ENGINE, erased_at=self.clock.now())
        self.publisher.publish_all([ack], correlation_id=correlation_id)
