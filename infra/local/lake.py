"""SQL over the lake bucket on a laptop: the local cloud's reader of the lake, for tests and the tour.

Not runtime code (DuckDB is not in the Lambda layer): functions read the lake through Athena
(`ecrm.core.lake.AthenaLake`), which the local cloud runs on DuckDB too (`infra.local.athena`);
both map Glue types to DuckDB types with `infra.local.athena.duckdb_type`.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ecrm.core.lake import LAKE_TABLES, PARTITION_KEY, sql_string

from infra.local.athena import duckdb_type

_TABLE_REFERENCE = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


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
            pattern = sql_string(f"{(workdir / table).as_posix()}/**/*.parquet")
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
    """The local Athena's DuckDB type of a Glue type, but timestamps as `TIMESTAMPTZ` (aware datetimes back)."""
    return "TIMESTAMPTZ" if glue_type.strip().lower() == "timestamp" else duckdb_type(glue_type)
