"""Segmentation's lake part of an erasure: the customer's rows of the lake tables it reads, keyed by customer id.

`segment_profiles` and `behaviour_events` (its own) hold quasi-identifiers (birth date, postal code, city,
gender) and the customer's orders and interactions; `order_lines` (written by the transactions engine) and
`message_outcomes` (written by broadcast) hold every order line and every message outcome of the customer:
personal data for as long as they exist, tombstone or not. Segmentation is the engine that queries the lake
through its Athena work group, so its eraser rewrites all four (the writers hold no Athena grant). Once the lake
streams' buffering has passed (the queue's delivery delay), the rows of every id of the request (a merged
customer's former ids included) are deleted by copy-on-write through Athena (`ecrm.core.lake.LakeRowEraser`),
the tombstone row the projection wrote included, and only then does segmentation acknowledge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ecrm.analysis.models import AnalysisDataErased
from ecrm.analysis.segment_sql import BEHAVIOUR_EVENTS, SEGMENT_PROFILES, lake_table_columns
from ecrm.core.clock import Clock
from ecrm.core.erasure import CustomerErasureRequested
from ecrm.core.lake import (
    MESSAGE_OUTCOME_COLUMNS,
    MESSAGE_OUTCOMES,
    ORDER_LINE_COLUMNS,
    ORDER_LINES,
    sql_in_list,
)

ENGINE = "analysis"
# The lake tables keyed by customer id whose rows an erasure deletes (the infrastructure grants the eraser these)
ERASED_TABLES = (SEGMENT_PROFILES, BEHAVIOUR_EVENTS, ORDER_LINES, MESSAGE_OUTCOMES)


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
        """Delete the rows of the request's customer ids from every lake table keyed by customer; returns how many."""
        ids = sorted({request.customer_id, *request.customer_ids})
        predicate = f"customer_id IN {sql_in_list(ids)}"
        columns = {**lake_table_columns(), ORDER_LINES: ORDER_LINE_COLUMNS, MESSAGE_OUTCOMES: MESSAGE_OUTCOME_COLUMNS}
        return sum(
            self.eraser.erase(table, columns[table], predicate, job_id=request.request_id) for table in ERASED_TABLES
        )

    def acknowledge(self, request: CustomerErasureRequested, *, correlation_id: str | None = None) -> None:
        ack = AnalysisDataErased(request_id=request.request_id, engine=ENGINE, erased_at=self.clock.now())
        self.publisher.publish_all([ack], correlation_id=correlation_id)
