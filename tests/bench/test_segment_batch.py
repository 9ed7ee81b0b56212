"""Batch segment evaluation: the compiled audience SQL over a million profiles, beside an analyst's query.

Workload (seeded, written before anything is timed): ECRM_BENCH_SEGMENT_PROFILES customers
(default 1,000,000) in the two lake tables exactly as the analysis engine writes them, as Parquet
(snappy, as Firehose's conversion writes it; timestamps `timestamp('ms', tz='UTC')`), in files of
at most 1,000,000 rows in arrival order:
- `segment_profiles` (`profile_columns(DEFAULT_CATALOG)`): one row per customer, a second, older
  version with other values for about a third of them, about 1% whose latest version is deleted;
- `behaviour_events` (`BEHAVIOUR_EVENT_COLUMNS`): about 8 events per customer on average (a skewed
  number per customer) over two years, some after `now`: orders (amount in quarters, so totals
  are exact in binary floating point whatever the order of the additions; category, product,
  channel), email deliveries, opens and clicks, page views, segment entries and exits; 2% of the
  events delivered twice (the same row, recorded later).

Measured, DuckDB on ECRM_BENCH_SEGMENT_THREADS threads (default 1, so the figure is per core),
over views `lake.segment_profiles` / `lake.behaviour_events` on `read_parquet` of the files, each
query run once untimed then REPEAT times, fetching the ids as Arrow, in CPU time (the process's,
DuckDB's threads included, so other work on the machine does not inflate it; wall time beside):
- ours: `audience_sql(rule, now=..., tables=LakeTables.in_database("lake"))`;
- reference: the same predicate written by hand the way an analyst would on DuckDB: the latest
  profile version by `arg_max` over only the columns the rule reads, each behaviour condition a
  `GROUP BY` over events filtered first on type and window (`count(DISTINCT event_id)` or a
  `DISTINCT` for the duplicates).

The first version of `audience_sql` deduplicated events with `row_number() OVER (PARTITION BY
customer_id, event_id ...)` over every event before any condition filtered them, and took the
latest profile with a window sort: 7 to 9.5 times the reference on rules reading events. It now
keeps only the events some condition reads, deduplicates by a two-level GROUP BY and takes the
latest profile by a join on `max(version)`; the property test proves it still selects what the
predicate selects.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from ecrm.analysis.predicate import period_start
from ecrm.analysis.rules import DEFAULT_CATALOG, SEGMENT_ENTERED, SEGMENT_EXITED, Rule
from ecrm.analysis.segment_sql import (
    BEHAVIOUR_EVENT_COLUMNS,
    BEHAVIOUR_EVENTS,
    SEGMENT_PROFILES,
    LakeTables,
    audience_sql,
    profile_columns,
)
from pydantic import TypeAdapter

from tests.bench.harness import measure, report

PROFILES = int(os.environ.get("ECRM_BENCH_SEGMENT_PROFILES", "1000000"))
THREADS = int(os.environ.get("ECRM_BENCH_SEGMENT_THREADS", "1"))
REPEAT = 3
EVENTS_PER_CUSTOMER = 8.0
ROWS_PER_FILE = 1_000_000
NOW = datetime(2026, 11, 23, 10, 30, 15, tzinfo=UTC)
DAY_MS = 86_400_000
CROCKFORD = np.frombuffer(b"0123456789ABCDEFGHJKMNPQRSTVWXYZ", dtype=np.uint8)
TABLES = LakeTables.in_database("lake")
RULE: TypeAdapter[Rule] = TypeAdapter(Rule)

WINBACK = "seg_01KB3W1NBACK0000000000000"
SEGMENT_IDS = [WINBACK, *(f"seg_01KB3SEGMENT{n:014d}" for n in range(1, 8))]
COUNTRIES = (["FR", "BE", "DE", "ES", "IT", "NL", "GB", "US"], [0.30, 0.08, 0.15, 0.10, 0.10, 0.05, 0.15, 0.07])
CATEGORIES = (["shoes", "bags", "clothing", "accessories", "beauty", "home"], [0.22, 0.12, 0.30, 0.14, 0.12, 0.10])
# event type: (share, channels, has amount and category, source)
EVENT_TYPES: dict[str, tuple[float, list[str], bool, str]] = {
    "order_completed": (0.20, ["web", "app", "store"], True, "shop"),
    "email_delivered": (0.30, ["email"], False, "broadcast"),
    "email_opened": (0.16, ["email"], False, "broadcast"),
    "email_clicked": (0.06, ["email"], False, "broadcast"),
    "page_viewed": (0.22, ["web", "app"], True, "collect"),
    SEGMENT_ENTERED: (0.04, [], False, "analysis"),
    SEGMENT_EXITED: (0.02, [], False, "analysis"),
}
_ARROW = {
    "string": pa.string(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "bigint": pa.int64(),
    "timestamp": pa.timestamp("ms", tz="UTC"),
}


# -- the lake, generated -----------------------------------------------------------------------------------------------
def ulids(prefix: str, millis: np.ndarray, rng: np.random.Generator) -> pa.Array:
    """Time-ordered ids (`new_id` layout: 10 characters of time, 16 random) for epoch milliseconds."""
    shifts = np.arange(45, -1, -5, dtype=np.int64)
    time_part = CROCKFORD[(millis[:, None] >> shifts) & 31]
    random_part = CROCKFORD[rng.integers(0, 32, (len(millis), 16))]
    head = np.broadcast_to(np.frombuffer(prefix.encode(), dtype=np.uint8), (len(millis), len(prefix)))
    text = np.ascontiguousarray(np.concatenate([head, time_part, random_part], axis=1))
    return pa.array(text.view(f"S{text.shape[1]}").ravel()).cast(pa.string())


def pick(
    rng: np.random.Generator,
    values: list[Any],
    size: int,
    *,
    p: list[float] | None = None,
    missing: float = 0.0,
    only: np.ndarray | None = None,
) -> pa.Array:
    """`size` values drawn from `values` (with weights `p`), a share `missing` null, and null outside `only`."""
    weights = None if p is None else np.asarray(p) / np.sum(p)
    indices = rng.choice(len(values), size=size, p=weights).astype(np.int32)
    mask = rng.random(size) < missing if missing else np.zeros(size, dtype=bool)
    if only is not None:
        mask |= ~only
    return pa.array(values).take(pa.array(indices, mask=mask))


def numbers(values: np.ndarray, rng: np.random.Generator, missing: float) -> pa.Array:
    return pa.array(values, mask=rng.random(len(values)) < missing)


def profile_values(rng: np.random.Generator, size: int) -> dict[str, pa.Array]:
    """One version of `size` profiles: the catalogue's attributes and traits, consents, identity kinds."""
    born = (np.datetime64("1945-01-01") + rng.integers(0, 61 * 365, size)).astype("datetime64[D]")
    values: dict[str, pa.Array] = {
        "a_country": pick(rng, COUNTRIES[0], size, p=COUNTRIES[1], missing=0.05),
        "a_city": pick(rng, [f"City {n}" for n in range(400)], size, missing=0.15),
        "a_postal_code": pick(rng, [f"{n:05d}" for n in range(1000, 96000, 7)], size, missing=0.2),
        "a_language": pick(rng, ["fr", "en", "de", "nl", "es", "it"], size, missing=0.05),
        "a_tier": pick(rng, ["bronze", "silver", "gold", "platinum"], size, p=[0.55, 0.27, 0.14, 0.04], missing=0.1),
        "a_gender": pick(rng, ["f", "m", "x"], size, p=[0.52, 0.45, 0.03], missing=0.3),
        "a_birth_date": pa.array(born, mask=rng.random(size) < 0.25).cast(pa.date32()),
        "t_rfm_segment": pick(
            rng, ["champions", "loyal", "potential", "new", "at_risk", "hibernating", "lost"], size, missing=0.1
        ),
        "t_rfm_recency": numbers(rng.integers(1, 6, size).astype(float), rng, 0.1),
        "t_rfm_frequency": numbers(rng.integers(1, 6, size).astype(float), rng, 0.1),
        "t_rfm_monetary": numbers(rng.integers(1, 6, size).astype(float), rng, 0.1),
        "t_cluster": pick(rng, [f"c{n}" for n in range(6)], size, missing=0.1),
        "t_churn_risk": numbers(rng.beta(2, 4, size), rng, 0.1),
        "t_clv": numbers(rng.lognormal(5, 1, size), rng, 0.1),
        "t_p_alive": numbers(rng.random(size), rng, 0.1),
        "t_expected_orders_90d": numbers(rng.gamma(1, 0.8, size), rng, 0.1),
        "t_orders": numbers(rng.poisson(3, size).astype(float), rng, 0.1),
        "t_revenue": numbers(rng.lognormal(5, 1.2, size).round(2), rng, 0.1),
    }
    for channel in DEFAULT_CATALOG.consent_channels:
        for purpose in DEFAULT_CATALOG.consent_purposes:
            values[f"c_{channel}_{purpose}"] = pick(rng, ["granted", "denied"], size, p=[0.75, 0.25], missing=0.3)
    for kind, share in zip(DEFAULT_CATALOG.identity_kinds, [0.9, 0.5, 0.3, 0.2, 0.4], strict=False):
        values[f"i_{kind}"] = pa.array(rng.random(size) < share)
    return values


def segment_profiles(rng: np.random.Generator, customer_ids: pa.Array, created_ms: np.ndarray) -> pa.Table:
    """Every customer's latest version, plus an older one (other values) for about a third; 1% deleted."""
    size = len(customer_ids)
    older = np.flatnonzero(rng.random(size) < 0.35)
    owners = np.concatenate([np.arange(size), older])
    rows = len(owners)
    now_ms = int(NOW.timestamp() * 1000)
    latest_at = created_ms + ((now_ms - created_ms) * rng.random(size)).astype(np.int64)
    older_at = created_ms[older] + ((latest_at[older] - created_ms[older]) * rng.random(len(older))).astype(np.int64)
    latest_version = rng.integers(1, 40, size) + 1
    older_version = np.maximum(1, latest_version[older] - rng.integers(1, 10, len(older)))
    deleted = np.concatenate([rng.random(size) < 0.01, np.zeros(len(older), dtype=bool)])
    columns: dict[str, pa.Array] = {
        "customer_id": customer_ids.take(pa.array(owners)),
        "version": pa.array(np.concatenate([latest_version, older_version]).astype(np.int64)),
        "deleted": pa.array(deleted),
        "updated_at": pa.array(np.concatenate([latest_at, older_at]), type=pa.timestamp("ms", tz="UTC")),
    }
    latest, previous = profile_values(rng, size), profile_values(rng, len(older))
    columns |= {name: pa.concat_arrays([latest[name], previous[name]]) for name in latest}
    table = _table(columns, profile_columns(DEFAULT_CATALOG), rows)
    return table.take(pa.array(np.argsort(np.concatenate([latest_at, older_at]), kind="stable")))


def behaviour_events(rng: np.random.Generator, customer_ids: pa.Array) -> pa.Table:
    """A skewed number of events per customer, mostly recent, a few after `now`; 2% delivered twice."""
    size = len(customer_ids)
    per_customer = rng.poisson(rng.gamma(1.5, EVENTS_PER_CUSTOMER / 1.5, size))
    owners = np.repeat(np.arange(size), per_customer)
    count = len(owners)
    names = list(EVENT_TYPES)
    kinds = rng.choice(len(names), size=count, p=[EVENT_TYPES[n][0] for n in names])
    now_ms = int(NOW.timestamp() * 1000)
    ago = np.minimum(rng.exponential(200 * DAY_MS, count), 730 * DAY_MS).astype(np.int64)
    ahead = rng.random(count) < 0.002  # clocks ahead, late timestamps: never counted
    occurred = np.where(ahead, now_ms + rng.integers(1, 3 * DAY_MS, count), now_ms - ago)
    recorded = occurred + rng.exponential(30_000, count).astype(np.int64)

    is_order = kinds == names.index("order_completed")
    with_category = np.isin(kinds, [names.index(n) for n in names if EVENT_TYPES[n][2]])
    is_segment = np.isin(kinds, [names.index(SEGMENT_ENTERED), names.index(SEGMENT_EXITED)])
    quarters = np.maximum(1, np.round(rng.lognormal(np.log(70), 0.8, count) * 4))
    channel_of_kind = pa.array([EVENT_TYPES[n][1][0] if EVENT_TYPES[n][1] else None for n in names])
    channel = if_else(
        is_order,
        pick(rng, EVENT_TYPES["order_completed"][1], count),
        if_else(
            kinds == names.index("page_viewed"),
            pick(rng, EVENT_TYPES["page_viewed"][1], count),
            channel_of_kind.take(pa.array(kinds)),
        ),
    )
    columns: dict[str, pa.Array] = {
        "customer_id": customer_ids.take(pa.array(owners)),
        "event_id": ulids("int_", occurred, rng),
        "event_type": pa.array(names).take(pa.array(kinds)),
        "occurred_at": pa.array(occurred, type=pa.timestamp("ms", tz="UTC")),
        "amount": pa.array(quarters / 4, mask=~is_order | (rng.random(count) < 0.02)),
        "category": pick(rng, CATEGORIES[0], count, p=CATEGORIES[1], only=with_category),
        "channel": channel,
        "product_id": pick(rng, [f"prd_{n:05d}" for n in range(20000)], count, only=with_category),
        "segment_id": pick(rng, SEGMENT_IDS, count, p=[0.3] + [0.1] * 7, only=is_segment),
        "source": pa.array([EVENT_TYPES[n][3] for n in names]).take(pa.array(kinds)),
        "recorded_at": pa.array(recorded, type=pa.timestamp("ms", tz="UTC")),
    }
    table = _table(columns, BEHAVIOUR_EVENT_COLUMNS, count)
    twice = np.flatnonzero(rng.random(count) < 0.02)
    again = table.take(pa.array(twice))
    later = recorded[twice] + rng.integers(1_000, 120_000, len(twice))
    again = again.set_column(
        again.schema.get_field_index("recorded_at"),
        "recorded_at",
        pa.array(later, type=pa.timestamp("ms", tz="UTC")),
    )
    both = pa.concat_tables([table, again])
    return both.take(pa.array(np.argsort(np.concatenate([recorded, later]), kind="stable")))


def if_else(condition: np.ndarray, when_true: pa.Array, when_false: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(condition), when_true, when_false)


def _table(columns: dict[str, pa.Array], schema: list[tuple[str, str]], rows: int) -> pa.Table:
    """The table in the schema's column order and types; a column the generator does not know is all null."""
    arrays = [
        columns[name].cast(_ARROW[kind]) if name in columns else pa.nulls(rows, _ARROW[kind]) for name, kind in schema
    ]
    return pa.Table.from_arrays(arrays, schema=pa.schema([(name, _ARROW[kind]) for name, kind in schema]))


@dataclass(frozen=True)
class Lake:
    directory: Path
    customers: int
    profile_rows: int
    event_rows: int


def write_lake(directory: Path, customers: int, *, seed: int = 7) -> Lake:
    rng = np.random.default_rng(seed)
    now_ms = int(NOW.timestamp() * 1000)
    created_ms = now_ms - rng.integers(DAY_MS, 5 * 365 * DAY_MS, customers)
    customer_ids = ulids("cus_", created_ms, rng)
    rows = {}
    for table_name, build in (
        (SEGMENT_PROFILES, lambda: segment_profiles(rng, customer_ids, created_ms)),
        (BEHAVIOUR_EVENTS, lambda: behaviour_events(rng, customer_ids)),
    ):
        table = build()
        rows[table_name] = table.num_rows
        folder = directory / table_name
        folder.mkdir(parents=True)
        for number, start in enumerate(range(0, table.num_rows, ROWS_PER_FILE)):
            pq.write_table(
                table.slice(start, ROWS_PER_FILE), folder / f"part-{number:04d}.parquet", compression="snappy"
            )
        del table
    return Lake(directory, customers, rows[SEGMENT_PROFILES], rows[BEHAVIOUR_EVENTS])


def open_lake(lake: Lake) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(":memory:")
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute(f"SET threads = {THREADS}")
    connection.execute("CREATE SCHEMA lake")
    for table_name in (SEGMENT_PROFILES, BEHAVIOUR_EVENTS):
        files = (lake.directory / table_name / "*.parquet").as_posix().replace("'", "''")
        connection.execute(f"CREATE VIEW lake.{table_name} AS SELECT * FROM read_parquet('{files}')")
    return connection


# -- the rules, and the analyst's query for each -----------------------------------------------------------------------
def ts(value: datetime) -> str:
    return f"TIMESTAMPTZ '{value.astimezone(UTC):%Y-%m-%d %H:%M:%S}+00'"


LATEST = (
    "latest AS (SELECT customer_id, arg_max({{{columns}}}, version) AS p "
    "FROM lake.segment_profiles GROUP BY customer_id)"
)


@dataclass(frozen=True)
class Case:
    name: str
    rule: dict[str, Any]
    reference: str


CASES = [
    Case(
        "country FR/BE, may receive marketing email",
        {
            "all": [
                {"attribute": "country", "op": "in", "value": ["FR", "BE"]},
                {"consent": "email", "purpose": "marketing"},
            ]
        },
        "WITH "
        + LATEST.format(columns="'deleted': deleted, 'country': a_country, 'email': c_email_marketing")
        + " SELECT customer_id FROM latest WHERE NOT p.deleted AND p.country IN ('FR', 'BE') "
        "AND p.email = 'granted' ORDER BY customer_id",
    ),
    Case(
        "2+ orders in 90 days, no email opened in 30",
        {
            "all": [
                {"event": "order_completed", "window": {"last_days": 90}, "count": {"op": "gte", "value": 2}},
                {"not": {"event": "email_opened", "window": {"last_days": 30}}},
            ]
        },
        "WITH "
        + LATEST.format(columns="'deleted': deleted")
        + f", orders AS (SELECT customer_id FROM lake.behaviour_events WHERE event_type = 'order_completed' "
        f"AND occurred_at > {ts(NOW - timedelta(days=90))} AND occurred_at <= {ts(NOW)} "
        "GROUP BY customer_id HAVING count(DISTINCT event_id) >= 2), "
        "opened AS (SELECT DISTINCT customer_id FROM lake.behaviour_events WHERE event_type = 'email_opened' "
        f"AND occurred_at > {ts(NOW - timedelta(days=30))} AND occurred_at <= {ts(NOW)}) "
        "SELECT l.customer_id FROM latest l JOIN orders o ON o.customer_id = l.customer_id "
        "LEFT JOIN opened e ON e.customer_id = l.customer_id WHERE NOT l.p.deleted AND e.customer_id IS NULL "
        "ORDER BY l.customer_id",
    ),
    Case(
        "over 500 spent on shoes this year",
        {
            "event": "order_completed",
            "where": [{"property": "category", "op": "eq", "value": "shoes"}],
            "window": {"this": "year"},
            "sum": {"op": "gt", "value": 500},
        },
        "WITH "
        + LATEST.format(columns="'deleted': deleted")
        + ", shoes AS (SELECT customer_id FROM (SELECT DISTINCT customer_id, event_id, amount "
        "FROM lake.behaviour_events WHERE event_type = 'order_completed' AND category = 'shoes' "
        f"AND occurred_at >= {ts(period_start('year', NOW))} AND occurred_at <= {ts(NOW)}) "
        "GROUP BY customer_id HAVING sum(amount) > 500) "
        "SELECT l.customer_id FROM latest l JOIN shoes s ON s.customer_id = l.customer_id "
        "WHERE NOT l.p.deleted ORDER BY l.customer_id",
    ),
    Case(
        "gold/platinum at risk, clicked in 30 days or not in win-back",
        {
            "all": [
                {"attribute": "tier", "op": "in", "value": ["gold", "platinum"]},
                {"trait": "churn_risk", "op": "gte", "value": 0.4},
                {
                    "any": [
                        {"event": "email_clicked", "window": {"last_days": 30}},
                        {"not": {"in_segment": WINBACK}},
                    ]
                },
            ]
        },
        "WITH "
        + LATEST.format(columns="'deleted': deleted, 'tier': a_tier, 'churn_risk': t_churn_risk")
        + ", clicked AS (SELECT DISTINCT customer_id FROM lake.behaviour_events WHERE event_type = 'email_clicked' "
        f"AND occurred_at > {ts(NOW - timedelta(days=30))} AND occurred_at <= {ts(NOW)}), "
        "winback AS (SELECT customer_id FROM lake.behaviour_events "
        f"WHERE event_type IN ('{SEGMENT_ENTERED}', '{SEGMENT_EXITED}') AND segment_id = '{WINBACK}' "
        f"AND occurred_at <= {ts(NOW)} GROUP BY customer_id "
        f"HAVING max(occurred_at) FILTER (WHERE event_type = '{SEGMENT_ENTERED}') "
        f"> coalesce(max(occurred_at) FILTER (WHERE event_type = '{SEGMENT_EXITED}'), TIMESTAMPTZ '-infinity')) "
        "SELECT l.customer_id FROM latest l LEFT JOIN clicked c ON c.customer_id = l.customer_id "
        "LEFT JOIN winback w ON w.customer_id = l.customer_id "
        "WHERE NOT l.p.deleted AND p.tier IN ('gold', 'platinum') AND p.churn_risk >= 0.4 "
        "AND (c.customer_id IS NOT NULL OR w.customer_id IS NULL) ORDER BY l.customer_id",
    ),
]


# -- the benchmark -----------------------------------------------------------------------------------------------------
def fetch_ids(connection: duckdb.DuckDBPyConnection, sql: str) -> pa.Array:
    return connection.sql(sql).to_arrow_table().column(0).combine_chunks()


OURS, REFERENCE = "audience_sql (ours)", "hand-written (reference)"


def cpu_milliseconds(run: Callable[[], Any], wall: list[float]) -> Callable[[], float]:
    """The run's CPU time (the process's, DuckDB's threads included); its wall time goes to `wall`."""

    def timed() -> float:
        started, cpu = time.perf_counter(), time.process_time()
        run()
        elapsed = (time.process_time() - cpu) * 1000
        wall.append((time.perf_counter() - started) * 1000)
        return elapsed

    return timed


@pytest.mark.timeout(3600)
def test_batch_segment_evaluation(tmp_path: Path) -> None:
    started = time.perf_counter()
    lake = write_lake(tmp_path, PROFILES)
    print(
        f"\nlake: {lake.customers:,} customers, {lake.profile_rows:,} profile rows, {lake.event_rows:,} event rows "
        f"(generated and written in {time.perf_counter() - started:.0f} s); DuckDB {duckdb.__version__}, "
        f"{THREADS} thread(s)"
    )
    connection = open_lake(lake)
    summary: list[str] = []
    for case in CASES:
        rule = RULE.validate_python(case.rule)
        candidates = {
            OURS: audience_sql(rule, now=NOW, tables=TABLES),
            REFERENCE: case.reference,
        }
        variants = {name: sql for name, sql in candidates.items() if sql is not None}
        # Given every variant selects the same customers (the untimed warm-up run)
        answers = {name: fetch_ids(connection, sql) for name, sql in variants.items()}
        expected = answers[REFERENCE]
        for name, ids in answers.items():
            assert ids.equals(expected), f"{case.name}: {name} selected {len(ids)} ids, the reference {len(expected)}"
        # When each runs REPEAT times
        walls: dict[str, list[float]] = {name: [] for name in variants}
        runs = {
            name: measure(name, cpu_milliseconds(partial(fetch_ids, connection, sql), walls[name]), repeat=REPEAT)
            for name, sql in variants.items()
        }
        reference = runs.pop(REFERENCE)
        # Then the figures, beside the reference's
        report(
            f"Segment batch: {case.name} ({len(expected):,} of {lake.customers:,} customers; CPU ms per query)",
            list(runs.values()),
            reference,
        )
        for measurement in [reference, *runs.values()]:
            print(
                f"  {measurement.name:28} {lake.customers / (measurement.median / 1000):>12,.0f} profiles per CPU "
                f"second   (wall median {statistics.median(walls[measurement.name]):,.0f} ms)"
            )
        summary.append(
            f"  {case.name:62} " + ", ".join(f"{name} x{m.median / reference.median:.2f}" for name, m in runs.items())
        )
    print("\nSegment batch, CPU time against the hand-written query's (goal: ours within x2)\n" + "\n".join(summary))
    connection.close()


def test_the_generated_lake_has_the_engine_schema(tmp_path: Path) -> None:
    lake = write_lake(tmp_path, 2000, seed=3)
    profiles = pq.read_schema(next((tmp_path / SEGMENT_PROFILES).glob("*.parquet")))
    events = pq.read_schema(next((tmp_path / BEHAVIOUR_EVENTS).glob("*.parquet")))
    assert [(f.name, f.type) for f in profiles] == [(n, _ARROW[k]) for n, k in profile_columns(DEFAULT_CATALOG)]
    assert [(f.name, f.type) for f in events] == [(n, _ARROW[k]) for n, k in BEHAVIOUR_EVENT_COLUMNS]
    connection = open_lake(lake)
    customers, deleted = connection.execute(
        "SELECT count(DISTINCT customer_id), count_if(deleted) FROM lake.segment_profiles"
    ).fetchone() or (0, 0)
    assert customers == 2000
    assert 0 < deleted < 100
    assert lake.event_rows > 2000 * 5
