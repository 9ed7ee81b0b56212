"""DynamoDB's read and write units of a request, from its items' sizes as DynamoDB bills them (the cost bench's).

On-demand rounding: writes per KB, reads per 4 KB, transactions twice. `wire_bytes` sizes an item as its
request JSON, the way of the figures published before (an overestimate: a JSON doc inside the JSON request has
its quotes escaped).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def wire_bytes(value: Any) -> int:
    """The item's size as the request's JSON: the sizing of the figures published before (an overestimate)."""
    return len(json.dumps(value, separators=(",", ":")))


def item_bytes(value: Any) -> int:
    """An item's (or a list of items') size as DynamoDB bills it: each attribute's name and value in UTF-8 bytes,
    numbers at about a byte per two digits plus one, 3 bytes for a map or list and 1 per element (as documented)."""
    if isinstance(value, list):
        return sum(item_bytes(v) for v in value)
    return sum(len(name.encode()) + _value_bytes(typed) for name, typed in (value or {}).items())


def _value_bytes(typed: dict[str, Any]) -> int:
    kind, value = next(iter(typed.items()))
    if kind == "S":
        return len(value.encode())
    if kind == "N":
        return (len(value.lstrip("-").replace(".", "")) + 1) // 2 + 1
    if kind == "B":
        return len(value) * 3 // 4
    if kind in {"BOOL", "NULL"}:
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_bytes(v) + 1 for k, v in value.items())
    if kind == "L":
        return 3 + sum(_value_bytes(v) + 1 for v in value)
    return sum(len(str(v).encode()) for v in value)  # SS, NS, BS


SIZE = item_bytes  # the bench's sizing; `wire_bytes` gives the published figures' for comparison


def _kb(value: Any, unit: int, size: Callable[[Any], int] = SIZE) -> int:
    return max(1, math.ceil(size(value) / unit))


def read_units(operation: str, request: dict[str, Any], answer: dict[str, Any]) -> float:
    if operation not in READS:
        return 0.0
    strong = 1.0 if request.get("ConsistentRead") else 0.5
    if operation == "GetItem":
        return strong * _kb(answer.get("Item") or {}, 4096)
    if operation == "BatchGetItem":
        items = [i for table in (answer.get("Responses") or {}).values() for i in table]
        return sum(0.5 * _kb(i, 4096) for i in items) or 0.5
    if operation == "TransactGetItems":
        return sum(2.0 * _kb(r.get("Item") or {}, 4096) for r in answer.get("Responses") or [])
    return strong * _kb(answer.get("Items") or [], 4096)  # Query, Scan: the page's size, per 4 KB


def write_units(operation: str, request: dict[str, Any], size: Callable[[Any], int] = SIZE) -> float:
    if operation in {"PutItem"}:
        return float(_kb(request.get("Item") or {}, 1024, size))
    if operation in {"UpdateItem", "DeleteItem"}:
        return 1.0  # our updates touch small items (counters, markers); a bigger item would cost more
    if operation == "BatchWriteItem":
        writes = [w for table in (request.get("RequestItems") or {}).values() for w in table]
        return float(sum(_kb(w.get("PutRequest", {}).get("Item") or {}, 1024, size) for w in writes))
    if operation == "TransactWriteItems":
        total = 0
        for item in request.get("TransactItems") or []:
            put = item.get("Put")
            total += 2 * (_kb(put["Item"], 1024, size) if put else 1)
        return float(total)
    return 0.0


def units_by_item(operation: str, request: dict[str, Any]) -> list[tuple[str, float]]:
    """Each written item's kind (table, key prefixes) and write units: where the DynamoDB cost comes from."""
    table = str(request.get("TableName") or "")
    if operation == "PutItem":
        return [(_kind(table, request.get("Item") or {}), write_units("PutItem", request))]
    if operation in {"UpdateItem", "DeleteItem"}:
        return [(_kind(table, request.get("Key") or {}) + f" ({operation})", 1.0)]
    if operation == "TransactWriteItems":
        found = []
        for action in request.get("TransactItems") or []:
            verb, body = next(iter(action.items()))
            key = body.get("Item") or body.get("Key") or {}
            units = 2.0 * (_kb(key, 1024) if verb == "Put" else 1)
            found.append((_kind(str(body.get("TableName") or ""), key) + f" (transaction {verb})", units))
        return found
    if operation == "BatchWriteItem":
        return [
            (_kind(t, w.get("PutRequest", {}).get("Item") or {}), float(_kb(w.get("PutRequest", {}).get("Item"), 1024)))
            for t, writes in (request.get("RequestItems") or {}).items()
            for w in writes
            if w.get("PutRequest")
        ]
    return []


def read_units_by_item(operation: str, request: dict[str, Any], answer: dict[str, Any]) -> list[tuple[str, float]]:
    """Each read's kind (table, key prefixes; a query by its partition's prefix) and read units: where the reads
    cost. A `BatchGetItem` is split over its tables' keys evenly."""
    table = str(request.get("TableName") or "")
    units = read_units(operation, request, answer)
    strength = " strong" if request.get("ConsistentRead") else ""
    if operation == "GetItem":
        return [(_kind(table, request.get("Key") or {}) + f" (GetItem{strength})", units)]
    if operation == "Query":
        values = request.get("ExpressionAttributeValues") or {}
        first: dict[str, Any] = next(iter(values.values()), {}) if values else {}
        prefix = str(first.get("S", "?")).split("#")[0]
        return [(f"{table[-28:]} {prefix}/* (Query{strength})", units)]
    if operation == "BatchGetItem":
        keys = [(t, k) for t, spec in (request.get("RequestItems") or {}).items() for k in spec.get("Keys") or []]
        return [(_kind(t, k) + " (BatchGetItem)", units / len(keys)) for t, k in keys] if keys else []
    return [(f"{table[-28:]} ({operation})", units)] if units else []


def _kind(table: str, item: dict[str, Any]) -> str:
    pk = str((item.get("pk") or {}).get("S", "?")).split("#")[0]
    sk = str((item.get("sk") or {}).get("S", "?")).split("#")[0]
    status = (item.get("status") or {}).get("S")  # a message's put: which transition wrote it
    return f"{table[-28:]} {pk}/{sk[:16]}" + (f" {status}" if status else "")
