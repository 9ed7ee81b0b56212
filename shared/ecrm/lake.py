"""The data lake's records, and SQL over the lake on a laptop.

Tables live in the lake bucket as Parquet under `<table>/dt=yyyy-MM-dd/` (Hive-style partitions),
written by one Firehose delivery stream per table that converts the JSON records producers put
into Parquet with the Glue table's schema (`infra/constructs/lake.py`). In the cloud, Athena
queries the Glue tables; locally, `LocalLake` runs the same SQL with DuckDB on the same files.

Records are flat: nested members are compact JSON strings (Athena: `json_extract_scalar`, DuckDB:
`json_extract_string`), timestamps are ISO 8601 in UTC with `Z`, the form Firehose's OpenX JSON
SerDe reads into a `timestamp` column.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ecrm.collect.models import CollectedEvent

COLLECTED_EVENTS = "collected_events"

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

# Every lake table and its columns: what the CDK app declares and what `LocalLake` knows.
LAKE_TABLES: dict[str, list[tuple[str, str]]] = {
    COLLECTED_EVENTS: COLLECTED_EVENT_COLUMNS,
    CUSTOMER_CHANGES: CUSTOMER_CHANGE_COLUMNS,
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


def collected_event_record(event: CollectedEvent) -> dict[str, Any]:
    """The flat lake record of a collected event, as its Firehose stream receives it (JSON)."""
    return {
        "message_id": event.message_id,
        "type": event.type,
        "source_id": event.source_id,
        "source_name": event.source_name,
        "user_id": event.user_id,
        "anonymous_id": event.anonymous_id,
        "event": event.event,
        "name": event.name,
        "category": event.category,
        "properties": compact_json(event.properties),
        "traits": compact_json(event.traits),
        "context": compact_json(event.context),
        "timestamp": lake_timestamp(event.timestamp),
        "original_timestamp": lake_timestamp(event.original_timestamp),
        "sent_at": lake_timestamp(event.sent_at),
        "received_at": lake_timestamp(event.received_at),
    }


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


def put_records(client: Any, stream_name: str, records: Sequence[Mapping[str, Any]], *, attempts: int = 3) -> int:
    """`PutRecordBatch` in chunks of 500 records / 4 MiB, retrying failed records; returns how many still failed."""
    pending = [firehose_data(r) for r in records]
    for _ in range(attempts):
        failed: list[bytes] = []
        chunk: list[bytes] = []
        size = 0
        for data in [*pending, None]:
            if data is None or len(chunk) == 500 or size + len(data) > 4 * 1024 * 1024:
                if chunk:
                    response = client.put_record_batch(
                        DeliveryStreamName=stream_name, Records=[{"Data": d} for d in chunk]
                    )
                    failed += [
                        d for d, r in zip(chunk, response["RequestResponses"], strict=True) if r.get("ErrorCode")
                    ]
                chunk, size = [], 0
            if data is not None:
                chunk.append(data)
                size += len(data)
        pending = failed
        if not pending:
            return 0
    return len(pending)


def firehose_data(record: Mapping[str, Any]) -> bytes:
    """A record as the `Data` of a Firehose `PutRecord(Batch)` entry: one JSON document, newline-ended."""
    return (compact_json(record) + "\n").encode()


# -- local querying -------------------------------------------------------------------------------
_TABLE_REFERENCE = re.compile(r"\{([a-z_][a-z0-9_]*)\}")

# Glue type -> DuckDB type, for a table that has no object yet.
_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "boolean": "BOOLEAN",
    "tinyint": "TINYINT",
    "smallint": "SMALLINT",
    "int": "INTEGER",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "date": "DATE",
    "timestamp": "TIMESTAMPTZ",
}


class LocalLake:
    """SQL over the lake bucket with DuckDB, for the local cloud, tests and notebooks.

    `query("select type, count(*) n from {collected_events} group by type")`: each `{table}` is
    replaced by the table's Parquet objects (`<table>/**/*.parquet`, downloaded with their
    `dt=...` folders, `dt` read from the path as a string, as Glue declares it). In the cloud the
    same SQL runs on Athena over the Glue table (write `ecrm_lake.collected_events` there): keep
    to SQL both engines share. No DuckDB extension is needed. Timestamps are `TIMESTAMPTZ` in UTC.
    """

    def __init__(
        self, s3_client: Any, bucket: str, *, tables: Mapping[str, Sequence[tuple[str, str]]] | None = None
    ) -> None:
        self.s3 = s3_client
        self.bucket = bucket
        self.tables = dict(LAKE_TABLES if tables is None else tables)

    def query(self, sql: str, parameters: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """Run `sql` (tables written `{table}`; `?` placeholders bound to `parameters`); rows as dicts."""
        import duckdb

        with tempfile.TemporaryDirectory(prefix="ecrm-lake-") as workdir:
            sources = {table: self._source(table, Path(workdir)) for table in set(_TABLE_REFERENCE.findall(sql))}
            resolved = _TABLE_REFERENCE.sub(lambda m: sources[m.group(1)], sql)
            connection = duckdb.connect(":memory:")
            try:
                connection.execute("SET TimeZone = 'UTC'")
                relation = connection.sql(resolved, params=list(parameters or []))
                # Through Arrow: timestamps with time zone come back as aware datetimes (zoneinfo, no pytz).
                return [] if relation is None else relation.to_arrow_table().to_pylist()
            finally:
                connection.close()

    def download(self, table: str, directory: Path) -> int:
        """Copy the table's Parquet objects under `directory/<table>/`, keeping `dt=...`; returns how many."""
        root = (directory / table).resolve()
        count = 0
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{table}/"):
            for item in page.get("Contents", []):
                key = item["Key"]
                if not key.endswith(".parquet"):
                    continue
                target = (directory / key).resolve()
                if not target.is_relative_to(root):
                    raise ValueError(f"s3://{self.bucket}/{key} is not a lake object name")
                target.parent.mkdir(parents=True, exist_ok=True)
                self.s3.download_file(self.bucket, key, str(target))
                count += 1
        return count

    def _source(self, table: str, workdir: Path) -> str:
        if self.download(table, workdir):
            pattern = _sql_string(f"{(workdir / table).as_posix()}/**/*.parquet")
            return f"read_parquet({pattern}, hive_partitioning = true, hive_types_autocast = false)"
        columns = self.tables.get(table)
        if columns is None:
            raise LookupError(f"lake table {table!r} has no objects in s3://{self.bucket}/{table}/ and is not known")
        # Athena answers an empty table with no rows: an empty relation with the table's columns.
        selected = ", ".join(
            f'CAST(NULL AS {_duckdb_type(kind)}) AS "{name}"' for name, kind in [*columns, (PARTITION_KEY, "string")]
        )
        return f"(SELECT {selected} WHERE false)"


def _duckdb_type(glue_type: str) -> str:
    kind = glue_type.strip().lower()
    if kind.startswith(("varchar", "char")):
        return "VARCHAR"
    if kind.startswith("decimal"):
        return kind.upper()
    try:
        return _DUCKDB_TYPES[kind]
    except KeyError:
        raise ValueError(f"the local lake does not read Glue type {glue_type!r}") from None


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
