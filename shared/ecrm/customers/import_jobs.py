"""Bulk imports end to end: the ticket (`POST /imports`), then the pipeline the upload starts.

Objects in the import bucket:
- `uploads/<import_id>/source.<csv|jsonl>`  the file, uploaded with the presigned PUT URL
- `incoming/<mapping>/<file>`               a file dropped straight into the bucket (by an ERP export, SFTP,
                                            a partner), imported with the request in `mappings/<mapping>.json`
- `work/<import_id>/part-<n>.jsonl`         the file split into chunks of rows (with row numbers)
- `work/<import_id>/errors-<n>.csv`         each chunk's bad rows
- `reports/<import_id>/errors.csv`          the error report users download

The upload and the chunks are deleted when the import finishes: afterwards the personal data lives
only in customer profiles, where an erasure request reaches it.

The pipeline (a Step Functions state machine started by the upload) is: `prepare` (duplicate file?
split into chunks), `chunk` for each chunk in parallel (resolve and upsert every good row, report
every bad one with its row number and reason; a chunk's counts are added exactly once even if it
is retried, and a chunk retried after its worker died resumes after the last row applied, with the
counts and bad rows so far: `ChunkProgress`), then `finish` (one error report, `ImportCompleted`).
Re-importing a file changes nothing: the same file (content, source and mapping) is recognised and
marked `duplicate`, and even a renamed copy only yields `unchanged` rows because upserts are idempotent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ecrm.core.clock import Clock
from ecrm.core.errors import Conflict, InvalidInput, NotFound
from ecrm.core.ids import new_id
from ecrm.customers.imports import (
    ErrorReport,
    RowError,
    SourceRow,
    count_rows,
    merge_reports,
    read_rows,
    row_to_upsert,
)
from ecrm.customers.models import ImportCompleted, ImportRequest, ImportStatus, ImportTicket, UpsertResult
from ecrm.customers.order_import_chunks import OrderChunk, OrderReferences
from ecrm.customers.order_imports import keyed_rows, validate_import_mapping
from ecrm.customers.service import CustomerService
from ecrm.customers.store import CustomerStore

CHUNK_ROWS = 100
# The chunk list travels in the state machine's state (256 KB): at ~100 bytes a chunk, stay under
# 2,000 chunks by growing the chunks of very large files (5M rows -> chunks of 2,500 rows).
MAX_CHUNKS = 2000
UPLOAD_EXPIRES = 3600
SPILL_BYTES = 200_000
PROGRESS_DAYS = 14


class ChunkProgress:
    """How far a chunk's attempts got: `IMPORT#<id>` / `PROGRESS#<n>` in the customer table.

    A row's change and the progress that counts it commit in one transaction (the progress rides
    the upsert's writes as its `WriteCompanion`); a row that changes nothing or is rejected writes
    the progress alone. So after a worker dies mid-chunk, the retry resumes after the last row
    applied, with the counts so far, and a row the dead attempt wrote is not counted again as
    unchanged. `position` is the number of rows done; `merges` the merges of the next row already
    committed and counted (a row may merge, then die before its last write); `errors` the bad rows
    not yet in a report part (the chunk's report is written from them at its end).
    """

    def __init__(self, store: CustomerStore, import_id: str, index: int, *, expires_at: int) -> None:
        self.store, self.import_id, self.index, self.expires_at = store, import_id, index, expires_at
        self.position = 0
        self.merges = 0
        self.counts: Counter[str] = Counter()
        self.errors: list[tuple[int, str, Any]] = []
        self._folded = 0  # the merges of the current upsert already in `counts`
        self._pending: tuple[int, int, Counter[str], int] | None = None
        self._row_done = False

    @classmethod
    def load(cls, store: CustomerStore, import_id: str, index: int, *, expires_at: int) -> ChunkProgress:
        progress = cls(store, import_id, index, expires_at=expires_at)
        found = store.chunk_progress(import_id, index)
        if found is not None:
            progress.position = int(found["position"])
            progress.merges = int(found["merges"])
            progress.counts = Counter(json.loads(found["counts"]))
            progress.errors = [(int(n), str(r), d) for n, r, d in json.loads(found["errors"])]
        return progress

    def errors_size(self) -> int:
        return len(json.dumps(self.errors, default=str))

    def _after(self, result: UpsertResult, *, done: bool) -> tuple[int, int, Counter[str], int]:
        """(position, merges, counts, folded) once a write giving `result` (this upsert's so far) commits."""
        new_merges = len(result.merged_ids) - self._folded
        counts = self.counts + Counter(merged_customers=new_merges)
        merges = self.merges + new_merges
        if not done:
            return self.position, merges, counts, len(result.merged_ids)
        counts["processed_rows"] += 1
        counts["created_customers"] += int(result.created)
        counts["imported_rows" if (result.created or result.changed or merges) else "unchanged_rows"] += 1
        return self.position + 1, 0, counts, 0

    def _item(self, position: int, merges: int, counts: Counter[str]) -> dict[str, Any]:
        return self.store.chunk_progress_item(
            self.import_id,
            self.index,
            position=position,
            merges=merges,
            counts=json.dumps({k: v for k, v in sorted(counts.items()) if v}),
            errors=json.dumps(self.errors, default=str),
            expires_at=self.expires_at,
        )

    # -- WriteCompanion: the progress rides the row's own writes ---------------------------------
    def item(self, result: UpsertResult, *, done: bool) -> dict[str, Any]:
        self._pending = self._after(result, done=done)
        return self._item(*self._pending[:3])

    def committed(self, *, done: bool) -> None:
        assert self._pending is not None
        self.position, self.merges, self.counts, self._folded = self._pending
        self._pending = None
        self._row_done = done

    # -- rows that write no state ----------------------------------------------------------------
    def finish_row(self, result: UpsertResult) -> None:
        """The row is done: if its last write did not carry the progress (it changed nothing), write it now."""
        if not self._row_done:
            self.position, self.merges, self.counts, self._folded = self._after(result, done=True)
            self.save()
        self._row_done = False

    def reject(self, number: int, reason: str, data: Any) -> None:
        self.errors.append((number, reason, data))
        self.counts["processed_rows"] += 1
        self.counts["error_rows"] += 1
        self.position, self.merges, self._folded, self._row_done = self.position + 1, 0, 0, False
        self.save()

    def save(self) -> None:
        self.store.put_chunk_progress(self._item(self.position, self.merges, self.counts))

    # -- an orders import: a whole order at a time (`ecrm.customers.order_import_chunks`) ------------
    def item_after(self, rows: int, counts: Counter[str]) -> dict[str, Any]:
        """The progress once `rows` more rows are done with `counts`, to write with the order's hand-over."""
        return self._item(self.position + rows, 0, counts)

    def advance(self, rows: int, counts: Counter[str]) -> None:
        self.position, self.merges, self.counts, self._folded, self._row_done = (
            self.position + rows,
            0,
            counts,
            0,
            False,
        )


def upload_key(import_id: str, fmt: str) -> str:
    return f"uploads/{import_id}/source.{fmt}"


def is_drop(key: str) -> bool:
    return key.startswith("incoming/") and key.count("/") >= 2 and not key.endswith("/")


def drop_import_id(key: str, etag: str) -> str:
    """A deterministic import id for a dropped object, so a redelivered S3 event is one import."""
    digest = int.from_bytes(hashlib.sha256(f"{key}|{etag}".encode()).digest()[:17], "big") >> 6
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    return "imp_" + "".join(alphabet[(digest >> (5 * i)) & 31] for i in reversed(range(26)))


def import_id_from_key(key: str) -> str:
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != "uploads" or not parts[1].startswith("imp_"):
        raise ValueError(f"{key!r} is not an import upload key")
    return parts[1]


@dataclass
class ImportDesk:
    """The API side: open an import, report its progress."""

    store: CustomerStore
    s3: Any
    bucket: str
    clock: Clock

    def open(self, request: ImportRequest, *, requested_by: str | None = None) -> ImportTicket:
        validate_import_mapping(request)
        now = self.clock.now()
        import_id = new_id("imp_")
        key = upload_key(import_id, request.format)
        status = ImportStatus(
            import_id=import_id,
            source=request.source,
            status="awaiting_upload",
            file_key=key,
            requested_by=requested_by,
            created_at=now,
            updated_at=now,
        )
        self.store.create_import(status, request.model_dump_json())
        content_type = "text/csv" if request.format == "csv" else "application/x-ndjson"
        url = self.s3.generate_presigned_url(
            "put_object",
            Params={"Bucket": self.bucket, "Key": key, "ContentType": content_type},
            ExpiresIn=UPLOAD_EXPIRES,
        )
        return ImportTicket(
            import_id=import_id,
            upload_url=url,
            upload_headers={"Content-Type": content_type},
            expires_in=UPLOAD_EXPIRES,
            status_url=f"/imports/{import_id}",
        )

    def register_drop(self, key: str, etag: str) -> str:
        """An import for a file dropped under `incoming/<mapping>/`, with `mappings/<mapping>.json`."""
        if not is_drop(key):
            raise InvalidInput(f"{key!r} is not under incoming/<mapping>/")
        mapping_name = key.split("/")[1]
        try:
            raw = self.s3.get_object(Bucket=self.bucket, Key=f"mappings/{mapping_name}.json")["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            raise InvalidInput(f"no mappings/{mapping_name}.json for the file {key!r}") from None
        request = ImportRequest.model_validate_json(raw)
        validate_import_mapping(request)
        import_id = drop_import_id(key, etag)
        now = self.clock.now()
        status = ImportStatus(
            import_id=import_id,
            source=request.source,
            status="awaiting_upload",
            file_key=key,
            requested_by=f"drop:{key}",
            created_at=now,
            updated_at=now,
        )
        with contextlib.suppress(self.store.client.exceptions.ConditionalCheckFailedException):
            self.store.create_import(status, request.model_dump_json())  # fails for a redelivered drop
        return import_id

    def status(self, import_id: str) -> ImportStatus:
        found = self.store.get_import(import_id)
        if found is None:
            raise NotFound(f"import {import_id} does not exist")
        status, _ = found
        if status.error_report_key:
            url = self.s3.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": status.error_report_key}, ExpiresIn=UPLOAD_EXPIRES
            )
            status = status.model_copy(update={"error_report_url": url})
        return status


@dataclass
class ImportPipeline:
    """The steps of the import state machine."""

    service: CustomerService
    s3: Any
    bucket: str
    publisher: Any
    chunk_rows: int = CHUNK_ROWS

    @property
    def store(self) -> CustomerStore:
        return self.service.store

    def _request(self, import_id: str) -> tuple[ImportStatus, ImportRequest]:
        found = self.store.get_import(import_id)
        if found is None:
            raise NotFound(f"import {import_id} does not exist")
        status, request = found
        return status, ImportRequest.model_validate(request)

    def prepare(self, key: str, import_id: str | None = None) -> dict[str, Any]:
        import_id = import_id or import_id_from_key(key)
        status, request = self._request(import_id)
        if status.file_key != key:
            raise Conflict(f"import {import_id} expects {status.file_key}, not {key}")
        if status.status != "awaiting_upload":
            raise Conflict(f"import {import_id} is already {status.status}")
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        settings: list[Any] = [request.source, request.mapping, request.default_phone_region]
        if request.kind == "orders":
            settings += [request.kind, request.earn_points]
        fingerprint = hashlib.sha256(body + json.dumps(settings, sort_keys=True).encode()).hexdigest()
        now = self.service.clock.now()
        earlier = self.store.claim_file(fingerprint, import_id)
        if earlier is not None:
            self.store.update_import(import_id, status="duplicate", duplicate_of=earlier, updated_at=now)
            return {"import_id": import_id, "duplicate": True, "chunks": []}
        chunks: list[dict[str, Any]] = []
        part: list[str] = []
        total = 0

        def flush() -> None:
            index = len(chunks) + 1
            part_key = f"work/{import_id}/part-{index:06d}.jsonl"
            self.s3.put_object(Bucket=self.bucket, Key=part_key, Body=("\n".join(part) + "\n").encode())
            chunks.append({"import_id": import_id, "index": index, "key": part_key})
            part.clear()

        rows_per_chunk = max(self.chunk_rows, -(-count_rows(body, request.format) // MAX_CHUNKS))
        rows = read_rows(body, request.format)
        # An order's rows stay in one chunk: a chunk ends only where the next row starts another order.
        keyed = keyed_rows(rows, request) if request.kind == "orders" else ((row, None) for row in rows)
        previous: str | None = None
        for row, order_ref in keyed:
            if len(part) >= rows_per_chunk and (order_ref is None or order_ref != previous):
                flush()
            previous = order_ref
            total += 1
            part.append(
                json.dumps(
                    {"number": row.number, "values": row.values, "error": row.error, "raw": row.raw}, default=str
                )
            )
        if part:
            flush()
        self.store.update_import(import_id, status="running", total_rows=total, updated_at=now)
        return {"import_id": import_id, "duplicate": False, "chunks": chunks}

    def chunk(self, import_id: str, index: int, key: str) -> dict[str, int]:
        """Apply a chunk's rows, resuming after the last row an earlier attempt applied (see `ChunkProgress`)."""
        _, request = self._request(import_id)
        lines = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode().splitlines()
        rows = [line for line in lines if line]
        imported_at = self.service.clock.now()
        expires_at = int(imported_at.timestamp()) + PROGRESS_DAYS * 86400
        progress = ChunkProgress.load(self.store, import_id, index, expires_at=expires_at)
        if request.kind == "orders":
            OrderChunk(
                self.service,
                OrderReferences(self.store.client, self.store.table),
                import_id,
                progress,
                imported_at,
                spill=lambda: self._spill_errors(import_id, index, progress),
            ).apply([SourceRow(**json.loads(line)) for line in rows[progress.position :]], request)
        for line in rows[progress.position :] if request.kind == "customers" else ():
            row = SourceRow(**json.loads(line))
            try:
                if row.error:
                    raise RowError(row.number, row.error)
                upsert = row_to_upsert(row, request, import_id=import_id, imported_at=imported_at)
                result = self.service.upsert(
                    upsert,
                    actor=f"import:{import_id}",
                    default_region=request.default_phone_region,
                    companion=progress,
                )
            except InvalidInput as exc:  # a bad row is reported, never blocks the others
                progress.reject(row.number, exc.reason if isinstance(exc, RowError) else exc.detail, row.data)
                self._spill_errors(import_id, index, progress)
                continue
            progress.finish_row(result)
        if progress.errors:
            report = ErrorReport()
            for number, reason, data in progress.errors:
                report.add(number, reason, data)
            self.s3.put_object(Bucket=self.bucket, Key=f"work/{import_id}/errors-{index:06d}.csv", Body=report.render())
        counts = dict(progress.counts)
        self.store.record_chunk(import_id, index, counts, self.service.clock.now())
        return counts

    def _spill_errors(self, import_id: str, index: int, progress: ChunkProgress) -> None:
        """Bad rows travel in the progress item (400 KB at most): past `SPILL_BYTES`, they move to a report part.

        The part is named by its first row, so an attempt that dies before the progress says so
        writes the same part again."""
        if progress.errors_size() <= SPILL_BYTES:
            return
        report = ErrorReport()
        for number, reason, data in progress.errors:
            report.add(number, reason, data)
        first = progress.errors[0][0]
        part_key = f"work/{import_id}/errors-{index:06d}-{first:012d}.csv"
        self.s3.put_object(Bucket=self.bucket, Key=part_key, Body=report.render())
        progress.errors.clear()
        progress.save()

    def finish(self, import_id: str) -> dict[str, Any]:
        status, _ = self._request(import_id)
        if status.status == "duplicate":
            return {"import_id": import_id, "status": "duplicate"}
        parts = []
        listing = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"work/{import_id}/errors-"
        )
        for page in listing:
            for obj in page.get("Contents", []):
                parts.append(self.s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read())
        report_key = None
        if parts:
            report_key = f"reports/{import_id}/errors.csv"
            self.s3.put_object(Bucket=self.bucket, Key=report_key, Body=merge_reports(parts), ContentType="text/csv")
        self._delete_sources(import_id, status.file_key)
        now = self.service.clock.now()
        fields: dict[str, Any] = {"status": "completed", "updated_at": now}
        if report_key:
            fields["error_report_key"] = report_key
        self.store.update_import(import_id, **fields)
        final, _ = self._request(import_id)
        self.publisher.publish_all(
            [
                ImportCompleted(
                    import_id=import_id,
                    record_source=final.source,
                    imported_rows=final.imported_rows,
                    unchanged_rows=final.unchanged_rows,
                    error_rows=final.error_rows,
                    created_customers=final.created_customers,
                    merged_customers=final.merged_customers,
                    error_report_key=report_key,
                    completed_at=now,
                )
            ]
        )
        return {"import_id": import_id, "status": "completed", "error_rows": final.error_rows}

    def _delete_sources(self, import_id: str, file_key: str) -> None:
        """The uploaded file and its chunks hold personal data: once imported, only the customers keep it
        (so an erasure reaches all of it). The error report, of rows that matched no one, expires by lifecycle."""
        if is_drop(file_key):
            self.s3.delete_object(Bucket=self.bucket, Key=file_key)
        for prefix in (f"uploads/{import_id}/", f"work/{import_id}/"):
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                if keys:
                    self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})

    def fail(self, import_id: str, cause: str) -> dict[str, Any]:
        self.store.update_import(import_id, status="failed", failure=cause[:1000], updated_at=self.service.clock.now())
        return {"import_id": import_id, "status": "failed"}
