"""The batch path (SQL on DuckDB) and the real-time path (Python predicate) agree on every rule.

Given random customers (profiles with several versions, deleted ones, duplicated events, events
exactly on window boundaries) and random rules over every kind of condition, the customers the
compiled SQL selects are exactly those the predicate accepts.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
from ecrm.analysis.predicate import BehaviourEvent, OrderRow, Subject, compile_predicate
from ecrm.analysis.rules import FieldCatalog, Rule, problems
from ecrm.analysis.segment_sql import (
    BEHAVIOUR_EVENT_COLUMNS,
    LakeTables,
    audience_sql,
    behaviour_record,
    profile_columns,
    profile_record,
)
from ecrm.core.lake import ORDER_LINE_COLUMNS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

CATALOG = FieldCatalog(
    attributes={"country": "string", "tier": "string", "score": "number", "vip": "boolean", "birth_date": "date"},
    traits={"churn_risk": "number", "cluster": "string"},
    consent_purposes=("marketing", "profiling"),
    consent_channels=("email", "sms"),
    identity_kinds=("email", "phone"),
)
RULE = TypeAdapter(Rule)
NOW = datetime(2026, 11, 23, 10, 30, 15, 250000, tzinfo=UTC)
COUNTRIES = ["FR", "BE", "DE", "fr", "Fr-x"]
TIERS = ["gold", "silver", "o'brien"]
SCORES = [-1.5, 0.0, 2.0, 3.25, 10.0]
DATES = [date(1970, 1, 1), date(1985, 4, 12), date(2000, 2, 29)]
CLUSTERS = ["a", "b"]
EVENT_TYPES = ["order_completed", "email_opened"]
CATEGORIES = ["shoes", "bags", None]
CHANNELS = ["web", "email", None]
SEGMENTS = ["seg_A", "seg_B"]
SALES_CHANNELS = ["web", "store"]
STORES = ["shopweb", "paris", None]
SKUS = ["sku1", "sku2", "sku3"]
WINDOW_DAYS = [7, 30]

maybe = st.none().__or__


def at_offset(days: int, milliseconds: int) -> datetime:
    """Event times at millisecond precision (the lake's), some exactly on window boundaries."""
    return NOW - timedelta(days=days) + timedelta(milliseconds=milliseconds)


event_times = st.one_of(
    st.builds(at_offset, st.sampled_from(WINDOW_DAYS), st.just(0)),
    st.builds(at_offset, st.sampled_from([*WINDOW_DAYS, 0, 400]), st.sampled_from([0, -1, 1, 750])),
    st.builds(at_offset, st.integers(0, 400), st.integers(-86_400_000, 86_400_000)),
    st.sampled_from(
        [datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC)]
    ),
)


@st.composite
def behaviour_events(draw: Any, number: int) -> BehaviourEvent:
    kind = draw(st.sampled_from([*EVENT_TYPES, "segment_entered", "segment_exited"]))
    is_segment = kind.startswith("segment_")
    return BehaviourEvent(
        event_id=f"evt{number}",
        type=kind,
        occurred_at=draw(event_times),
        amount=None if is_segment else draw(maybe(st.integers(0, 600).map(float))),
        category=None if is_segment else draw(st.sampled_from(CATEGORIES)),
        channel=draw(st.sampled_from(CHANNELS)),
        product_id=draw(maybe(st.sampled_from(["p1", "p2"]))),
        segment_id=draw(st.sampled_from(SEGMENTS)) if is_segment else None,
    )


@st.composite
def customer_orders(draw: Any, customer: int) -> list[OrderRow]:
    """A few orders: purchase lines, some returned (in part or whole, before or after `now`), some cancelled."""
    rows: list[OrderRow] = []
    for number in range(draw(st.integers(0, 3))):
        order_id = f"ord_{customer}_{number}"
        placed = draw(event_times)
        channel, store, currency = (
            draw(st.sampled_from(SALES_CHANNELS)),
            draw(st.sampled_from(STORES)),
            draw(st.sampled_from(["EUR", "USD"])),
        )
        for sku in draw(st.lists(st.sampled_from(SKUS), min_size=1, max_size=2, unique=True)):
            category = draw(st.sampled_from(CATEGORIES))
            price = float(draw(st.integers(0, 300)))
            rows.append(
                OrderRow(f"{order_id}-p", order_id, "purchase", placed, price, currency, sku, category, channel, store)
            )
            if draw(st.integers(0, 3)) == 0:
                back = placed + timedelta(days=draw(st.sampled_from([0, 1, 3])))
                returned = -float(draw(st.sampled_from([price, price // 2])))
                rows.append(OrderRow(f"{order_id}-r{sku}", order_id, "return", back, returned, currency, sku, category))
        if draw(st.integers(0, 4)) == 0:
            at = placed + timedelta(days=draw(st.sampled_from([0, 2])))
            rows.append(
                OrderRow(f"{order_id}-c", order_id, "cancellation", at, -float(draw(st.integers(0, 9))), currency)
            )
    return rows


@st.composite
def subjects(draw: Any, number: int) -> Subject:
    attributes = {
        "country": draw(maybe(st.sampled_from(COUNTRIES))),
        "tier": draw(maybe(st.sampled_from(TIERS))),
        "score": draw(maybe(st.sampled_from(SCORES))),
        "vip": draw(maybe(st.booleans())),
        "birth_date": draw(maybe(st.sampled_from(DATES))),
    }
    traits = {
        "churn_risk": draw(maybe(st.sampled_from([0.1, 0.5, 0.9]))),
        "cluster": draw(maybe(st.sampled_from(CLUSTERS))),
    }
    consents = {
        f"{channel}:{purpose}": state
        for channel in ("email", "sms")
        for purpose in ("marketing", "profiling")
        if (state := draw(st.sampled_from(["granted", "denied", None]))) is not None
    }
    events = [draw(behaviour_events(i)) for i in range(draw(st.integers(0, 8)))]
    return Subject(
        customer_id=f"cus_{number:04d}{draw(st.sampled_from('0AZk'))}",
        attributes={k: v for k, v in attributes.items() if v is not None},
        traits={k: v for k, v in traits.items() if v is not None},
        consents=consents,
        identities=frozenset(draw(st.sets(st.sampled_from(["email", "phone"])))),
        events=events,
        orders=draw(customer_orders(number)),
    )


def value_for(kind: str, pool: list[Any], op: str) -> st.SearchStrategy[Any]:
    if op in {"exists", "not_exists"}:
        return st.none()
    one = st.sampled_from(pool)
    if op in {"in", "not_in"}:
        return st.lists(one, min_size=1, max_size=3)
    if op == "between":
        return st.lists(one, min_size=2, max_size=2).map(sorted)
    if op in {"contains", "starts_with"}:
        return st.sampled_from(["F", "r", "o'", "x"])
    return one


POOLS: dict[str, tuple[str, list[Any]]] = {
    "country": ("string", COUNTRIES),
    "tier": ("string", TIERS),
    "score": ("number", SCORES),
    "vip": ("boolean", [True, False]),
    "birth_date": ("date", [d.isoformat() for d in DATES]),
    "churn_risk": ("number", [0.1, 0.5, 0.9]),
    "cluster": ("string", CLUSTERS),
}
OPS = {
    "string": ["eq", "ne", "in", "not_in", "contains", "starts_with", "exists", "not_exists"],
    "number": ["eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "between", "exists", "not_exists"],
    "date": ["eq", "ne", "gt", "gte", "lt", "lte", "between", "exists", "not_exists"],
    "boolean": ["eq", "ne", "exists", "not_exists"],
}


@st.composite
def field_conditions(draw: Any) -> dict[str, Any]:
    name = draw(st.sampled_from(sorted(POOLS)))
    kind, pool = POOLS[name]
    op = draw(st.sampled_from(OPS[kind]))
    key = "trait" if name in {"churn_risk", "cluster"} else "attribute"
    condition = {key: name, "op": op}
    value = draw(value_for(kind, pool, op))
    if value is not None:
        condition["value"] = value
    return condition


@st.composite
def event_conditions(draw: Any) -> dict[str, Any]:
    condition: dict[str, Any] = {"event": draw(st.sampled_from(EVENT_TYPES))}
    window = draw(
        st.one_of(
            st.none(),
            st.builds(lambda d: {"last_days": d}, st.sampled_from(WINDOW_DAYS)),
            st.builds(lambda p: {"this": p}, st.sampled_from(["day", "week", "month", "year"])),
            st.just({"since": "2026-01-01T00:00:00Z", "until": "2026-11-23T00:00:00Z"}),
            st.just({"since": "2026-11-01T00:00:00Z"}),
        )
    )
    if window is not None:
        condition["window"] = window
    filters = []
    for _ in range(draw(st.integers(0, 2))):
        prop = draw(st.sampled_from(["category", "channel", "amount", "product_id"]))
        kind = "number" if prop == "amount" else "string"
        pool: list[Any] = {
            "category": ["shoes", "bags"],
            "channel": ["web", "email"],
            "amount": [0, 100, 250.5, 500],
            "product_id": ["p1", "p2"],
        }[prop]
        op = draw(st.sampled_from(OPS[kind]))
        where = {"property": prop, "op": op}
        value = draw(value_for(kind, pool, op))
        if value is not None:
            where["value"] = value
        filters.append(where)
    if filters:
        condition["where"] = filters
    quantity = st.one_of(
        st.builds(
            lambda o, v: {"op": o, "value": v},
            st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]),
            st.integers(0, 3),
        ),
        st.builds(lambda lo, span: {"op": "between", "value": [lo, lo + span]}, st.integers(0, 2), st.integers(0, 2)),
    )
    if draw(st.booleans()):
        condition["count"] = draw(quantity)
    if draw(st.booleans()):
        condition["sum"] = draw(
            st.builds(
                lambda o, v: {"op": o, "value": v},
                st.sampled_from(["gt", "gte", "lt", "eq"]),
                st.sampled_from([0, 100, 500, 700]),
            )
        )
    return condition


@st.composite
def order_conditions(draw: Any) -> dict[str, Any]:
    query: dict[str, Any] = {}
    window = draw(
        st.one_of(
            st.none(),
            st.builds(lambda d: {"last_days": d}, st.sampled_from(WINDOW_DAYS)),
            st.builds(lambda p: {"this": p}, st.sampled_from(["month", "year"])),
            st.just({"since": "2026-01-01T00:00:00Z", "until": "2026-11-23T00:00:00Z"}),
        )
    )
    if window is not None:
        query["window"] = window
    filters = []
    for _ in range(draw(st.integers(0, 2))):
        prop = draw(st.sampled_from(["channel", "store", "currency", "category", "sku"]))
        pool = {
            "channel": SALES_CHANNELS,
            "store": ["shopweb", "paris"],
            "currency": ["EUR", "USD"],
            "category": ["shoes", "bags"],
            "sku": SKUS,
        }[prop]
        op = draw(st.sampled_from(OPS["string"]))
        where = {"property": prop, "op": op}
        value = draw(value_for("string", pool, op))
        if value is not None:
            where["value"] = value
        filters.append(where)
    if filters:
        query["where"] = filters
    if draw(st.booleans()):
        query["count"] = {"op": draw(st.sampled_from(["eq", "gte", "lt"])), "value": draw(st.integers(0, 2))}
    if draw(st.booleans()):
        query["spent"] = {
            "op": draw(st.sampled_from(["gt", "gte", "lt"])),
            "value": draw(st.sampled_from([0, 150, 400])),
        }
    return {"orders": query}


leaves = st.one_of(
    field_conditions(),
    field_conditions(),
    event_conditions(),
    event_conditions(),
    order_conditions(),
    order_conditions(),
    st.builds(
        lambda c, p, s: {"consent": c, "purpose": p, "state": s},
        st.sampled_from(["email", "sms"]),
        st.sampled_from(["marketing", "profiling"]),
        st.sampled_from(["granted", "denied", "unknown"]),
    ),
    st.builds(lambda k: {"has_identity": k}, st.sampled_from(["email", "phone"])),
    st.builds(lambda s: {"in_segment": s}, st.sampled_from(SEGMENTS)),
)
rules = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(lambda m: {"all": m}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda m: {"any": m}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda m: {"not": m}, inner),
    ),
    max_leaves=8,
)


def load_lake(population: list[Subject]) -> duckdb.DuckDBPyConnection:
    """The population as the lake holds it: an older and a deleted profile version, events written twice."""
    connection = duckdb.connect(":memory:")
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute("CREATE SCHEMA lake")
    profiles: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    for number, subject in enumerate(population):
        for row in subject.orders:
            orders += [order_line_record(subject.customer_id, row)] * (2 if number % 3 == 0 else 1)
        stale = Subject(
            customer_id=subject.customer_id, attributes={"country": "FR", "score": 2.0}, traits={"cluster": "a"}
        )
        profiles.append(profile_record(stale, version=1, updated_at=NOW, catalog=CATALOG))
        profiles.append(profile_record(subject, version=2, updated_at=NOW, catalog=CATALOG, deleted=number % 7 == 6))
        for event in subject.events:
            events.append(behaviour_record(subject.customer_id, event, recorded_at=NOW))
            if number % 3 == 0:
                events.append(behaviour_record(subject.customer_id, event, recorded_at=NOW + timedelta(seconds=1)))
    for table, columns, rows in (
        ("segment_profiles", profile_columns(CATALOG), profiles),
        ("behaviour_events", BEHAVIOUR_EVENT_COLUMNS, events),
        ("order_lines", ORDER_LINE_COLUMNS, orders),
    ):
        arrow = pa.Table.from_pylist([_typed(row, columns) for row in rows], schema=_schema(columns))  # noqa: F841
        connection.execute(f"CREATE TABLE lake.{table} AS SELECT * FROM arrow")
    return connection


def order_line_record(customer_id: str, row: OrderRow) -> dict[str, Any]:
    """An `order_lines` row as the transactions engine writes it (`ecrm.transactions.lake_records`)."""
    return {
        "event_id": row.event_id,
        "order_id": row.order_id,
        "customer_id": customer_id,
        "kind": row.kind,
        "sku": row.sku,
        "category": row.category,
        "quantity": None,
        "amount_minor": round(row.amount * 100),
        "amount": row.amount,
        "currency": row.currency,
        "channel": row.channel,
        "store": row.store,
        "occurred_at": row.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    }


_ARROW = {
    "string": pa.string(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "bigint": pa.int64(),
    "int": pa.int32(),
    "timestamp": pa.timestamp("ms", tz="UTC"),
}


def _schema(columns: list[tuple[str, str]]) -> pa.Schema:
    return pa.schema([(name, _ARROW[kind]) for name, kind in columns])


def _typed(row: dict[str, Any], columns: list[tuple[str, str]]) -> dict[str, Any]:
    """JSON lake record -> Arrow values, as Firehose's conversion reads them."""
    typed: dict[str, Any] = {}
    for name, kind in columns:
        value = row.get(name)
        if value is not None and kind == "timestamp":
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        elif value is not None and kind == "date":
            value = date.fromisoformat(value)
        typed[name] = value
    return typed


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    population=st.integers(1, 12).flatmap(lambda n: st.tuples(*[subjects(i) for i in range(n)])),
    candidate_rules=st.lists(rules, min_size=1, max_size=4),
)
def test_sql_and_predicate_select_the_same_customers(
    population: tuple[Subject, ...], candidate_rules: list[Any]
) -> None:
    # Given a lake holding the population and rules the catalogue accepts
    connection = load_lake(list(population))
    live = [s for number, s in enumerate(population) if number % 7 != 6]
    for raw in candidate_rules:
        rule = RULE.validate_python(raw)
        assert problems(rule, CATALOG) == [], raw
        # When both paths evaluate the rule at the same instant
        sql = audience_sql(rule, now=NOW, tables=LakeTables.in_database("lake"), catalog=CATALOG)
        selected = {row[0] for row in connection.execute(sql).fetchall()}
        predicate = compile_predicate(rule, CATALOG)
        expected = {s.customer_id for s in live if predicate(s, NOW)}
        # Then they agree
        assert selected == expected, (raw, sql)
    connection.close()


def test_window_boundaries_are_exclusive_at_the_start_and_inclusive_at_now() -> None:
    # Given events exactly 7 days ago, just after, exactly now, and after now
    population = [
        Subject(customer_id=f"cus_{n}A", events=[BehaviourEvent(event_id="e", type="order_completed", occurred_at=at)])
        for n, at in enumerate([at_offset(7, 0), at_offset(7, 1), at_offset(0, 0), at_offset(0, 1)])
    ]
    connection = load_lake(population)
    rule = RULE.validate_python({"event": "order_completed", "window": {"last_days": 7}})
    # When both paths evaluate "in the last 7 days"
    sql = audience_sql(rule, now=NOW, tables=LakeTables.in_database("lake"), catalog=CATALOG)
    predicate = compile_predicate(rule, CATALOG)
    # Then only the event a millisecond inside the window and the one at now count, on both paths
    assert {row[0] for row in connection.execute(sql).fetchall()} == {"cus_1A", "cus_2A"}
    assert {s.customer_id for s in population if predicate(s, NOW)} == {"cus_1A", "cus_2A"}


def test_the_count_query_counts_the_audience() -> None:
    population = [
        Subject(customer_id="cus_1A", attributes={"country": "FR"}),
        Subject(customer_id="cus_2B", attributes={"country": "BE"}),
        Subject(customer_id="cus_3C", attributes={"country": "FR"}),
    ]
    connection = load_lake(population)
    rule = RULE.validate_python({"attribute": "country", "op": "eq", "value": "FR"})
    sql = audience_sql(rule, now=NOW, tables=LakeTables.in_database("lake"), catalog=CATALOG, count_only=True)
    assert connection.execute(sql).fetchone() == (2,)
