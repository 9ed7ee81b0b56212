"""SQL over the lake for tests and the tour, run by the local cloud's Athena engine.

Not runtime code (DuckDB is not in the Lambda layer): functions read the lake through Athena
(`ecrm.core.lake.AthenaLake`). Locally both readers are one engine, `infra.local.athena`: the
same Glue tables as DuckDB views, the same partitions, types, empty tables and object listing.
What `LocalLake` adds is the Python side: `{table}` references and typed rows back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from infra.local.athena import quote_identifier, run_query
from infra.local.template import ACCOUNT_ID

_TABLE_REFERENCE = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


class LocalLake:
    """SQL over the Glue tables of the lake bucket, in the process that runs the local cloud's moto server.

    `query("select type, count(*) n from {collected_events} group by type")`: each `{table}` is the
    Glue table of that name whose location is in `bucket` (in the cloud, write
    `ecrm_lake.collected_events` for Athena). The query runs as the local Athena runs it, with
    `?` bound to `parameters`: keep to SQL both engines share (`infra.local.athena` lists it).
    Rows come back as dicts of Python values through Arrow; the lake's timestamps are UTC and come
    back as aware datetimes. `s3_client` is a client of the local cloud (it names the region).
    """

    def __init__(self, s3_client: Any, bucket: str) -> None:
        self.region = str(s3_client.meta.region_name)
        self.bucket = bucket

    def query(self, sql: str, parameters: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """Run `sql` (tables written `{table}`; `?` placeholders bound to `parameters`); rows as dicts."""
        import pyarrow as pa

        catalog = self.tables()
        unknown = sorted(set(_TABLE_REFERENCE.findall(sql)) - set(catalog))
        if unknown:
            raise LookupError(f"{unknown}: no Glue table over s3://{self.bucket}/ in this process's local cloud")
        resolved = _TABLE_REFERENCE.sub(
            lambda m: f"{quote_identifier(catalog[m.group(1)])}.{quote_identifier(m.group(1))}", sql
        )
        table = run_query(
            resolved, database="default", account=ACCOUNT_ID, region=self.region, keep_arrow=True, parameters=parameters
        ).arrow
        for index, column in enumerate(table.schema):
            if pa.types.is_timestamp(column.type) and column.type.tz is None:
                utc = column.with_type(pa.timestamp(column.type.unit, tz="UTC"))
                table = table.set_column(index, utc, table.column(index).cast(utc.type))
        rows: list[dict[str, Any]] = table.to_pylist()
        return rows

    def tables(self) -> dict[str, str]:
        """{table: its Glue database} of the Glue tables located in the lake bucket."""
        from moto.glue.models import glue_backends

        found = {}
        for database in glue_backends[ACCOUNT_ID][self.region].databases.values():
            for table in database.tables.values():
                location = str(table.as_dict().get("StorageDescriptor", {}).get("Location", ""))
                if location.startswith(f"s3://{self.bucket}/"):
                    found[table.name] = database.name
        return found
