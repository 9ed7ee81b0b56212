"""OLAP over the lake: slice and dice activity by dimensions with measures, as one SQL query.

The fact is a behaviour event (interactions, message outcomes, all deduplicated by event id) or an
order row: the lake's `order_lines`, written by the transactions engine, one `order_completed` fact per
line bought and one `order_returned` fact (negative) per line returned, a cancelled order left out whole,
so revenue is net of returns and a return is never an order. Tracked `order_completed` behaviour events
count only for customers with no order row at all (a shop whose orders reach the platform as tracked
events only): an order the transactions engine holds is never counted twice. Facts are joined with
the customer's latest profile row for customer dimensions and with current segment memberships for the
`segment` dimension (a customer in two segments counts in both).
The SQL is the subset Athena and DuckDB share (`count_if`, `date_trunc`, `CAST`, window
functions); ratios are computed in DOUBLE so integer division never truncates them.
"""

from __future__ import annotations

from typing import Any

from ecrm.analysis.models import OlapRequest, OlapResult
from ecrm.analysis.rules import SEGMENT_ENTERED, SEGMENT_EXITED
from ecrm.analysis.segment_sql import LakeTables, literal, order_lines_table, timestamp_literal, value_sql
from ecrm.core.lake import AthenaLake

ORDER, RETURNED = "order_completed", "order_returned"
FACT_COLUMNS = "customer_id, event_id, event_type, occurred_at, amount, category, channel, source, order_id"
DELIVERED, OPENED, CLICKED = "message_delivered", "message_opened", "message_clicked"

DIMENSIONS: dict[str, str] = {
    "event_type": "e.event_type",
    "channel": "e.channel",
    "category": "e.category",
    "source": "e.source",
    "country": "p.a_country",
    "city": "p.a_city",
    "tier": "p.a_tier",
    "rfm_segment": "p.t_rfm_segment",
    "cluster": "p.t_cluster",
    "segment": "m.segment_id",
    "day": "CAST(date_trunc('day', e.occurred_at) AS DATE)",
    "week": "CAST(date_trunc('week', e.occurred_at) AS DATE)",
    "month": "CAST(date_trunc('month', e.occurred_at) AS DATE)",
}


def _is(kind: str) -> str:
    return f"e.event_type = {literal('string', kind)}"


_SALE = f"e.event_type IN ({literal('string', ORDER)}, {literal('string', RETURNED)})"
_ORDERS = f"count(DISTINCT CASE WHEN {_is(ORDER)} THEN e.order_id END)"


def _ratio(numerator: str, denominator: str) -> str:
    return f"CAST({numerator} AS DOUBLE) / NULLIF({denominator}, 0)"


MEASURES: dict[str, str] = {
    "events": "count(DISTINCT e.customer_id || '|' || e.event_id)",
    "customers": "count(DISTINCT e.customer_id)",
    "orders": _ORDERS,
    "revenue": f"COALESCE(sum(CASE WHEN {_SALE} THEN e.amount END), 0)",
    "average_order_value": _ratio(f"sum(CASE WHEN {_SALE} THEN e.amount END)", _ORDERS),
    "conversion_rate": _ratio(
        f"count(DISTINCT CASE WHEN {_is(ORDER)} THEN e.customer_id END)", "count(DISTINCT e.customer_id)"
    ),
    "messages_delivered": f"count_if({_is(DELIVERED)})",
    "open_rate": _ratio(f"count_if({_is(OPENED)})", f"count_if({_is(DELIVERED)})"),
    "click_rate": _ratio(f"count_if({_is(CLICKED)})", f"count_if({_is(DELIVERED)})"),
}
INTEGER_MEASURES = {"events", "customers", "orders", "messages_delivered"}
TIME_DIMENSIONS = {"day", "week", "month"}


def olap_sql(request: OlapRequest, tables: LakeTables) -> str:
    membership_kinds = f"({literal('string', SEGMENT_ENTERED)}, {literal('string', SEGMENT_EXITED)})"
    time_filter = ""
    if request.time_range is not None:
        time_filter = (
            f" AND occurred_at >= {timestamp_literal(request.time_range.start)}"
            f" AND occurred_at < {timestamp_literal(request.time_range.end)}"
        )
    ctes = [
        "latest AS (SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY customer_id ORDER BY version DESC) AS rn "
        f"FROM {tables.profiles}) ranked WHERE rn = 1)",
        *_facts(tables, membership_kinds, time_filter),
    ]
    joins = " LEFT JOIN latest p ON p.customer_id = e.customer_id"
    if "segment" in request.dimensions or any(f.dimension == "segment" for f in request.filters):
        ctes.append(
            "memberships AS (SELECT customer_id, segment_id FROM (SELECT customer_id, segment_id, event_type, "
            "row_number() OVER (PARTITION BY customer_id, segment_id ORDER BY occurred_at DESC, event_type DESC) AS rn "
            f"FROM {tables.events} WHERE event_type IN {membership_kinds}) ranked "
            f"WHERE rn = 1 AND event_type = {literal('string', SEGMENT_ENTERED)})"
        )
        joins += " JOIN memberships m ON m.customer_id = e.customer_id"
    selected = [f"{DIMENSIONS[d]} AS {d}" for d in request.dimensions]
    selected += [f"{MEASURES[m]} AS {m}" for m in request.measures]
    # Erased and merged customers' activity is not counted (a merge moved the loser's behaviour to the survivor).
    where = ["NOT COALESCE(p.deleted, FALSE)", *(_filter(f.dimension, f.op, f.value) for f in request.filters)]
    sql = f"WITH {', '.join(ctes)} SELECT {', '.join(selected)} FROM events e{joins}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if request.dimensions:
        sql += " GROUP BY " + ", ".join(str(n + 1) for n in range(len(request.dimensions)))
    order = request.order_by or (
        request.dimensions[0]
        if request.dimensions and request.dimensions[0] in TIME_DIMENSIONS
        else request.measures[0]
    )
    direction = "ASC" if order in TIME_DIMENSIONS else "DESC"
    tie_break = "".join(f", {d} ASC" for d in request.dimensions if d != order)
    sql += f" ORDER BY {order} {direction}{tie_break} LIMIT {int(request.limit)}"
    return sql


def _facts(tables: LakeTables, membership_kinds: str, time_filter: str) -> list[str]:
    """The `events` CTE: behaviour events and order rows as one fact table (see the module's docstring).

    Order rows are deduplicated whole (a row delivered twice is an identical copy); the lines of one order
    event share its event id, so the `events` measure counts an order placed or a return once.
    """
    order_rows = (
        "order_rows AS (SELECT DISTINCT event_id, order_id, customer_id, kind, sku, category, amount, channel, "
        f"occurred_at FROM {order_lines_table(tables)} WHERE customer_id IS NOT NULL AND order_id IS NOT NULL)"
    )
    cancelled = "cancelled AS (SELECT DISTINCT order_id FROM order_rows WHERE kind = 'cancellation')"
    behaviour = (
        "SELECT customer_id, event_id, event_type, occurred_at, amount, category, channel, source, "
        f"CASE WHEN event_type = {literal('string', ORDER)} THEN event_id END AS order_id FROM (SELECT *, "
        "row_number() OVER (PARTITION BY customer_id, event_id ORDER BY recorded_at) AS rn "
        f"FROM {tables.events} WHERE event_type NOT IN {membership_kinds}{time_filter}) ranked WHERE rn = 1 "
        f"AND (event_type <> {literal('string', ORDER)} OR customer_id NOT IN (SELECT customer_id FROM order_rows))"
    )
    orders = (
        "SELECT customer_id, event_id, "
        f"CASE WHEN kind = 'purchase' THEN {literal('string', ORDER)} ELSE {literal('string', RETURNED)} END "
        "AS event_type, occurred_at, amount, category, channel, CAST(NULL AS VARCHAR) AS source, order_id "
        "FROM order_rows WHERE kind IN ('purchase', 'return') "
        f"AND order_id NOT IN (SELECT order_id FROM cancelled){time_filter}"
    )
    return [order_rows, cancelled, f"events AS ({behaviour} UNION ALL {orders})"]


def _filter(dimension: str, op: str, value: Any) -> str:
    column = f"CAST({DIMENSIONS[dimension]} AS VARCHAR)" if dimension in TIME_DIMENSIONS else DIMENSIONS[dimension]
    return value_sql(column, "string", op, value if op in {"in", "not_in"} or not isinstance(value, list) else value[0])


def run_olap(request: OlapRequest, lake: AthenaLake) -> OlapResult:
    result = lake.run(olap_sql(request, LakeTables.in_database(lake.database)))
    rows = []
    for row in result.rows(request.limit):
        typed: dict[str, Any] = {}
        for name, value in row.items():
            if name in MEASURES:
                typed[name] = (
                    None
                    if value in (None, "")
                    else (int(float(value)) if name in INTEGER_MEASURES else round(float(value), 6))
                )
            else:
                typed[name] = value
        rows.append(typed)
    return OlapResult(
        columns=[*request.dimensions, *request.measures], rows=rows, data_scanned_bytes=result.scanned_bytes
    )
