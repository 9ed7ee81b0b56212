"""Athena queries that really run, on DuckDB over the lake's Parquet, as Amazon Athena runs them.

moto 5.2.5 stores a query execution, answers SUCCEEDED and returns no rows (or rows queued in
advance through its own API). The analysis engine's SQL would then never run locally.
`install()` makes moto's Athena, in this process (the local cloud runs its moto server in
process), run every `SELECT` / `WITH` / `VALUES` statement as Athena does. The same engine
(`run_query`) serves tests and the tour through `infra.local.lake.LocalLake`, so the lake has
one local reader:

- tables are the Glue tables of moto's Glue, written as Athena writes them (`db.table`,
  `"db"."table"`, `awsdatacatalog.db.table`, or `table` in `QueryExecutionContext.Database`,
  `default` if none): one DuckDB schema per Glue database, one view per table, over the
  table's Parquet objects read straight from moto's S3 (objects whose name or folder starts with
  `_` or `.` are skipped, as Athena does). Columns are read by name, cast to the Glue types (a
  column no file has is NULL); Glue `timestamp` is DuckDB `TIMESTAMP` in UTC. Partition columns
  come from the path, typed as Glue declares them: with partition projection, from
  `storage.location.template` (or `<location><key>=<value>/`); without it, from the partitions
  registered in Glue (an unregistered partition is not read, as in Athena). A table with no
  object is an empty relation with its columns.
- `ExecutionParameters` are SQL literals written as text (`'ada'`, `42`, `DATE '2026-01-01'`),
  bound in order to the `?` outside quotes and comments; a parameter must be one expression;
  a count that does not match fails the query (`Incorrect number of parameters: ...`).
- the result is written as Athena writes it to `<OutputLocation>/<QueryExecutionId>.csv`
  (the request's, or the work group's when it enforces its configuration): a header row, every
  value in double quotes (quotes doubled), NULL as an empty unquoted field, `\\n` line ends;
  no `.csv.metadata`. `GetQueryResults` pages it like Athena (the header is the first row of
  the first page, `MaxResults` up to 1000, `NextToken`) with Athena's type names and value
  text: `timestamp` as `2026-11-23 10:15:30.123`, doubles as Java prints them (`1.0E20`),
  unnamed columns `_col0`, `_col1`, ..., names in lower case.
- a syntax error is refused by `StartQueryExecution` (InvalidRequestException, as Athena does);
  any other error (an unknown column or table, a bad cast) ends the query FAILED with DuckDB's
  message as `StateChangeReason`. `Statistics.DataScannedInBytes` is the size of the Parquet
  objects of the tables read (Athena reads only the columns it needs: an upper bound).

- `"$path"`, Athena's hidden column, is the `s3://` URL of the object a row was read from. Here a
  query that names `"$path"` sees it in `SELECT *` too (Athena hides it there): name columns.
- `UNLOAD (<query>) TO 's3://bucket/prefix/' WITH (format = 'PARQUET'[, compression = 'SNAPPY'])`
  runs the query and writes its rows as one Parquet object `<prefix><QueryExecutionId>_0` (none
  when there is no row; Athena may write several, in parallel), after checking, as Athena does,
  that nothing is under the prefix yet. Other formats and `partitioned_by` fail the query. Athena
  writes timestamps as Parquet timestamps, and so does this.

- as in AWS, `StartQueryExecution` answers at once and the query runs meanwhile (a thread of the
  moto server): `GetQueryExecution` says RUNNING until it is SUCCEEDED or FAILED,
  `GetQueryResults` before then is refused (`Query has not yet finished. Current state:
  RUNNING`), and `StopQueryExecution` ends it CANCELLED (the engine's work is discarded).
  Callers poll, as they must with Athena; a slow query never holds a client's request open.

Anything else (DDL such as `CREATE DATABASE`, `SHOW`, `MSCK`, CTAS, `INSERT`) keeps
moto's behaviour, and so do queries when results were queued through moto's API. DuckDB runs
sandboxed: no file outside the query's own copy of the objects, no extension download.

SQL that runs the same on Athena engine v3 and here (run here on DuckDB 2.0; Athena's side from the Trino docs):
    SELECT [DISTINCT], WITH, FROM/JOIN (INNER, LEFT, RIGHT, FULL, CROSS, USING), WHERE, GROUP BY
    (also GROUPING SETS, ROLLUP, CUBE, grouping()), HAVING, ORDER BY ... [ASC|DESC] [NULLS FIRST|
    LAST] (NULLS LAST by default in both), OFFSET n LIMIT m (in that order), UNION [ALL],
    INTERSECT, EXCEPT, VALUES, IN/EXISTS subqueries, CROSS JOIN UNNEST(a) AS u(x), CASE, IF(c, a, b),
    COALESCE, NULLIF, CAST, TRY_CAST, BETWEEN, LIKE, IS [NOT] DISTINCT FROM, `||`, aggregate
    FILTER (WHERE ...);
    aggregates: count(*), count(x), count(DISTINCT x), sum, avg, min, max, count_if, bool_and,
    bool_or, arbitrary, min_by, max_by, array_agg(x ORDER BY y), stddev, stddev_samp,
    stddev_pop, variance, var_samp, var_pop, corr, covar_samp, covar_pop, regr_slope,
    regr_intercept;
    windows: row_number, rank, dense_rank, percent_rank, cume_dist, ntile, lag, lead,
    first_value, last_value, nth_value, sum/avg/count/min/max OVER (PARTITION BY ... ORDER BY ...
    ROWS BETWEEN ...);
    strings: lower, upper, length, substr/substring (1-based), strpos, position(s IN t), replace
    (all occurrences), trim, ltrim, rtrim, lpad, rpad, reverse, starts_with, chr, split,
    regexp_extract(s, p[, group]) when it matches;
    numbers: abs, round(x[, d]) (half away from zero), floor, ceil/ceiling, sqrt, power/pow, ln,
    log2, log10, exp, sign, mod, %, pi, random;
    dates: current_date, current_timestamp, now() (UTC), date(x), CAST(x AS DATE), DATE '...',
    TIMESTAMP '...', year, quarter, month, week (ISO), day, hour, minute, second,
    extract(YEAR|QUARTER|MONTH|WEEK|DAY|HOUR|MINUTE|SECOND FROM x), date_trunc(unit, timestamp),
    timestamp +/- INTERVAL 'n' DAY|HOUR|MINUTE|SECOND|MONTH|YEAR, date_diff('day', date, date);
    arrays: ARRAY[...], a[i] (1-based, in range), cardinality, contains; json_array_length.
Trino functions DuckDB lacks, defined here as macros so the same text runs (same results):
    day_of_week/dow (ISO, Monday = 1), day_of_year/doy, last_day_of_month, to_unixtime,
    regexp_like, levenshtein_distance, json_extract_scalar (NULL for objects and arrays), every,
    approx_distinct (exact here; Athena is within ~2.3%).
Differences to avoid (they run on both but answer differently, or run on one only):
    - integer division: Athena `7 / 2` = 3, DuckDB 3.5; write `CAST(x AS DOUBLE) / y`. Division and
      avg of DECIMAL: a DECIMAL at the operand's scale on Athena, a DOUBLE here; cast to DOUBLE
      first (sum of DECIMAL is DECIMAL(38, s) on both).
    - `concat(a, NULL)`: NULL on Athena, 'a' here; use `||`. greatest/least with a NULL: NULL on
      Athena only. split_part past the last field: NULL on Athena, '' here. regexp_extract with
      no match: NULL on Athena, '' here. regexp_replace: all matches on Athena, the first here
      (and `$1` vs `\\1`). array_position not found: 0 vs NULL; arr[i] out of range fails on Athena.
    - date_trunc and `+ INTERVAL` on a DATE return a DATE on Athena, a TIMESTAMP here: cast the
      result (`CAST(date_trunc('month', d) AS DATE)`). date_diff on timestamps or units other
      than days on dates: Athena counts whole units elapsed, DuckDB counts boundaries crossed.
      Trino's `date_add(unit, n, x)` does not exist here: write `x + INTERVAL 'n' DAY`.
    - extract(DOW FROM x) is ISO on Athena (Monday 1 .. Sunday 7), 0 = Sunday here: use
      day_of_week(x). millisecond(x): of the second on Athena, of the minute here.
    - timestamps as text: `'2026-11-23 10:15:30'` (a space; Athena refuses the `T` DuckDB takes).
    - only on Athena: date_format/date_parse (MySQL formats), format_datetime, from_unixtime,
      from_iso8601_timestamp, to_iso8601, approx_percentile, element_at, array_join, try(...);
      only here: ILIKE, `//`, list_*/str_* functions, strftime, epoch, `INTERVAL 1 DAY` (unquoted),
      `x::type`, QUALIFY, `SELECT * EXCLUDE`. Such SQL passes locally and fails on Athena: a local
      run proves nothing outside the subset above.
    - CAST(double AS VARCHAR) prints `1e+20` here, `1.0E20` on Athena: format in Python.
    - json_extract_scalar of `12.50` gives '12.5' here ('12.50' on Athena); JSON paths: keep to
      `$.a.b` and `$.a[0]`. approx_distinct is exact here.
"""

from __future__ import annotations

import base64
import binascii
import copy
import io
import json
import logging
import math
import re
import struct
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CATALOG = "awsdatacatalog"
DEFAULT_DATABASE = "default"
MAX_RESULTS = 1000
USER_ERROR, SYSTEM_ERROR = 2, 1  # AthenaError.ErrorCategory
USER_ERROR_TYPE, SYSTEM_ERROR_TYPE = 1006, 200  # AthenaError.ErrorType seen for such errors
NO_OUTPUT_LOCATION = (
    "No output location provided. An output location is required either through the Workgroup "
    "result configuration setting or as an API input."
)

# Trino functions DuckDB lacks, with the same results (see the module docstring).
TRINO_MACROS = {
    "day_of_week": ("x", "isodow(x)"),
    "dow": ("x", "isodow(x)"),
    "day_of_year": ("x", "dayofyear(x)"),
    "doy": ("x", "dayofyear(x)"),
    "last_day_of_month": ("x", "last_day(x)"),
    "to_unixtime": ("x", "epoch(x)"),
    "regexp_like": ("s, p", "regexp_matches(s, p)"),
    "levenshtein_distance": ("a, b", "levenshtein(a, b)"),
    "json_extract_scalar": (
        "j, p",
        "CASE WHEN json_type(j, p) IN ('OBJECT', 'ARRAY') THEN NULL ELSE json_extract_string(j, p) END",
    ),
    "approx_distinct": ("x", "count(DISTINCT x)"),
    "every": ("x", "bool_and(x)"),
}

_installed = False
_install_lock = threading.Lock()
_original: dict[str, Callable[..., Any]] = {}


class QueryError(Exception):
    """Why a query FAILED, as Athena reports it (StateChangeReason and AthenaError)."""

    def __init__(self, message: str, *, category: int = USER_ERROR, error_type: int = USER_ERROR_TYPE) -> None:
        super().__init__(message)
        self.message = message
        self.category = category
        self.error_type = error_type


def _invalid_request(message: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    return JsonRESTError("InvalidRequestException", message)


# -- installing -----------------------------------------------------------------------------------
def install() -> None:
    """Run Athena queries with DuckDB over the lake (idempotent, process-wide)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        from moto.athena.models import AthenaBackend
        from moto.athena.responses import AthenaResponse

        _original["start_query_execution"] = AthenaBackend.start_query_execution
        _original["get_query_execution"] = AthenaResponse.get_query_execution
        _original["get_query_results"] = AthenaResponse.get_query_results
        AthenaBackend.start_query_execution = _start_query_execution  # type: ignore[method-assign,assignment]
        AthenaResponse.get_query_execution = _get_query_execution  # type: ignore[method-assign,assignment]
        AthenaResponse.get_query_results = _get_query_results  # type: ignore[method-assign,assignment]
        _installed = True


@dataclass
class QueryRun:
    """What one execution produced: Athena's columns and value text, or the reason it failed."""

    columns: list[ResultColumn] = field(default_factory=list)
    rows: list[list[str | None]] = field(default_factory=list)
    scanned_bytes: int = 0
    engine_ms: int = 0
    total_ms: int = 0
    error: QueryError | None = None
    substatement_type: str = "SELECT"
    # UNLOAD: the rows as Arrow, written as Parquet instead of as CSV text
    arrow: Any = None


def _start_query_execution(
    backend: Any,
    query: str,
    context: dict[str, Any] | None,
    config: dict[str, Any] | None,
    workgroup: str | None,
    execution_parameters: list[str] | None,
) -> str:
    import duckdb
    from moto.athena.models import Execution

    unload = parse_unload(query)
    select = unload.select if unload else query
    if not is_query(select) or backend.query_results_queue:
        return str(_original["start_query_execution"](backend, query, context, config, workgroup, execution_parameters))
    with bare_connection() as parser:
        try:
            statements = parser.extract_statements(select)
        except duckdb.ParserException as exc:
            raise _invalid_request(str(exc)) from None
    if len(statements) != 1:
        raise _invalid_request(f"Only one sql statement is allowed. Got: {query}")
    if statements[0].type != duckdb.StatementType.SELECT:
        return str(_original["start_query_execution"](backend, query, context, config, workgroup, execution_parameters))
    work_group = backend.work_groups.get(workgroup or "primary")
    result_configuration = effective_result_configuration(work_group, config)

    started = time.monotonic()
    execution: Any = Execution(
        query=query,
        context=context or {},  # type: ignore[arg-type]  # moto's annotation; it stores the dict
        config=result_configuration,  # moto appends `<id>.csv` to its OutputLocation
        workgroup=work_group,
        execution_parameters=execution_parameters,
    )
    execution.local_run = None
    execution.local_running = True
    backend.executions[execution.id] = execution
    database = ((context or {}).get("Database") or DEFAULT_DATABASE).lower()
    threading.Thread(
        target=_execute,
        args=(backend, execution, select, unload, database, started),
        daemon=True,
        name=f"athena-{execution.id}",
    ).start()
    return str(execution.id)


def _execute(backend: Any, execution: Any, select: str, unload: Unload | None, database: str, started: float) -> None:
    """Run one query execution to its final state (in its own thread, as Athena runs it apart from the API)."""
    context = execution.context or {}
    try:
        catalog = (context.get("Catalog") or CATALOG).lower()
        if catalog != CATALOG:
            raise QueryError(f"the local cloud queries the {CATALOG} catalog only, not {catalog}")
        sql = bind_parameters(select, execution.execution_parameters or [])
        if unload is not None:
            run = run_unload(
                unload, sql, execution.id, database=database, account=backend.account_id, region=backend.region_name
            )
        else:
            run = run_query(sql, database=database, account=backend.account_id, region=backend.region_name)
            if not _cancelled(execution):
                write_result(backend.account_id, backend.region_name, execution.config["OutputLocation"], run)
    except QueryError as exc:
        run = QueryRun(error=exc)
    except Exception as exc:  # a bug of the emulation: Athena would say INTERNAL_ERROR
        logger.exception("Athena query %s", execution.id)
        run = QueryRun(error=QueryError(f"local cloud: {exc}", category=SYSTEM_ERROR, error_type=SYSTEM_ERROR_TYPE))
    run.substatement_type = "UNLOAD" if unload is not None else "SELECT"
    run.total_ms = int((time.monotonic() - started) * 1000)
    execution.local_run = run
    if not _cancelled(execution):
        execution.status = "FAILED" if run.error else "SUCCEEDED"
    execution.end_time = time.time()
    execution.local_running = False


def _cancelled(execution: Any) -> bool:
    return bool(execution._status == "CANCELLED")  # moto's StopQueryExecution sets it


def _local_state(execution: Any) -> str | None:
    """The state of a query the local engine runs (None for moto's own executions)."""
    if execution is None or not hasattr(execution, "local_running"):
        return None
    if _cancelled(execution):
        return "CANCELLED"
    if execution.local_running:
        return "RUNNING"
    return "FAILED" if execution.local_run.error else "SUCCEEDED"


def effective_result_configuration(work_group: Any, requested: dict[str, Any] | None) -> dict[str, Any]:
    """The request's ResultConfiguration, or the work group's when it enforces its own (a copy)."""
    configuration = (work_group.configuration if work_group is not None else None) or {}
    own = dict(configuration.get("ResultConfiguration") or {})
    if configuration.get("EnforceWorkGroupConfiguration") and own.get("OutputLocation"):
        chosen = own
    else:
        chosen = {**own, **(requested or {})}
    if not chosen.get("OutputLocation"):
        raise _invalid_request(NO_OUTPUT_LOCATION)
    return copy.deepcopy(chosen)


def _get_query_execution(response: Any) -> str:
    body = json.loads(_original["get_query_execution"](response))
    execution = response.athena_backend.executions.get(response._get_param("QueryExecutionId"))
    state = _local_state(execution)
    if state is None:
        return json.dumps(body)
    described = body["QueryExecution"]
    described["Status"]["State"] = state
    run: QueryRun | None = execution.local_run
    if state in {"RUNNING", "CANCELLED"} or run is None:
        described["Status"].pop("CompletionDateTime", None)
        return json.dumps(body)
    described["SubstatementType"] = run.substatement_type
    described["QueryExecutionContext"] = described.get("QueryExecutionContext") or {}
    described["EngineVersion"] = {
        "SelectedEngineVersion": "AUTO",
        "EffectiveEngineVersion": "Athena engine version 3",
    }
    if run.error is not None:
        described["Status"]["StateChangeReason"] = run.error.message
        described["Status"]["AthenaError"] = {
            "ErrorCategory": run.error.category,
            "ErrorType": run.error.error_type,
            "Retryable": False,
            "ErrorMessage": run.error.message,
        }
    described["Statistics"].update(
        {
            "EngineExecutionTimeInMillis": run.engine_ms,
            "DataScannedInBytes": run.scanned_bytes,
            "TotalExecutionTimeInMillis": run.total_ms,
            "QueryPlanningTimeInMillis": 0,
            "ServiceProcessingTimeInMillis": max(run.total_ms - run.engine_ms, 0),
        }
    )
    return json.dumps(body)


def _get_query_results(response: Any) -> str:
    exec_id = response._get_param("QueryExecutionId")
    execution = response.athena_backend.executions.get(exec_id)
    state = _local_state(execution)
    if state is None:
        return str(_original["get_query_results"](response))
    run: QueryRun | None = execution.local_run
    if state == "RUNNING":
        raise _invalid_request("Query has not yet finished. Current state: RUNNING")
    if state == "CANCELLED":
        raise _invalid_request("Query did not finish successfully. Final query state: CANCELLED")
    assert run is not None
    if run.error is not None:
        raise _invalid_request(f"Query did not finish successfully. Final query state: FAILED\n{run.error.message}")
    limit = response._get_param("MaxResults") or MAX_RESULTS
    if not 1 <= int(limit) <= MAX_RESULTS:
        raise _invalid_request(
            f"1 validation error detected: Value '{limit}' at 'maxResults' failed to satisfy constraint: "
            f"Member must have value less than or equal to {MAX_RESULTS}"
        )
    return json.dumps(result_page(exec_id, run, int(limit), response._get_param("NextToken")))


def result_page(exec_id: str, run: QueryRun, limit: int, token: str | None) -> dict[str, Any]:
    """One GetQueryResults page: the header row first, then the values, `limit` rows at most."""
    offset = _offset(exec_id, token) if token else 0
    table: list[list[str | None]] = [[column.name for column in run.columns], *run.rows]
    rows = table[offset : offset + limit]
    page: dict[str, Any] = {
        "UpdateCount": 0,
        "ResultSet": {
            "Rows": [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in rows],
            "ResultSetMetadata": {"ColumnInfo": [column.info() for column in run.columns]},
        },
    }
    if offset + limit < len(run.rows) + 1:
        page["NextToken"] = base64.urlsafe_b64encode(f"{exec_id}:{offset + limit}".encode()).decode()
    return page


def _offset(exec_id: str, token: str) -> int:
    try:
        owner, offset = base64.urlsafe_b64decode(token.encode()).decode().rsplit(":", 1)
        if owner == exec_id:
            return int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        pass
    raise _invalid_request("The NextToken is not valid for this query execution")


# -- the statement --------------------------------------------------------------------------------
_LEADING_NOISE = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/|\()*", re.DOTALL)
_QUERY_KEYWORD = re.compile(r"(?i)(select|with|values|table)\b")


def is_query(sql: str) -> bool:
    """Whether Athena would run `sql` as a query (the rest is DDL or DML moto keeps)."""
    start = _LEADING_NOISE.match(sql)
    return bool(_QUERY_KEYWORD.match(sql, start.end() if start else 0))


PATH_COLUMN = "$path"
_UNLOAD_KEYWORD = re.compile(r"(?is)\s*unload\s*\(")
_UNLOAD_TAIL = re.compile(r"(?is)\s*to\s*'(?P<to>(?:[^']|'')*)'\s*with\s*\((?P<properties>.*)\)\s*;?\s*")
_UNLOAD_PROPERTY = re.compile(r"(?is)\s*(?P<name>[a-z_]+)\s*=\s*'(?P<value>(?:[^']|'')*)'\s*")
UNLOAD_COMPRESSIONS = {"SNAPPY": "snappy", "GZIP": "gzip", "ZSTD": "zstd", "NONE": "none"}


def names_path_column(sql: str) -> bool:
    """Whether `sql` reads Athena's hidden `"$path"` column (a quoted identifier, in any case)."""
    return any(kind == "quoted" and text.lower() == f'"{PATH_COLUMN}"' for kind, text in sql_tokens(sql))


@dataclass(frozen=True)
class Unload:
    """`UNLOAD (<select>) TO '<to>' WITH (<properties>)`, split into its parts."""

    select: str
    to: str
    properties: dict[str, str]


def parse_unload(sql: str) -> Unload | None:
    """The parts of an UNLOAD statement; None when `sql` is not one (a syntax error fails at start, as on Athena)."""
    start = _UNLOAD_KEYWORD.match(sql)
    if not start:
        return None
    depth, position = 1, start.end()
    for kind, text in sql_tokens(sql[start.end() :]):
        if kind == "code":
            for offset, char in enumerate(text):
                depth += {"(": 1, ")": -1}.get(char, 0)
                if depth == 0:
                    select, rest = sql[start.end() : position + offset], sql[position + offset + 1 :]
                    tail = _UNLOAD_TAIL.fullmatch(rest)
                    if not tail:
                        raise _invalid_request("UNLOAD needs TO 's3://...' WITH (format = '...')")
                    properties = {}
                    for part in _split_top_level(tail.group("properties")):
                        found = _UNLOAD_PROPERTY.fullmatch(part)
                        if not found:
                            raise _invalid_request(f"UNLOAD property {part.strip()!r}: write name = 'text'")
                        properties[found.group("name").lower()] = found.group("value").replace("''", "'")
                    return Unload(select, tail.group("to").replace("''", "'"), properties)
        position += len(text)
    raise _invalid_request("UNLOAD: the query in parentheses is not closed")


def run_unload(unload: Unload, sql: str, execution_id: str, *, database: str, account: str, region: str) -> QueryRun:
    """Run the UNLOAD's query and write its rows as Parquet under its TO prefix, as Athena does."""
    import pyarrow.parquet as pq
    from moto.s3.exceptions import MissingBucket
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    file_format = unload.properties.get("format", "").upper()
    if file_format != "PARQUET":
        raise QueryError(f"the local cloud unloads PARQUET only, not {file_format or 'no format'}")
    unknown = set(unload.properties) - {"format", "compression"}
    if unknown:
        raise QueryError(f"the local cloud does not unload with {', '.join(sorted(unknown))}")
    compression = UNLOAD_COMPRESSIONS.get(unload.properties.get("compression", "SNAPPY").upper())
    if compression is None:
        raise QueryError(f"UNLOAD compression {unload.properties['compression']!r} is not one Parquet takes")
    if not unload.to.startswith("s3://"):
        raise QueryError(f"UNLOAD TO {unload.to!r}: an s3:// location")
    bucket_name, _, prefix = unload.to.removeprefix("s3://").partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    s3 = s3_backends[account][get_partition(region)]
    try:
        bucket = s3.get_bucket(bucket_name)
    except MissingBucket:
        raise QueryError(f"UNLOAD TO {unload.to}: the bucket {bucket_name} does not exist") from None
    if s3.list_objects(bucket, prefix or None, None, None, None)[0]:
        raise QueryError(f"HIVE_PATH_ALREADY_EXISTS: Target directory for table already exists: {unload.to}")
    run = run_query(sql, database=database, account=account, region=region, keep_arrow=True)
    if run.arrow is not None and run.arrow.num_rows:
        buffer = io.BytesIO()
        pq.write_table(run.arrow, buffer, compression=compression)
        s3.put_object(bucket_name, f"{prefix}{execution_id}_0", buffer.getvalue())
    run.arrow = None
    return run


def sql_tokens(sql: str) -> Iterator[tuple[str, str]]:
    """(kind, text) pieces of `sql`: 'quoted' strings and identifiers, 'comment', 'mark' (`?`), 'code'."""
    position, length = 0, len(sql)
    while position < length:
        char = sql[position]
        if char in "'\"":
            end = position + 1
            while end < length:
                if sql[end] == char:
                    if end + 1 < length and sql[end + 1] == char:
                        end += 2
                        continue
                    break
                end += 1
            yield "quoted", sql[position : end + 1]
            position = end + 1
        elif sql.startswith("--", position):
            end = sql.find("\n", position)
            end = length if end < 0 else end
            yield "comment", sql[position:end]
            position = end
        elif sql.startswith("/*", position):
            end = sql.find("*/", position + 2)
            end = length if end < 0 else end + 2
            yield "comment", sql[position:end]
            position = end
        elif char == "?":
            yield "mark", char
            position += 1
        else:
            end = position
            while end < length and sql[end] not in "'\"?-/":
                end += 1
            if end == position:  # a lone '-' or '/'
                end += 1
            yield "code", sql[position:end]
            position = end


def bind_parameters(sql: str, parameters: Sequence[str]) -> str:
    """`sql` with each `?` replaced by the next parameter, a SQL literal as Athena takes it."""
    tokens = list(sql_tokens(sql))
    marks = sum(1 for kind, _ in tokens if kind == "mark")
    if marks != len(parameters):
        raise QueryError(f"Incorrect number of parameters: expected {marks} but found {len(parameters)}")
    if not marks:
        return sql
    values = iter(_parameter_expression(p) for p in parameters)
    return "".join(next(values) if kind == "mark" else text for kind, text in tokens)


def _parameter_expression(parameter: str) -> str:
    """The parameter in parentheses, once it is known to be one constant expression."""
    import duckdb

    code = "".join(text for kind, text in sql_tokens(parameter) if kind == "code")
    depth = 0
    for char in code:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            break
    if not parameter.strip() or depth != 0 or any(c in code for c in ",;"):
        raise QueryError(f"Execution parameter {parameter!r} is not a single SQL value")
    with bare_connection() as connection:
        try:
            node = parsed_select(connection, f"SELECT ({parameter})")
            if (
                node.get("select_list") is None
                or len(node["select_list"]) != 1
                or node.get("from_table", {}).get("type") != "EMPTY"
            ):
                raise QueryError(f"Execution parameter {parameter!r} is not a single SQL value")
            connection.sql(f"SELECT ({parameter})").fetchall()  # a column reference or a bad literal fails here
        except duckdb.Error as exc:
            raise QueryError(f"Execution parameter {parameter!r}: {exc}") from None
    return f"({parameter})"


@contextmanager
def bare_connection() -> Iterator[Any]:
    """A DuckDB connection with no table, no file access and no extension download (for parsing)."""
    import duckdb

    connection = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False})
    try:
        connection.execute("SET enable_external_access = false")
        yield connection
    finally:
        connection.close()


def parsed_select(connection: Any, sql: str) -> dict[str, Any]:
    """DuckDB's syntax tree of the one statement in `sql` (its top node), {} if it does not parse."""
    parsed = json.loads(connection.sql("SELECT json_serialize_sql(?)", params=[sql]).fetchall()[0][0])
    statements = [] if parsed.get("error") else parsed.get("statements", [])
    return dict(statements[0]["node"]) if len(statements) == 1 else {}


# -- running --------------------------------------------------------------------------------------
_QUERY_LOCK = threading.Lock()
_OBJECT_CACHE: dict[tuple[str, str], Path] = {}
_CACHE_DIR: Path | None = None


def _cache_dir() -> Path:
    """Copies of lake objects, kept between queries (an object is immutable once written; keyed by its ETag)."""
    global _CACHE_DIR
    if _CACHE_DIR is None:
        _CACHE_DIR = Path(tempfile.mkdtemp(prefix="ecrm-athena-objects-"))
    return _CACHE_DIR


def run_query(
    sql: str,
    *,
    database: str,
    account: str,
    region: str,
    keep_arrow: bool = False,
    parameters: Sequence[Any] | None = None,
) -> QueryRun:
    """Run one SELECT over moto's Glue tables and S3 objects; Athena's columns and value text.

    `keep_arrow`: the rows as Arrow instead (UNLOAD writes them; `infra.local.lake` reads them as
    Python values). `parameters`: Python values bound to `?` by DuckDB (the local lake's; Athena's
    ExecutionParameters are SQL text, bound before, by `bind_parameters`).

    Queries run one at a time (the local cloud has a couple of cores; parallel DuckDB runs over the
    same copies only thrash), and objects are copied out of moto's S3 once, then reused.
    """
    with _QUERY_LOCK:
        return _run_query(sql, database, account, region, keep_arrow, list(parameters or []))


def _run_query(sql: str, database: str, account: str, region: str, keep_arrow: bool, parameters: list[Any]) -> QueryRun:
    import duckdb

    with tempfile.TemporaryDirectory(prefix="ecrm-athena-") as workdir:
        connection = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False})
        try:
            connection.execute("SET TimeZone = 'UTC'")
            connection.execute(f"ATTACH ':memory:' AS {CATALOG}")
            lake = LakeTables(
                connection, Path(workdir), account=account, region=region, with_path=names_path_column(sql)
            )
            lake.create_schema(database)
            for schema, table in referenced_tables(connection, sql, database):
                lake.create_view(schema, table)
            connection.execute(f"USE {CATALOG}.{quote_identifier(database)}")
            for name, (arguments, body) in TRINO_MACROS.items():
                connection.execute(f"CREATE OR REPLACE TEMP MACRO {name}({arguments}) AS {body}")
            connection.execute(
                f"SET allowed_directories = [{sql_string(workdir + '/')}, {sql_string(str(_cache_dir()) + '/')}]"
            )
            connection.execute("SET enable_external_access = false")
            connection.execute("SET lock_configuration = true")
            started = time.monotonic()
            try:
                relation = connection.sql(sql, params=parameters or None)
                names, types = list(relation.columns), [str(t) for t in relation.types]
                table = relation.to_arrow_table()
            except duckdb.Error as exc:
                raise QueryError(str(exc)) from None
            engine_ms = int((time.monotonic() - started) * 1000)
            if keep_arrow:
                return QueryRun(arrow=table, scanned_bytes=lake.scanned_bytes, engine_ms=engine_ms)
            columns = [
                ResultColumn.of(name, kind)
                for name, kind in zip(output_names(connection, sql, names), types, strict=True)
            ]
            values = [table.column(index).to_pylist() for index in range(table.num_columns)]
            rows = [
                [athena_text(value, kind) for value, kind in zip(row, types, strict=True)]
                for row in zip(*values, strict=True)
            ]
            return QueryRun(columns=columns, rows=rows, scanned_bytes=lake.scanned_bytes, engine_ms=engine_ms)
        finally:
            connection.close()


def referenced_tables(connection: Any, sql: str, database: str) -> set[tuple[str, str]]:
    """(database, table) of every table `sql` names, resolved as Athena resolves them (CTE names too)."""
    found = set()
    for reference in _base_tables(parsed_select(connection, sql)):
        catalog = str(reference.get("catalog_name") or CATALOG).lower()
        schema = str(reference.get("schema_name") or database).lower()
        if catalog == CATALOG:
            found.add((schema, str(reference["table_name"]).lower()))
    return found


def _base_tables(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("type") == "BASE_TABLE" and node.get("table_name"):
            yield node
        for value in node.values():
            yield from _base_tables(value)
    elif isinstance(node, list):
        for value in node:
            yield from _base_tables(value)


def output_names(connection: Any, sql: str, names: list[str]) -> list[str]:
    """Athena's column names: aliases and column names in lower case, `_colN` for other expressions."""
    lowered = [name.lower() for name in names]
    node = parsed_select(connection, sql)
    while node.get("type") == "SET_OPERATION_NODE":
        node = (node.get("children") or [node.get("left")])[0] or {}
    select_list = node.get("select_list") or []
    stars = [e for e in select_list if e.get("class") == "STAR"]
    if node.get("from_table", {}).get("type") == "EXPRESSION_LIST" and len(select_list) == len(stars) == 1:
        return [f"_col{index}" for index in range(len(names))]  # a bare VALUES list
    if len(stars) > 1 or (not stars and len(select_list) != len(names)):
        return lowered
    width = len(names) - len(select_list) + 1 if stars else 0
    result: list[str] = []
    for expression in select_list:
        if expression.get("class") == "STAR":
            result.extend(lowered[len(result) : len(result) + width])
        elif expression.get("alias"):
            result.append(expression["alias"].lower())
        elif expression.get("class") == "COLUMN_REF":
            result.append(expression["column_names"][-1].lower())
        else:
            result.append(f"_col{len(result)}")
    return result if len(result) == len(names) else lowered


# -- the lake's tables ----------------------------------------------------------------------------
@dataclass(frozen=True)
class LakeObject:
    """A Parquet object of a table, copied to `path`, with its partition values (as text)."""

    path: Path
    size: int
    partition: dict[str, str | None]
    url: str = ""


class LakeTables:
    """Glue databases as DuckDB schemas and Glue tables as views over their objects' copies."""

    def __init__(self, connection: Any, workdir: Path, *, account: str, region: str, with_path: bool = False) -> None:
        from moto.glue.models import glue_backends
        from moto.s3.models import s3_backends
        from moto.utilities.utils import get_partition

        self.connection = connection
        self.workdir = workdir
        self.glue = glue_backends[account][region]
        self.s3 = s3_backends[account][get_partition(region)]
        self.schemas: set[str] = set()
        self.with_path = with_path
        self.scanned_bytes = 0
        self._copies = 0

    def create_schema(self, database: str) -> None:
        if database not in self.schemas:
            self.connection.execute(f"CREATE SCHEMA {CATALOG}.{quote_identifier(database)}")
            self.schemas.add(database)

    def create_view(self, database: str, name: str) -> None:
        table = self._glue_table(database, name)
        if table is None:
            return  # DuckDB then says the table does not exist, as Athena would
        self.create_schema(database)
        descriptor = table.get("StorageDescriptor") or {}
        columns = [(c["Name"], c["Type"]) for c in descriptor.get("Columns", [])]
        keys = [(c["Name"], c["Type"]) for c in table.get("PartitionKeys") or []]
        if table.get("TableType") == "VIRTUAL_VIEW":
            raise QueryError(f"{database}.{name} is a view: the local cloud reads Glue tables only")
        serde = str((descriptor.get("SerdeInfo") or {}).get("SerializationLibrary", "")).lower()
        input_format = str(descriptor.get("InputFormat", "")).lower()
        if "parquet" not in serde + input_format and (table.get("Parameters") or {}).get("classification") != "parquet":
            raise QueryError(f"{database}.{name}: the local cloud reads Parquet tables only")
        objects = list(self._objects(table, [key for key, _ in keys]))
        self.scanned_bytes += sum(o.size for o in objects)
        self.connection.execute(
            f"CREATE VIEW {CATALOG}.{quote_identifier(database)}.{quote_identifier(name)} AS "
            + self._view_sql(objects, columns, keys)
        )

    def _glue_table(self, database: str, name: str) -> dict[str, Any] | None:
        """The Glue table, names compared in lower case as Athena does."""
        for db_name, db in self.glue.databases.items():
            if db_name.lower() == database:
                for table_name, table in db.tables.items():
                    if table_name.lower() == name:
                        described: dict[str, Any] = table.as_dict()
                        return described
        return None

    def _objects(self, table: dict[str, Any], keys: list[str]) -> Iterator[LakeObject]:
        parameters = table.get("Parameters") or {}
        location = (table.get("StorageDescriptor") or {}).get("Location") or ""
        if not keys:
            for url, size, item in self._listing(location):
                yield self._copy(url, item, size, {})
        elif str(parameters.get("projection.enabled", "")).lower() == "true":
            template = parameters.get("storage.location.template") or (
                location.rstrip("/") + "/" + "/".join(f"{k}=${{{k}}}" for k in keys) + "/"
            )
            pattern = _template_pattern(template, keys)
            folder = template.split("${", 1)[0].rsplit("/", 1)[0] + "/"
            for key, size, item in self._listing(folder):
                match = pattern.match(key)
                if match:
                    values = {k: _partition_value(match.group(f"p{i}")) for i, k in enumerate(keys)}
                    yield self._copy(key, item, size, values)
        else:  # only the partitions registered in Glue, as Athena reads them
            db, name = table["DatabaseName"], table["Name"]
            for partition in self.glue.get_table(db, name).partitions.values():
                described = partition.as_dict()
                values = dict(zip(keys, described.get("Values") or [], strict=False))
                for url, size, item in self._listing((described.get("StorageDescriptor") or {}).get("Location", "")):
                    yield self._copy(url, item, size, values)

    def _listing(self, location: str) -> Iterator[tuple[str, int, Any]]:
        """(s3:// url, size, moto's object) of the objects under a location Athena would read."""
        from moto.s3.exceptions import MissingBucket

        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        try:
            found = self.s3.list_objects(self.s3.get_bucket(bucket), prefix or None, None, None, None)[0]
        except MissingBucket:
            raise QueryError(f"{location}: the bucket {bucket} does not exist") from None
        for item in found:
            relative = item.name[len(prefix) :]
            if item.name.endswith("/") or not item.size or item.name.endswith("_$folder$"):
                continue
            if any(part.startswith(("_", ".")) for part in relative.split("/")):
                continue
            yield f"s3://{bucket}/{item.name}", int(item.size), item

    def _copy(self, url: str, item: Any, size: int, partition: dict[str, str | None]) -> LakeObject:
        cache_key = (url, str(getattr(item, "etag", "")) + f":{size}")
        path = _OBJECT_CACHE.get(cache_key)
        if path is None or not path.exists():
            self._copies += 1
            path = _cache_dir() / f"{len(_OBJECT_CACHE)}-{self._copies}.parquet"
            path.write_bytes(bytes(item.value))
            _OBJECT_CACHE[cache_key] = path
        return LakeObject(path, size, partition, url)

    def _view_sql(self, objects: list[LakeObject], columns: list[tuple[str, str]], keys: list[tuple[str, str]]) -> str:
        """The view's SELECT: the Glue columns by name (NULL where no file has one), then the partition keys.

        Every name is quoted and every value a literal: what is built here is the catalog, not user input.
        """

        def cast(source: str | None, name: str, kind: str) -> str:
            value = "NULL" if source is None else f"{source}.{quote_identifier(name)}"
            return f"CAST({value} AS {duckdb_type(kind)}) AS {quote_identifier(name)}"

        hidden = [(PATH_COLUMN, "string")] if self.with_path else []
        if not objects:  # Athena answers an empty table with no rows, and its columns
            return "SELECT " + ", ".join(cast(None, n, kind) for n, kind in [*columns, *keys, *hidden]) + " WHERE false"
        files = ", ".join(sql_string(str(o.path)) for o in objects)
        source = f"read_parquet([{files}], union_by_name = true, hive_partitioning = false, filename = '__ecrm_file')"
        described = self.connection.sql("DESCRIBE SELECT * FROM " + source).fetchall()  # noqa: S608
        present = {str(row[0]).lower() for row in described}
        selected = [cast("data" if n.lower() in present else None, n, kind) for n, kind in columns]
        selected += [cast("part", n, kind) for n, kind in [*keys, *hidden]]
        sql = "SELECT " + ", ".join(selected) + " FROM " + source + " AS data"  # noqa: S608
        if keys or hidden:
            rows = ", ".join(
                "("
                + ", ".join(
                    [
                        sql_string(str(o.path)),
                        *(_sql_value(o.partition.get(n)) for n, _ in keys),
                        *([sql_string(o.url)] if hidden else []),
                    ]
                )
                + ")"
                for o in objects
            )
            names = ", ".join(["__ecrm_file", *(quote_identifier(n) for n, _ in [*keys, *hidden])])
            sql += f" JOIN (VALUES {rows}) AS part({names}) ON part.__ecrm_file = data.__ecrm_file"
        return sql


def _template_pattern(template: str, keys: list[str]) -> re.Pattern[str]:
    pattern = re.escape(template)
    for index, key in enumerate(keys):
        pattern = pattern.replace(re.escape("${" + key + "}"), f"(?P<p{index}>[^/]+)", 1)
    return re.compile(pattern if pattern.endswith("/") else pattern + "/")


def _partition_value(text: str) -> str | None:
    value = urllib.parse.unquote(text)
    return None if value == "__HIVE_DEFAULT_PARTITION__" else value


# -- types and values -----------------------------------------------------------------------------
_SIMPLE_GLUE_TYPES = {
    "string": "VARCHAR",
    "boolean": "BOOLEAN",
    "tinyint": "TINYINT",
    "smallint": "SMALLINT",
    "int": "INTEGER",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "float": "FLOAT",
    "real": "FLOAT",
    "double": "DOUBLE",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "binary": "BLOB",
}


def duckdb_type(glue_type: str) -> str:
    """The DuckDB type of a Glue (Hive) column type, nested types included."""
    kind = glue_type.strip()
    lower = kind.lower()
    if lower.startswith("array<") and lower.endswith(">"):
        return duckdb_type(kind[6:-1]) + "[]"
    if lower.startswith("map<") and lower.endswith(">"):
        key, value = _split_top_level(kind[4:-1])
        return f"MAP({duckdb_type(key)}, {duckdb_type(value)})"
    if lower.startswith("struct<") and lower.endswith(">"):
        fields = [member.split(":", 1) for member in _split_top_level(kind[7:-1])]
        return "STRUCT(" + ", ".join(f"{quote_identifier(n.strip())} {duckdb_type(t)}" for n, t in fields) + ")"
    if lower.startswith(("varchar", "char")):
        return "VARCHAR"
    if lower.startswith("decimal"):
        match = re.fullmatch(r"decimal\s*\((\d+)\s*,\s*(\d+)\)", lower)
        return f"DECIMAL({match.group(1)}, {match.group(2)})" if match else "DECIMAL(10, 0)"
    try:
        return _SIMPLE_GLUE_TYPES[lower]
    except KeyError:
        raise QueryError(f"the local cloud does not read Glue type {glue_type!r}") from None


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += {"<": 1, "(": 1, ">": -1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    return [*parts, text[start:]]


# DuckDB type -> (Athena type name, Precision, Scale) in ColumnInfo
_ATHENA_TYPES = {
    "VARCHAR": ("varchar", 2147483647, 0),
    "BOOLEAN": ("boolean", 0, 0),
    "TINYINT": ("tinyint", 3, 0),
    "SMALLINT": ("smallint", 5, 0),
    "INTEGER": ("integer", 10, 0),
    "BIGINT": ("bigint", 19, 0),
    "HUGEINT": ("bigint", 19, 0),  # DuckDB's sum/count_if of integers; Athena's are bigint
    "UTINYINT": ("smallint", 5, 0),
    "USMALLINT": ("integer", 10, 0),
    "UINTEGER": ("bigint", 19, 0),
    "UBIGINT": ("bigint", 19, 0),
    "FLOAT": ("float", 7, 0),
    "DOUBLE": ("double", 17, 0),
    "DATE": ("date", 0, 0),
    "TIME": ("time", 3, 0),
    "TIMESTAMP": ("timestamp", 3, 0),
    "TIMESTAMP_S": ("timestamp", 3, 0),
    "TIMESTAMP_MS": ("timestamp", 3, 0),
    "TIMESTAMP_NS": ("timestamp", 3, 0),
    "TIMESTAMP WITH TIME ZONE": ("timestamp with time zone", 3, 0),
    "INTERVAL": ("interval day to second", 0, 0),
    "BLOB": ("varbinary", 2147483647, 0),
    "UUID": ("uuid", 0, 0),
    "JSON": ("json", 0, 0),
    '"NULL"': ("unknown", 0, 0),
}


@dataclass(frozen=True)
class ResultColumn:
    name: str
    type: str
    precision: int
    scale: int

    @classmethod
    def of(cls, name: str, duckdb_type_name: str) -> ResultColumn:
        kind = duckdb_type_name.upper()
        if kind.endswith("]"):
            return cls(name, "array", 0, 0)
        if kind.startswith("STRUCT"):
            return cls(name, "row", 0, 0)
        if kind.startswith("MAP"):
            return cls(name, "map", 0, 0)
        match = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", kind)
        if match:
            return cls(name, "decimal", int(match.group(1)), int(match.group(2)))
        athena, precision, scale = _ATHENA_TYPES.get(kind, ("varchar", 2147483647, 0))
        return cls(name, athena, precision, scale)

    def info(self) -> dict[str, Any]:
        """Athena's ColumnInfo."""
        return {
            "CatalogName": "hive",
            "SchemaName": "",
            "TableName": "",
            "Name": self.name,
            "Label": self.name,
            "Type": self.type,
            "Precision": self.precision,
            "Scale": self.scale,
            "Nullable": "UNKNOWN",
            "CaseSensitive": self.type in {"varchar", "char"},
        }


def athena_text(value: Any, duckdb_type_name: str = "") -> str | None:
    """A value as Athena writes it in its CSV and in VarCharValue (None for NULL)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return java_float(value) if duckdb_type_name.upper() == "FLOAT" else java_double(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return _timestamp_text(value.astimezone(UTC)) + " UTC"
        return _timestamp_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, clock_time):
        return value.strftime("%H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, timedelta):
        return _interval_text(value.days, value.seconds * 10**9 + value.microseconds * 1000, 0)
    if hasattr(value, "months") and hasattr(value, "nanoseconds"):  # Arrow's MonthDayNano
        return _interval_text(value.days, value.nanoseconds, value.months)
    if isinstance(value, bytes):
        return " ".join(f"{byte:02x}" for byte in value)
    if isinstance(value, list) and value and all(isinstance(item, tuple) and len(item) == 2 for item in value):
        return "{" + ", ".join(f"{_nested(k)}={_nested(v)}" for k, v in value) + "}"  # Arrow's map entries
    if isinstance(value, list):
        return "[" + ", ".join(_nested(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_nested(v)}" for k, v in value.items()) + "}"
    return str(value)


def _nested(value: Any) -> str:
    text = athena_text(value)
    return "null" if text is None else text


def _timestamp_text(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"


def _interval_text(days: int, nanoseconds: int, months: int) -> str:
    if months:
        return f"{months // 12}-{months % 12}"
    total_ms = (days * 86_400_000_000_000 + nanoseconds) // 1_000_000
    sign, total_ms = ("-" if total_ms < 0 else ""), abs(total_ms)
    seconds, millis = divmod(total_ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    day, hours = divmod(hours, 24)
    return f"{sign}{day} {hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def java_double(value: float) -> str:
    """`Double.toString` (what Athena prints for a double): 2.5, 1.0E7, 1.5E-5, NaN, Infinity."""
    return _java_number(value, repr(value))


def java_float(value: float) -> str:
    """`Float.toString` (Athena's real): the shortest text that reads back as the same float32."""
    if math.isnan(value) or math.isinf(value):
        return _java_number(value, repr(value))
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == value:
            return _java_number(value, text)
    return _java_number(value, repr(value))


def _java_number(value: float, shortest: str) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1, value) < 0 else "0.0"
    sign, digits, exponent = Decimal(shortest).as_tuple()
    assert isinstance(exponent, int)
    magnitude = len(digits) + exponent - 1  # the power of ten of the first digit
    text = "".join(map(str, digits)).rstrip("0") or "0"
    minus = "-" if sign else ""
    if -3 <= magnitude < 7:
        if magnitude < 0:
            return f"{minus}0.{'0' * (-magnitude - 1)}{text}"
        whole, fraction = text[: magnitude + 1].ljust(magnitude + 1, "0"), text[magnitude + 1 :]
        return f"{minus}{whole}.{fraction or '0'}"
    return f"{minus}{text[0]}.{text[1:] or '0'}E{magnitude}"


# -- the result object ----------------------------------------------------------------------------
def athena_csv(names: Sequence[str], rows: Sequence[Sequence[str | None]]) -> bytes:
    """Athena's result CSV: header, values in double quotes (quotes doubled), NULL as nothing."""

    def field_text(value: str | None) -> str:
        return "" if value is None else '"' + value.replace('"', '""') + '"'

    lines = [",".join(field_text(name) for name in names)]
    lines += [",".join(field_text(value) for value in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def write_result(account: str, region: str, output_location: str, run: QueryRun) -> None:
    """Put the result CSV at the execution's OutputLocation (`.../<id>.csv`) in moto's S3."""
    from moto.s3.exceptions import MissingBucket
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    bucket, _, key = output_location.removeprefix("s3://").partition("/")
    body = athena_csv([column.name for column in run.columns], run.rows)
    try:
        s3_backends[account][get_partition(region)].put_object(bucket, key, body)
    except MissingBucket:
        raise QueryError(f"Unable to verify/create output bucket {bucket}") from None


# -- provisioning ---------------------------------------------------------------------------------
def work_group_arguments(name: str, properties: dict[str, Any], service_model: Any) -> dict[str, Any]:
    """`CreateWorkGroup` arguments from a resolved `AWS::Athena::WorkGroup`.

    CloudFormation's `WorkGroupConfiguration` is the API's `Configuration`; what the API does not
    know is dropped with a warning, and numbers and booleans written as strings are converted.
    """
    shape = service_model.operation_model("CreateWorkGroup").input_shape
    given = {"Name": name, "Configuration": properties.get("WorkGroupConfiguration") or {}}
    for key in ("Description", "Tags"):
        if key in properties:
            given[key] = properties[key]
    if str(properties.get("State", "ENABLED")).upper() != "ENABLED":
        logger.warning("Athena: work group %s is %s in the template; moto keeps it ENABLED", name, properties["State"])
    return dict(_api_value(shape, given, path=""))


def _api_value(shape: Any, value: Any, *, path: str) -> Any:
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in shape.members:
                out[key] = _api_value(shape.members[key], item, path=f"{path}{key}.")
            else:
                logger.warning("Athena: the API has no %s%s; the local cloud leaves it out", path, key)
        return out
    if kind == "list" and isinstance(value, list):
        return [_api_value(shape.member, item, path=path) for item in value]
    if kind in {"integer", "long"} and isinstance(value, str):
        return int(value)
    if kind == "boolean" and isinstance(value, str):
        return value.lower() == "true"
    return value


# -- helpers --------------------------------------------------------------------------------------
def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_value(text: str | None) -> str:
    return "NULL" if text is None else sql_string(text)
