"""Segmentation's lake part of an erasure: the customer's rows of `segment_profiles` and `behaviour_events`.

Those rows are keyed by customer id and hold quasi-identifiers (birth date, postal code, city,
gender) and the customer's orders and interactions: personal data for as long as they exist, tombstone
or not. Once the lake streams' buffering has passed (the queue's delivery delay), the rows of every
id of the request are deleted by copy-on-write through Athena (`ecrm.core.lake.LakeRowEraser`), the
tombstone row the projection wrote included, and only then does segmentation acknowledge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ecrm.analysis.models import AnalysisDataErased
from ecrm.analysis.segment_sql import BEHAVIOUR_EVENTS, SEGMENT_PROFILES, lake_table_columns
from ecrm.core.clock import Clock
from ecrm.core.erasure import CustomerErasureRequested
from ecrm.core.lake import sql_in_list

ENGINE = "analysis"


class RowEraser(Protocol):
    def erase(self, table: str, columns: Sequence[tuple[str, str]], predicate: str, *, job_id: str) -> int: ...


class Publisher(Protocol):
    def publish_all(self, events: Sequence[Any], *, correlation_id: str | None = None) -> Any: ...


@dataclass
class AnalysisLakeErasure:
    eraser: RowEraser
    publisher: Publisher
    clock: Clock

    def erase(self, request: CustomerErasureRequested) -> int:
        """Delete the rows of the request's customer ids from both lake tables; returns how many."""
        ids = sorted({request.customer_id, *request.customer_ids})
        predicate = f"customer_id IN {sql_in_list(ids)}"
        columns = lake_table_columns()
        return sum(
            self.eraser.erase(table, columns[table], predicate, job_id=request.request_id)
            for table in (SEGMENT_PROFILES, BEHAVIOUR_EVENTS)
        )

    def acknowledge(self, request: CustomerErasureRequested, *, correlation_id: str | None = None) -> None:
        ack = AnalysisDataErased(request_id=request.request_id, engine=ENGINE, erased_at=self.clock.now())
        self.publisher.publish_all([ack], correlation_id=correlation_id)
