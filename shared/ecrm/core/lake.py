"""The data lake's record plumbing, shared by every engine that writes or reads the lake.

Tables live in the lake bucket as Parquet under `<table>/dt=yyyy-MM-dd/` (Hive-style partitions),
written by one Firehose delivery stream per table that converts the JSON records producers put
into Parquet with the Glue table's schema (`infra/constructs/lake.py`). In the cloud, Athena
queries the Glue tables; locally, the local cloud's Athena runs the same SQL with DuckDB on the
same files (`infra/local/athena.py`; `infra.local.lake.LocalLake` for tests and the tour).

Records are flat: nested members are compact JSON strings (Athena: `json_extract_scalar`, DuckDB:
`json_extract_string`), timestamps are ISO 8601 in UTC with `Z`, the form Firehose's OpenX JSON
SerDe reads into a `timestamp` column.

Here: the table catalogue (names and Glue columns), the record formats that need no engine's model,
the stream writers, SQL through Athena and the row eraser. An engine's own record of its models
lives with the engine (`ecrm.collect.lake_records` for collected events).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

logger = logging.getLogger(__name__)
T = TypeVar("T")

COLLECTED_EVENTS = "collected_events"
# What one PutRecordBatch call takes.
LAKE_MAX_RECORDS = 500
LAKE_MAX_BYTES = 4 * 1024 * 1024

# Glue column types, in the order of the Parquet schema. `dt` (the day Firehose received the record,
# UTC) is the partition key: it is in the object's path, not in the record.
COLLECTED_EVENT_COLUMNS: list[tuple[str, str]] = [
    ("message_id", "string"),
    ("type", "string"),
    ("source_id", "string"),
    ("source_name", "string"),
    ("user_id", "string"),
    ("anonymous_id", "string"),
    ("event", "string"),
    ("name", "string"),
    ("category", "string"),
    ("properties", "string"),
    ("traits", "string"),
    ("context", "string"),
    ("timestamp", "timestamp"),
    ("original_timestamp", "timestamp"),
    ("sent_at", "timestamp"),
    ("received_at", "timestamp"),
]

CUSTOMER_CHANGES = "customer_changes"

# What changed on which customer, when and from which source: ids and field names, never values,
# so the lake holds no personal data of the customer store (an erasure has nothing to chase here).
CUSTOMER_CHANGE_COLUMNS: list[tuple[str, str]] = [
    ("event_id", "string"),
    ("change", "string"),
    ("customer_id", "string"),
    ("related_ids", "string"),
    ("changed", "string"),
    ("record_source", "string"),
    ("correlation_id", "string"),
    ("occurred_at", "timestamp"),
]

# The analysis engine's tables: its segment profiles (columns derived from its field catalogue,
# `ecrm.analysis.segment_sql.profile_columns`) and what customers did; personalization trains on them.
SEGMENT_PROFILES = "segment_profiles"
BEHAVIOUR_EVENTS = "behaviour_events"

BEHAVIOUR_EVENT_COLUMNS: list[tuple[str, str]] = [
    ("customer_id", "string"),
    ("event_id", "string"),
    ("event_type", "string"),
    ("occurred_at", "timestamp"),
    ("amount", "double"),
    ("category", "string"),
    ("channel", "string"),
    ("product_id", "string"),
    ("segment_id", "string"),
    ("source", "string"),
    ("recorded_at", "timestamp"),
]

# The transactions engine's order lines: one row per line of an order placed (`purchase`), per line
# returned (`return`, negative) and per cancelled order (`cancellation`, negative, no sku). Amounts are
# signed: a refund or a return is never a purchase to a reader that sums or counts `purchase` rows.
ORDER_LINES = "order_lines"

ORDER_LINE_COLUMNS: list[tuple[str, str]] = [
    ("event_id", "string"),
    ("order_id", "string"),
    ("customer_id", "string"),
    ("kind", "string"),
    ("sku", "string"),
    ("category", "string"),
    ("quantity", "int"),
    ("amount_minor", "bigint"),
    ("amount", "double"),
    ("currency", "string"),
    ("channel", "string"),
    ("store", "string"),
    ("occurred_at", "timestamp"),
]

# Broadcast's message outcomes, written by its outcome counter: one row per status change of a message
# (requested, suppressed, deferred, sent, delivered, bounced, complained, failed) and per engagement
# (opened, clicked), so OLAP slices outcomes by campaign, variant, journey step, channel and day.
MESSAGE_OUTCOMES = "message_outcomes"

MESSAGE_OUTCOME_COLUMNS: list[tuple[str, str]] = [
    ("event_id", "string"),
    ("message_id", "string"),
    ("customer_id", "string"),
    ("event_type", "string"),
    ("status", "string"),
    ("channel", "string"),
    ("purpose", "string"),
    ("topic", "string"),
    ("source", "string"),
    ("source_kind", "string"),
    ("source_id", "string"),
    ("step", "string"),
    ("reason", "string"),
    ("occurred_at", "timestamp"),
]

# Every lake table with fixed columns: what the CDK app declares and what the local lake knows.
LAKE_TABLES: dict[str, list[tuple[str, str]]] = {
    COLLECTED_EVENTS: COLLECTED_EVENT_COLUMNS,
    CUSTOMER_CHANGES: CUSTOMER_CHANGE_COLUMNS,
    ORDER_LINES: ORDER_LINE_COLUMNS,
    MESSAGE_OUTCOMES: MESSAGE_OUTCOME_COLUMNS,
}

PARTITION_KEY = "dt"


def lake_timestamp(value: datetime | None) -> str | None:
    """`2026-11-23T10:15:30.123Z`: UTC, milliseconds (a naive datetime is taken as UTC)."""
    if value is None:
        return None
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def customer_change_record(
    *,
    event_id: str,
    change: str,
    customer_id: str,
    occurred_at: datetime,
    related_ids: Sequence[str] = (),
    changed: Sequence[str] = (),
    record_source: str | None = None,
    correlation_id: str | None = None,
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "change": change,
        "customer_id": customer_id,
        "related_ids": compact_json(list(related_ids)),
        "changed": compact_json(list(changed)),
        "record_source": record_source,
        "correlation_id": correlation_id,
        "occurred_at": lake_timestamp(occurred_at),
    }


def firehose_data(record: Mapping[str, Any]) -> bytes:
    """A record as the `Data` of a Firehose `PutRecord(Batch)` entry: one JSON document, newline-ended."""
    return (compact_json(record) + "\n").encode()


@dataclass(frozen=True)
class LakeTables:
    """How a query names the analysis tables: `ecrm_lake.segment_profiles` on Athena and locally alike."""

    profiles: str
    events: str

    @classmethod
    def in_database(cls, database: str) -> LakeTables:
        return cls(profiles=f'"{database}"."{SEGMENT_PROFILES}"', events=f'"{database}"."{BEHAVIOUR_EVENTS}"')


def timestamp_literal(value: datetime) -> str:
    """A `TIMESTAMP '...'` literal in UTC with microseconds: the same text on Athena and DuckDB."""
    utc = value.astimezone(UTC)
    return f"TIMESTAMP '{utc:%Y-%m-%d %H:%M:%S}.{utc.microsecond:06d}'"


def sql_string(text: str) -> str:
    """A SQL string literal (quotes doubled)."""
    return "'" + text.replace("'", "''") + "'"


# -- writing to a lake stream -------------------------------------------------------------------------------------
class FirehoseLakeWriter(Generic[T]):
    """Appends records to a lake stream as JSON lines (`PutRecordBatch`), from any item via `to_record`.

    A call takes at most 500 records and 4 MiB, and can fail per record while succeeding as a
    call; failed records are retried a few times with backoff. `write` returns the events that
    could still not be written, so the caller decides what that means for the request.
    """

    def __init__(
        self,
        client: Any,
        stream_name: str,
        to_record: Callable[[T], Mapping[str, Any]],
        *,
        max_attempts: int = 3,
        backoff_seconds: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.stream_name = stream_name
        self.to_record = to_record
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.sleep = sleep

    def write(self, events: Sequence[T]) -> list[T]:
        """Write `events`; returns those that could still not be written."""
        lines = [(event, self.line(event)) for event in events]
        chunks = lake_chunks(lines)
        failed: list[T] = []
        for number, chunk in enumerate(chunks):
            try:
                failed.extend(self._put(chunk))
            except (ClientError, BotoCoreError):
                logger.exception("lake stream %s refused a batch", self.stream_name)
                failed.extend(event for rest in chunks[number:] for event, _ in rest)
                break
        return failed

    def line(self, event: T) -> bytes:
        record = self.to_record(event)
        return (json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=_json_default) + "\n").encode()

    def _put(self, chunk: list[tuple[T, bytes]]) -> list[T]:
        pending = chunk
        for attempt in range(1, self.max_attempts + 1):
            response = self.client.put_record_batch(
                DeliveryStreamName=self.stream_name, Records=[{"Data": data} for _, data in pending]
            )
            if not response.get("FailedPutCount"):
                return []
            results = response["RequestResponses"]
            pending = [entry for entry, result in zip(pending, results, strict=True) if result.get("ErrorCode")]
            if attempt < self.max_attempts:
                self.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        return [event for event, _ in pending]


def lake_chunks(lines: Sequence[tuple[T, bytes]]) -> list[list[tuple[T, bytes]]]:
    """Batches within a `PutRecordBatch` call's limits (500 records, 4 MiB)."""
    chunks: list[list[tuple[T, bytes]]] = []
    current: list[tuple[T, bytes]] = []
    size = 0
    for entry in lines:
        if current and (len(current) == LAKE_MAX_RECORDS or size + len(entry[1]) > LAKE_MAX_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append(entry)
        size += len(entry[1])
    if current:
        chunks.append(current)
    return chunks


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# -- querying the lake with Athena ----------------------------------------------------------------------------------
class QueryFailed(Exception):
    """Athena could not run the query (bad SQL, missing table...): the reason is Athena's."""


class AthenaLake:
    """SQL over the lake through Amazon Athena: the same client code runs in the cloud and locally.

    In the cloud Athena runs the query; on the local cloud its emulation runs the same SQL with
    DuckDB over the same Parquet objects (`infra/local/athena.py`). Results land as CSV at the
    work group's output location (`output_location` of the result), which is what audience builds
    hand on as manifest parts.
    """

    def __init__(
        self,
        client: Any,
        *,
        workgroup: str,
        database: str,
        poll_seconds: float = 0.25,
        timeout_seconds: float = 600.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.workgroup = workgroup
        self.database = database
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds
        self.sleep = sleep

    def run(self, sql: str) -> AthenaResult:
        """Start `sql`, wait for it, and describe the result (rows are read on demand)."""
        started = self.client.start_query_execution(
            QueryString=sql, QueryExecutionContext={"Database": self.database}, WorkGroup=self.workgroup
        )
        execution_id = started["QueryExecutionId"]
        deadline = time.monotonic() + self.timeout_seconds
        delay = self.poll_seconds
        while True:
            execution = self.client.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
            state = execution["Status"]["State"]
            if state == "SUCCEEDED":
                return AthenaResult(
                    self.client,
                    execution_id,
                    output_location=execution.get("ResultConfiguration", {}).get("OutputLocation", ""),
                    scanned_bytes=int(execution.get("Statistics", {}).get("DataScannedInBytes", 0)),
                )
            if state in {"FAILED", "CANCELLED"}:
                raise QueryFailed(execution["Status"].get("StateChangeReason", state))
            if time.monotonic() > deadline:
                self.client.stop_query_execution(QueryExecutionId=execution_id)
                raise QueryFailed(f"the query did not finish within {self.timeout_seconds:.0f} s")
            self.sleep(delay)
            delay = min(delay * 2, 5.0)

    def rows(self, sql: str, limit: int | None = None) -> tuple[list[str], list[dict[str, str | None]]]:
        result = self.run(sql)
        return result.columns(), list(result.rows(limit))


class AthenaResult:
    def __init__(self, client: Any, execution_id: str, *, output_location: str, scanned_bytes: int) -> None:
        self.client = client
        self.execution_id = execution_id
        self.output_location = output_location
        self.scanned_bytes = scanned_bytes
        self._columns: list[str] | None = None

    def columns(self) -> list[str]:
        if self._columns is None:
            page = self.client.get_query_results(QueryExecutionId=self.execution_id, MaxResults=1)
            self._columns = [c["Name"] for c in page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]]
        return self._columns

    def rows(self, limit: int | None = None) -> Any:
        """Rows as dicts of strings (None for NULL), the header row skipped, paged as Athena pages."""
        paginator = self.client.get_paginator("get_query_results")
        columns: list[str] | None = None
        seen = 0
        for page in paginator.paginate(QueryExecutionId=self.execution_id):
            columns = columns or [c["Name"] for c in page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]]
            self._columns = columns
            for row in page["ResultSet"]["Rows"]:
                values = [cell.get("VarCharValue") for cell in row["Data"]]
                if seen == 0 and values == columns:
                    seen = -1  # the header row of a SELECT
                    continue
                if limit is not None and max(seen, 0) >= limit:
                    return
                seen = max(seen, 0) + 1
                yield dict(zip(columns, values, strict=False))


class LakeWriteFailed(Exception):
    """A lake stream kept refusing rows: the invocation fails so its whole batch is delivered again."""


class BufferedLakeWriter:
    """Collects rows during one invocation and writes them in as few `PutRecordBatch` calls as possible.

    A consumer handling a batch of ten events writes once per stream instead of ten times. `flush`
    raises `LakeWriteFailed` when rows could not be written: the handler then fails as a whole and
    the queue delivers the batch again, which is safe because every consumer that buffers rewrites
    the customer's current rows on each delivery.
    """

    def __init__(self, writer: Any) -> None:
        self.writer = writer
        self.pending: list[Any] = []

    def write(self, events: Sequence[Any]) -> list[Any]:
        self.pending.extend(events)
        return []

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        if pending and self.writer.write(pending):
            raise LakeWriteFailed(f"{len(pending)} lake rows could not all be written")


# -- erasing rows from the lake ---------------------------------------------------------------------------------------
ERASURE_STAGING = "erasure-staging/"


class LakeObjectBusy(Exception):
    """Another eraser is rewriting the object: this one must try again later (its record is retried)."""


class ObjectLeases:
    """One rewriter per lake object at a time: a lease item per object in an engine's table.

    Two erasures rewriting one Parquet object at once would each write back the other's rows (the
    last copy wins), so a rewrite holds a conditional lease keyed by the object. A lease outlives a
    crashed holder by at most `lease_seconds`, then the next attempt takes it over.
    """

    def __init__(self, client: Any, table_name: str, *, owner: str, lease_seconds: int = 900) -> None:
        self.client = client
        self.table_name = table_name
        self.owner = owner
        self.lease_seconds = lease_seconds

    def acquire(self, object_key: str, now: datetime) -> None:
        epoch = int(now.timestamp())
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={
                    "pk": {"S": f"LAKEOBJECT#{object_key}"},
                    "sk": {"S": "LEASE"},
                    "owner": {"S": self.owner},
                    "expires_at": {"N": str(epoch + self.lease_seconds)},
                },
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now OR #owner = :me",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":now": {"N": str(epoch)}, ":me": {"S": self.owner}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise LakeObjectBusy(f"{object_key} is being rewritten by another eraser") from None
            raise

    def release(self, object_key: str) -> None:
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key={"pk": {"S": f"LAKEOBJECT#{object_key}"}, "sk": {"S": "LEASE"}},
                ConditionExpression="#owner = :me",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":me": {"S": self.owner}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise


class LakeRowEraser:
    """Deletes the rows of a lake table that match a predicate, by rewriting the objects that hold them.

    The lake's tables are plain Parquet under Hive partitions, which no engine can delete a row from,
    so erasure is copy-on-write through Athena (the Lambda layer carries no Parquet library, and
    Athena reads and writes the lake at any size):

    1. `SELECT "$path", count(*) ... WHERE <predicate> GROUP BY 1` names the objects holding rows;
    2. per object, under a lease: `UNLOAD (SELECT <columns> ... WHERE "$path" = <object> AND NOT
       coalesce(<predicate>, false))` to an empty staging prefix (a row the predicate cannot
       decide, NULL, is kept: another customer's row is never lost);
    3. the parts beyond the first are copied beside the object under names derived from the
       object and the job, then the first part is copied over the object itself (one atomic S3
       replace, so readers see the old object or the new one); no part (every row erased): the
       object is deleted; then the staging prefix is emptied.

    Every step is idempotent: a redelivered job finds only objects that still hold matching rows,
    overwrites its own part names and drops parts a crashed attempt left behind. Firehose only ever
    adds objects with names of its own, so it never races a rewrite; rows still in Firehose's buffer
    when the job runs are the caller's concern (wait out the buffering first).
    """

    def __init__(
        self,
        athena: AthenaLake,
        s3_client: Any,
        *,
        bucket: str,
        leases: ObjectLeases,
        now: Callable[[], datetime],
    ) -> None:
        self.athena = athena
        self.s3 = s3_client
        self.bucket = bucket
        self.leases = leases
        self.now = now

    def erase(self, table: str, columns: Sequence[tuple[str, str]], predicate: str, *, job_id: str) -> int:
        """Rewrite every object of `table` with rows matching `predicate`; returns the rows erased."""
        qualified = f'"{self.athena.database}"."{table}"'
        found = self.athena.run(
            f'SELECT "$path" AS object, count(*) AS matched FROM {qualified} WHERE {predicate} GROUP BY "$path"'  # noqa: S608
        )
        erased = 0
        for row in found.rows():
            self.rewrite(qualified, columns, predicate, str(row["object"]), job_id=job_id)
            erased += int(row["matched"] or 0)
        return erased

    def rewrite(
        self, qualified: str, columns: Sequence[tuple[str, str]], predicate: str, object_url: str, *, job_id: str
    ) -> None:
        bucket, _, key = object_url.removeprefix("s3://").partition("/")
        if bucket != self.bucket:
            raise ValueError(f"{object_url} is not in the lake bucket {self.bucket}")
        self.leases.acquire(key, self.now())
        try:
            staging = f"{ERASURE_STAGING}{job_id}/{hashlib.sha256(key.encode()).hexdigest()[:20]}/"
            self._delete_under(staging)  # UNLOAD writes only to an empty prefix
            selected = ", ".join(f'"{name}"' for name, _ in columns)
            self.athena.run(
                f'UNLOAD (SELECT {selected} FROM {qualified} WHERE "$path" = {sql_string(object_url)} '  # noqa: S608
                f"AND NOT coalesce(({predicate}), false)) "
                f"TO {sql_string(f's3://{self.bucket}/{staging}')} WITH (format = 'PARQUET', compression = 'SNAPPY')"
            )
            parts = sorted(self._keys_under(staging))
            stem = key.removesuffix(".parquet")
            extra_prefix = f"{stem}.{job_id}-"
            extras = {f"{extra_prefix}{index}.parquet": part for index, part in enumerate(parts[1:], start=1)}
            for target, part in extras.items():
                self.s3.copy_object(Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": part})
            for left_behind in set(self._keys_under(extra_prefix)) - set(extras):
                self.s3.delete_object(Bucket=self.bucket, Key=left_behind)
            if parts:
                self.s3.copy_object(Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": parts[0]})
            else:
                self.s3.delete_object(Bucket=self.bucket, Key=key)
            self._delete_under(staging)
        finally:
            self.leases.release(key)

    def _keys_under(self, prefix: str) -> list[str]:
        paginator = self.s3.get_paginator("list_objects_v2")
        return [
            item["Key"]
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        ]

    def _delete_under(self, prefix: str) -> None:
        keys = self._keys_under(prefix)
        for start in range(0, len(keys), 1000):
            self.s3.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]], "Quiet": True}
            )


def sql_in_list(values: Sequence[str]) -> str:
    """`('a', 'b')`: string literals for an `IN` list (quotes doubled)."""
    return "(" + ", ".join(sql_string(value) for value in values) + ")"
