"""The chunk step of an orders import: each order's customer resolved, then the order handed to the transactions
engine through the outbox (`OrderImportRequested`), which places it (ADR 13).

Key design (the customer table): `ORDERREF#<sha-256 of source and order_ref>` / `ORDERREF` is the order an
import handed over under that reference: the `fingerprint` of its content (`OrderDraft.fingerprint`), the
`import_id` and the `order_ref`, kept for good (a reference and a hash, no personal data);
`ORDERREF#...` / `OUTBOX` holds its event (`ecrm.core.outbox`).

One transaction per order writes the reference, the chunk's progress (past the order's rows, with its counts)
and the event. So:
- a chunk retried, or resumed after its worker died, starts after the last order handed over: none twice;
- a file imported again finds each reference with the same fingerprint: its rows are `unchanged`;
- the same reference with another content is what the API answers 422 for (an Idempotency-Key reused with
  another body): its rows are in the error report, nothing is handed over;
- the transactions engine places each order under a key of (source, order_ref) it keeps for good, so a
  redelivered event replays the order instead of placing it again.
A placement the transactions engine still fails (it checks again what was checked here) is retried by its
queue, then kept in the queue's dead-letter queue, from which `ecrm redrive` sends it again: never lost.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from ecrm.core.errors import ServiceUnavailable
from ecrm.core.outbox import Outbox
from ecrm.customers.imports import SourceRow
from ecrm.customers.models import CustomerUpsert, ImportRequest, OrderImportRequested, UpsertResult
from ecrm.customers.order_imports import OrderDraft, OrderRejected, group_orders, read_order
from ecrm.customers.service import CustomerService

if TYPE_CHECKING:
    from ecrm.customers.import_jobs import ChunkProgress

REF_SK = "ORDERREF"
_SERIALIZE = TypeSerializer().serialize


def order_ref_pk(source: str, order_ref: str) -> str:
    return "ORDERREF#" + hashlib.sha256(f"{source}\n{order_ref}".encode()).hexdigest()


@dataclass(frozen=True)
class HandedOver:
    fingerprint: str
    import_id: str


class ReferenceTaken(Exception):
    """Another import (or another chunk of this one) handed an order over under the reference first."""


class OrderReferences:
    """The references handed over, each written with its event and the chunk's progress."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name
        self.outbox = Outbox(table_name)

    def get(self, ref_pk: str) -> HandedOver | None:
        item = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": ref_pk}, "sk": {"S": REF_SK}}, ConsistentRead=True
        ).get("Item")
        return None if item is None else HandedOver(item["fingerprint"]["S"], item["import_id"]["S"])

    def hand_over(
        self, ref_pk: str, fingerprint: str, event: OrderImportRequested, progress: dict[str, Any], now: datetime
    ) -> None:
        """The reference, the event and the chunk's progress in one transaction; `ReferenceTaken` if it was."""
        reference = {
            "pk": ref_pk,
            "sk": REF_SK,
            "fingerprint": fingerprint,
            "import_id": event.import_id,
            "order_ref": event.order_ref,
        }
        actions = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": _dynamo(reference),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {"Put": {"TableName": self.table, "Item": _dynamo(progress)}},
            self.outbox.put(ref_pk, [event], correlation_id=event.import_id, now=now),
        ]
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as exc:
            reasons = exc.response.get("CancellationReasons") or []
            if reasons and reasons[0].get("Code") in {"ConditionalCheckFailed", "TransactionConflict"}:
                raise ReferenceTaken(ref_pk) from exc
            raise


def _dynamo(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _SERIALIZE(value) for name, value in values.items()}


class ResolutionCounted:
    """Counts what resolving an order's customer did (a customer created, customers merged) in the very write
    that does it, as the upsert's `WriteCompanion`: a chunk resumed after its worker died between the
    resolution and the hand-over finds the customer there (created no more) and the counts already made."""

    def __init__(self, progress: ChunkProgress) -> None:
        self.progress = progress
        self._folded = 0  # the merges of this resolution already in the counts
        self._pending: tuple[Counter[str], int] | None = None

    def item(self, result: UpsertResult, *, done: bool) -> dict[str, Any]:
        counts = self.progress.counts + Counter(
            created_customers=int(result.created), merged_customers=len(result.merged_ids) - self._folded
        )
        self._pending = (counts, len(result.merged_ids))
        return self.progress.item_after(0, counts)

    def committed(self, *, done: bool) -> None:
        assert self._pending is not None
        counts, self._folded = self._pending
        self.progress.advance(0, counts)


@dataclass
class OrderChunk:
    """One chunk of an orders import, from where `progress` says its last attempt got."""

    service: CustomerService
    references: OrderReferences
    import_id: str
    progress: ChunkProgress
    imported_at: datetime
    spill: Callable[[], None]  # move the bad rows so far into a report part when they grow large

    def apply(self, rows: list[SourceRow], request: ImportRequest) -> None:
        for group in group_orders(rows, request):
            try:
                draft = read_order(group, request, self.imported_at)
            except OrderRejected as rejected:
                self._reject(group, rejected.reasons)
                continue
            self._hand_over(draft, group, request)

    def _hand_over(self, draft: OrderDraft, group: list[SourceRow], request: ImportRequest) -> None:
        fingerprint = draft.fingerprint(request.earn_points)
        ref_pk = order_ref_pk(request.source, draft.order_ref)
        earlier = self.references.get(ref_pk)
        if earlier is not None:
            self._seen_before(draft, group, earlier, fingerprint)
            return
        result = self.service.upsert(
            CustomerUpsert(source=request.source, identities=list(draft.identities)),
            actor=f"import:{self.import_id}",
            default_region=request.default_phone_region,
            companion=ResolutionCounted(self.progress),
        )
        event = OrderImportRequested(
            import_id=self.import_id,
            record_source=request.source,
            order_ref=draft.order_ref,
            rows=list(draft.rows),
            order=draft.for_customer(result.customer_id),
            placed_at=draft.placed_at,
            status=draft.status,
            earns_points=request.earn_points,
        )
        rows = len(group)
        counts = self.progress.counts + Counter(processed_rows=rows, imported_rows=rows)
        try:
            self.references.hand_over(
                ref_pk, fingerprint, event, self.progress.item_after(rows, counts), self.service.clock.now()
            )
        except ReferenceTaken:
            earlier = self.references.get(ref_pk)
            if earlier is None:  # a concurrent transaction on the reference that did not commit either: retry
                raise ServiceUnavailable(f"order {draft.order_ref!r} is being imported concurrently") from None
            self._seen_before(draft, group, earlier, fingerprint)
            return
        self.progress.advance(rows, counts)

    def _seen_before(self, draft: OrderDraft, group: list[SourceRow], earlier: HandedOver, fingerprint: str) -> None:
        if earlier.fingerprint == fingerprint:
            rows = len(group)
            self.progress.advance(rows, self.progress.counts + Counter(processed_rows=rows, unchanged_rows=rows))
            self.progress.save()
            return
        reason = (
            f"order {draft.order_ref!r} was imported before (import {earlier.import_id}) with other content: "
            "an imported order is not changed by importing it again (the API's 422 for a reused Idempotency-Key); "
            "change it through its status and returns"
        )
        self._reject(group, dict.fromkeys((row.number for row in group), reason))

    def _reject(self, group: list[SourceRow], reasons: dict[int, str]) -> None:
        """Every row of the order reported at once: a retry never resumes inside an order."""
        for row in group:
            self.progress.errors.append((row.number, reasons[row.number], row.data))
        rows = len(group)
        self.progress.advance(rows, self.progress.counts + Counter(processed_rows=rows, error_rows=rows))
        self.progress.save()
        self.spill()
