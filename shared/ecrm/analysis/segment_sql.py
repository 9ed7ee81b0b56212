"""The batch path: a segment rule as SQL over the lake, the same text on Athena and DuckDB.

Two lake tables feed it (written by the analysis engine as it keeps its projection):

- `segment_profiles`: one row per version of a customer's projection, typed columns derived
  from the `FieldCatalog` (`a_<attribute>`, `t_<trait>`, `c_<channel>_<purpose>` consent
  states, `i_<kind>` identity flags), `version` and `deleted` (merged or erased customers);
- `behaviour_events`: what customers did (`event_type`, `occurred_at`, `amount`, `category`,
  `channel`, `product_id`, `segment_id`), possibly delivered twice (at-least-once streams).

The compiled query takes each customer's latest profile version (a join on `max(version)`), keeps
only the events some condition reads, collapses duplicate events by grouping on (customer, event
id), computes one aggregate per behaviour condition in a second grouping per customer, and filters
with the rule's boolean expression (measured in `tests/bench/test_segment_batch.py`). Every leaf
is wrapped so it is never NULL, which gives SQL the two-valued logic of the Python predicate.
Time windows are compiled to literal timestamps from `now`, so no date function differs
between the engines. Only functions both Athena (Trino) and DuckDB implement are used:
`sum`, `max`, `coalesce`, `strpos`, `starts_with`, `substr`, `length`.

A shard (`Shard(index, count)`) restricts the query to customers whose id ends with one of a
set of characters: ids end with a random Crockford base32 character, so shards are even.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ecrm.analysis.predicate import Subject, period_start
from ecrm.analysis.rules import (
    DEFAULT_CATALOG,
    EVENT_PROPERTY_TYPES,
    SEGMENT_ENTERED,
    SEGMENT_EXITED,
    AllOf,
    AnyOf,
    AttributeCondition,
    Comparison,
    ConsentCondition,
    EventCondition,
    FieldCatalog,
    FieldType,
    IdentityCondition,
    NotOf,
    OrderCondition,
    OrderQuery,
    Rule,
    SegmentCondition,
    TraitCondition,
    Window,
    coerce,
)
from ecrm.core.lake import (  # the lake's catalogue; personalization trains on these tables too
    BEHAVIOUR_EVENT_COLUMNS,
    BEHAVIOUR_EVENTS,
    ORDER_LINES,
    SEGMENT_PROFILES,
    LakeTables,
    timestamp_literal,
)

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

_GLUE_TYPES: dict[FieldType, str] = {"string": "string", "number": "double", "boolean": "boolean", "date": "date"}


def profile_columns(catalog: FieldCatalog = DEFAULT_CATALOG) -> list[tuple[str, str]]:
    """The `segment_profiles` table's columns (name, Glue type) for a catalogue."""
    columns = [("customer_id", "string"), ("version", "bigint"), ("deleted", "boolean"), ("updated_at", "timestamp")]
    columns += [(f"a_{name}", _GLUE_TYPES[kind]) for name, kind in catalog.attributes.items()]
    columns += [(f"t_{name}", _GLUE_TYPES[kind]) for name, kind in catalog.traits.items()]
    columns += [
        (consent_column(channel, purpose), "string")
        for channel in catalog.consent_channels
        for purpose in catalog.consent_purposes
    ]
    columns += [(f"i_{kind}", "boolean") for kind in catalog.identity_kinds]
    return columns


def consent_column(channel: str, purpose: str) -> str:
    return f"c_{channel}_{purpose}"


def profile_record(
    subject: Subject,
    *,
    version: int,
    updated_at: datetime,
    deleted: bool = False,
    catalog: FieldCatalog = DEFAULT_CATALOG,
) -> dict[str, Any]:
    """A `segment_profiles` row (JSON for the lake stream: dates ISO, timestamps ISO UTC)."""
    record: dict[str, Any] = {
        "customer_id": subject.customer_id,
        "version": version,
        "deleted": deleted,
        "updated_at": _timestamp_text(updated_at),
    }
    for name in catalog.attributes:
        record[f"a_{name}"] = _json_value(subject.attributes.get(name))
    for name in catalog.traits:
        record[f"t_{name}"] = _json_value(subject.traits.get(name))
    for channel in catalog.consent_channels:
        for purpose in catalog.consent_purposes:
            record[consent_column(channel, purpose)] = subject.consents.get(f"{channel}:{purpose}")
    for kind in catalog.identity_kinds:
        record[f"i_{kind}"] = kind in subject.identities
    return record


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _timestamp_text(value: datetime) -> str:
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= len(CROCKFORD) or not 0 <= self.index < self.count:
            raise ValueError(f"a shard is 0 <= index < count <= {len(CROCKFORD)}")

    @property
    def endings(self) -> list[str]:
        """The id endings this shard owns (lower and upper case: ids may be written either way)."""
        size = math.ceil(len(CROCKFORD) / self.count)
        mine = CROCKFORD[self.index * size : (self.index + 1) * size]
        return sorted({*mine, *mine.lower()})


class _Compiler:
    def __init__(self, catalog: FieldCatalog, now: datetime) -> None:
        self.catalog = catalog
        self.now = now
        # (kind, condition): kind "count" (matching events), "sum" (their amount), "latest" (their time)
        self.aggregates: list[tuple[str, str]] = []
        # per order condition: what an order's line must satisfy (orders counted, their net amount summed)
        self.order_conditions: list[str] = []

    def aggregate(self, kind: str, condition: str) -> str:
        self.aggregates.append((kind, condition))
        return f"b.x{len(self.aggregates) - 1}"

    def rule(self, rule: Rule) -> str:
        if isinstance(rule, AllOf):
            return "(" + " AND ".join(self.rule(r) for r in rule.all) + ")"
        if isinstance(rule, AnyOf):
            return "(" + " OR ".join(self.rule(r) for r in rule.any) + ")"
        if isinstance(rule, NotOf):
            return f"(NOT {self.rule(rule.not_)})"
        if isinstance(rule, AttributeCondition):
            return value_sql(f"p.a_{rule.attribute}", self.catalog.attributes[rule.attribute], rule.op, rule.value)
        if isinstance(rule, TraitCondition):
            return value_sql(f"p.t_{rule.trait}", self.catalog.traits[rule.trait], rule.op, rule.value)
        if isinstance(rule, ConsentCondition):
            column = f"p.{consent_column(rule.consent, rule.purpose)}"
            if rule.state == "unknown":
                return f"({column} IS NULL)"
            return f"COALESCE({column} = {literal('string', rule.state)}, FALSE)"
        if isinstance(rule, IdentityCondition):
            return f"COALESCE(p.i_{rule.has_identity}, FALSE)"
        if isinstance(rule, SegmentCondition):
            return self.membership(rule.in_segment)
        if isinstance(rule, OrderCondition):
            return self.orders(rule.orders)
        return self.behaviour(rule)

    def orders(self, query: OrderQuery) -> str:
        match = self.window_on("i.placed_at", query.window)
        match += [value_sql(f"i.{w.property}", "string", w.op, w.value) for w in query.where]
        self.order_conditions.append(" AND ".join(match) or "TRUE")
        n = len(self.order_conditions) - 1
        tests = []
        count = query.count if query.count is not None or query.spent is not None else Comparison(op="gte", value=1)
        if count is not None:
            tests.append(quantity_sql(f"COALESCE(o.n{n}, 0)", count))
        if query.spent is not None:
            tests.append(quantity_sql(f"COALESCE(o.s{n}, 0)", query.spent))
        return "(" + " AND ".join(tests) + ")"

    def behaviour(self, rule: EventCondition) -> str:
        match = [f"e.event_type = {literal('string', rule.event)}", *self.window(rule)]
        match += [value_sql(f"e.{w.property}", EVENT_PROPERTY_TYPES[w.property], w.op, w.value) for w in rule.where]
        condition = " AND ".join(match)
        tests = []
        count = rule.count if rule.count is not None or rule.sum is not None else Comparison(op="gte", value=1)
        if count is not None:
            tests.append(quantity_sql(f"COALESCE({self.aggregate('count', condition)}, 0)", count))
        if rule.sum is not None:
            total = self.aggregate("sum", condition)
            tests.append(quantity_sql(f"COALESCE({total}, 0)", rule.sum))
        return "(" + " AND ".join(tests) + ")"

    def window(self, rule: EventCondition) -> list[str]:
        return self.window_on("e.occurred_at", rule.window)

    def window_on(self, column: str, window: Window | None) -> list[str]:
        now = f"{column} <= {timestamp_literal(self.now)}"
        if window is None:
            return [now]
        if window.last_days is not None:
            return [f"{column} > {timestamp_literal(self.now - timedelta(days=window.last_days))}", now]
        if window.this is not None:
            return [f"{column} >= {timestamp_literal(period_start(window.this, self.now))}", now]
        assert window.since is not None
        bounds = [f"{column} >= {timestamp_literal(window.since)}", now]
        if window.until is not None:
            bounds.append(f"{column} < {timestamp_literal(window.until)}")
        return bounds

    def membership(self, segment_id: str) -> str:
        segment, now = literal("string", segment_id), timestamp_literal(self.now)

        def latest(kind: str) -> str:
            return self.aggregate(
                "latest",
                f"e.event_type = {literal('string', kind)} AND e.segment_id = {segment} AND e.occurred_at <= {now}",
            )

        entered, exited = latest(SEGMENT_ENTERED), latest(SEGMENT_EXITED)
        return f"({entered} IS NOT NULL AND ({exited} IS NULL OR {entered} > {exited}))"


def audience_sql(
    rule: Rule,
    *,
    now: datetime,
    tables: LakeTables,
    catalog: FieldCatalog = DEFAULT_CATALOG,
    shard: Shard | None = None,
    count_only: bool = False,
) -> str:
    """The customer ids matching `rule` at `now` (or their count), optionally for one shard."""
    compiler = _Compiler(catalog, now)
    where = compiler.rule(rule)
    shard_filter = ""
    if shard is not None:
        endings = ", ".join(literal("string", c) for c in shard.endings)
        shard_filter = f" AND substr(customer_id, length(customer_id), 1) IN ({endings})"
    profiles = (
        "versions AS (SELECT customer_id, max(version) AS version FROM "
        f"{tables.profiles} WHERE customer_id IS NOT NULL{shard_filter} GROUP BY customer_id), "
        f"latest AS (SELECT q.* FROM {tables.profiles} q JOIN versions v "
        "ON v.customer_id = q.customer_id AND v.version = q.version WHERE NOT q.deleted)"
    )
    select = "SELECT count(DISTINCT p.customer_id) AS customers" if count_only else "SELECT DISTINCT p.customer_id"
    order = "" if count_only else " ORDER BY p.customer_id"
    orders_join = ""
    if compiler.order_conditions:
        profiles += ", " + _orders_sql(compiler, order_lines_table(tables), shard_filter)
        orders_join = " LEFT JOIN order_totals o ON o.customer_id = p.customer_id"
    if not compiler.aggregates:
        return f"WITH {profiles} {select} FROM latest p{orders_join} WHERE {where}{order}"
    # Events are narrowed to those some condition reads before anything else (the scan can skip row
    # groups), then deduplicated by grouping on (customer, event id): a duplicate is an identical copy,
    # so each event counts once; then one row per customer.
    relevant = " OR ".join(f"({condition})" for _, condition in compiler.aggregates)
    per_event = ", ".join(
        f"max(CASE WHEN {condition} THEN {_PER_EVENT[kind]} END) AS y{n}"
        for n, (kind, condition) in enumerate(compiler.aggregates)
    )
    per_customer = ", ".join(
        f"{'max' if kind == 'latest' else 'sum'}(y{n}) AS x{n}" for n, (kind, _) in enumerate(compiler.aggregates)
    )
    events = (
        f"per_event AS (SELECT e.customer_id, e.event_id, {per_event} FROM {tables.events} e "
        f"WHERE e.customer_id IS NOT NULL{shard_filter.replace('customer_id', 'e.customer_id')} AND ({relevant}) "
        "GROUP BY e.customer_id, e.event_id)"
    )
    behaviour = f"behaviour AS (SELECT customer_id, {per_customer} FROM per_event GROUP BY customer_id)"
    return (
        f"WITH {profiles}, {events}, {behaviour} {select} FROM latest p "
        f"LEFT JOIN behaviour b ON b.customer_id = p.customer_id{orders_join} WHERE {where}{order}"
    )


def order_lines_table(tables: LakeTables) -> str:
    """The lake's `order_lines` (written by the transactions engine), in the database of the analysis tables."""
    database = tables.profiles.rsplit(".", 1)[0] + "." if "." in tables.profiles else ""
    return f'{database}"{ORDER_LINES}"'


def _orders_sql(compiler: _Compiler, table: str, shard_filter: str) -> str:
    """Each customer's orders as of `now`, cancelled ones dropped and each line net of its returns, then per
    order condition the orders with a matching line (`n<i>`) and those lines' net amount (`s<i>`).

    Rows are deduplicated whole (a row delivered twice is an identical copy); an order is placed when its
    first purchase row happened, and its channel, store and currency are its purchase rows' (the same on
    every line of an order).
    """
    now = timestamp_literal(compiler.now)
    rows = (
        "order_rows AS (SELECT DISTINCT customer_id, order_id, event_id, kind, sku, category, amount, currency, "
        f"channel, store, occurred_at FROM {table} WHERE customer_id IS NOT NULL AND order_id IS NOT NULL"
        f"{shard_filter} AND occurred_at <= {now})"
    )
    placed = (
        "placed AS (SELECT customer_id, order_id, min(occurred_at) AS placed_at, max(channel) AS channel, "
        "max(store) AS store, max(currency) AS currency FROM order_rows WHERE kind = 'purchase' AND order_id NOT IN "
        "(SELECT order_id FROM order_rows WHERE kind = 'cancellation') GROUP BY customer_id, order_id)"
    )
    items = (
        "order_items AS (SELECT o.customer_id, o.order_id, o.placed_at, o.channel, o.store, o.currency, r.sku, "
        "max(r.category) AS category, sum(r.amount) AS net FROM placed o JOIN order_rows r "
        "ON r.customer_id = o.customer_id AND r.order_id = o.order_id WHERE r.kind IN ('purchase', 'return') "
        "GROUP BY o.customer_id, o.order_id, o.placed_at, o.channel, o.store, o.currency, r.sku)"
    )
    per_order = ", ".join(
        f"max(CASE WHEN {condition} THEN 1 END) AS m{n}, sum(CASE WHEN {condition} THEN i.net END) AS v{n}"
        for n, condition in enumerate(compiler.order_conditions)
    )
    totals = ", ".join(f"count(m{n}) AS n{n}, sum(v{n}) AS s{n}" for n in range(len(compiler.order_conditions)))
    return (
        f"{rows}, {placed}, {items}, "
        f"order_matches AS (SELECT i.customer_id, i.order_id, {per_order} FROM order_items i "
        "GROUP BY i.customer_id, i.order_id), "
        f"order_totals AS (SELECT customer_id, {totals} FROM order_matches GROUP BY customer_id)"
    )


_PER_EVENT = {"count": "1", "sum": "e.amount", "latest": "e.occurred_at"}


def value_sql(column: str, kind: FieldType, op: str, value: Any) -> str:
    """One comparison that is never NULL: a missing value only satisfies `not_exists`."""
    if op == "exists":
        return f"({column} IS NOT NULL)"
    if op == "not_exists":
        return f"({column} IS NULL)"
    if op in {"in", "not_in"}:
        options = ", ".join(literal(kind, v) for v in value)
        negation = "NOT " if op == "not_in" else ""
        return f"COALESCE({column} {negation}IN ({options}), FALSE)"
    if op == "between":
        return f"COALESCE({column} BETWEEN {literal(kind, value[0])} AND {literal(kind, value[1])}, FALSE)"
    if op == "contains":
        return f"COALESCE(strpos({column}, {literal('string', value)}) > 0, FALSE)"
    if op == "starts_with":
        return f"COALESCE(starts_with({column}, {literal('string', value)}), FALSE)"
    symbol = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
    return f"COALESCE({column} {symbol} {literal(kind, value)}, FALSE)"


def quantity_sql(expression: str, comparison: Comparison) -> str:
    value = comparison.value
    if comparison.op == "between":
        assert isinstance(value, list)
        return f"{expression} BETWEEN {_number(value[0])} AND {_number(value[1])}"
    symbol = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[comparison.op]
    return f"{expression} {symbol} {_number(value)}"


def literal(kind: FieldType, value: Any) -> str:
    """A SQL literal both engines read the same way (texts quoted, numbers as DOUBLE, dates typed)."""
    if kind == "string":
        return "'" + str(value).replace("'", "''") + "'"
    if kind == "number":
        return _number(value)
    if kind == "boolean":
        return "TRUE" if value else "FALSE"
    return f"DATE '{coerce('date', value).isoformat()}'"


def _number(value: Any) -> str:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("numbers in rules are finite")
    return f"CAST({number!r} AS DOUBLE)"


def behaviour_record(customer_id: str, event: Any, *, recorded_at: datetime) -> dict[str, Any]:
    """A `behaviour_events` row (JSON for the lake stream)."""
    return {
        "customer_id": customer_id,
        "event_id": event.event_id,
        "event_type": event.type,
        "occurred_at": _timestamp_text(event.occurred_at),
        "amount": event.amount,
        "category": event.category,
        "channel": event.channel,
        "product_id": event.product_id,
        "segment_id": event.segment_id,
        "source": event.source,
        "recorded_at": _timestamp_text(recorded_at),
    }


def lake_table_columns(catalog: FieldCatalog = DEFAULT_CATALOG) -> Mapping[str, list[tuple[str, str]]]:
    return {SEGMENT_PROFILES: profile_columns(catalog), BEHAVIOUR_EVENTS: BEHAVIOUR_EVENT_COLUMNS}
