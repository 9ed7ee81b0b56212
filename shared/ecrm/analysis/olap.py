"""OLAP over the lake: slice and dice activity by dimensions with measures, as one SQL query.

The fact is a behaviour event (orders, interactions, message outcomes, all deduplicated by
event id), joined with the customer's latest profile row for customer dimensions and with current
segment memberships for the `segment` dimension (a customer in two segments counts in both).
The SQL is the subset Athena and DuckDB share (`count_if`, `date_trunc`, `CAST`, window
functions); ratios are computed in DOUBLE so integer division never truncates them.
"""

from __future__ import annotations

from typing import Any

from ecrm.analysis.models import OlapRequest, OlapResult
from ecrm.analysis.rules import SEGMENT_ENTERED, SEGMENT_EXITED
from ecrm.analysis.segment_sql import LakeTables, literal, timestamp_literal, value_sql
from ecrm.core.lake import AthenaLake

ORDER = "order_completed"
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


def _ratio(numerator: str, denominator: str) -> str:
    return f"CAST({numerator} AS DOUBLE) / NULLIF({denominator}, 0)"


MEASURES: dict[str, str] = {
    "events": "count(*)",
    "customers": "count(DISTINCT e.customer_id)",
    "orders": f"count_if({_is(ORDER)})",
    "revenue": f"COALESCE(sum(CASE WHEN {_is(ORDER)} THEN e.amount END), 0)",
    "average_order_value": _ratio(f"sum(CASE WHEN {_is(ORDER)} THEN e.amount END)", f"count_if({_is(ORDER)})"),
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
        "events AS (SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY customer_id, event_id "
        f"ORDER BY recorded_at) AS rn FROM {tables.events} WHERE event_type NOT IN {membership_kinds}{time_filter}) "
        "ranked WHERE rn = 1)",
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
