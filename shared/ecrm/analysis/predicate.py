"""The real-time path: a segment rule as a Python predicate over one customer.

`compile_predicate(rule, catalog)` turns a validated rule into nested closures once; calling the
result with a `Subject` and `now` costs a few dictionary reads per condition, and behaviour
conditions scan only the customer's events of the named type (events are indexed by type), so
one profile against a hundred segments stays well under a millisecond.

The semantics are those documented in `ecrm.analysis.rules`; `ecrm.analysis.segment_sql` compiles
the same rule to SQL and a property test proves both agree.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

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

Predicate = Callable[["Subject", datetime], bool]


@dataclass(frozen=True)
class BehaviourEvent:
    """One thing the customer did, in the form both paths read (the lake's `behaviour_events` row)."""

    event_id: str
    type: str
    occurred_at: datetime
    amount: float | None = None
    category: str | None = None
    channel: str | None = None
    product_id: str | None = None
    segment_id: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class OrderRow:
    """One row of the lake's `order_lines` as both paths read it: `kind` is `purchase`, `return` (negative
    amount) or `cancellation`; `amount` in major units of `currency`."""

    event_id: str
    order_id: str
    kind: str
    occurred_at: datetime
    amount: float
    currency: str
    sku: str | None = None
    category: str | None = None
    channel: str | None = None
    store: str | None = None


@dataclass
class Subject:
    """What segmentation knows of one customer: the analysis engine's projection of the profile.

    `consents` maps `channel:purpose` to `granted` or `denied`; `identities` holds the kinds of
    identity the customer has (not their values).
    """

    customer_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)
    consents: dict[str, str] = field(default_factory=dict)
    identities: frozenset[str] = frozenset()
    events: Sequence[BehaviourEvent] = ()
    orders: Sequence[OrderRow] = ()
    _by_type: dict[str, list[BehaviourEvent]] | None = field(default=None, repr=False, compare=False)

    def events_of(self, kind: str) -> list[BehaviourEvent]:
        if self._by_type is None:
            index: dict[str, list[BehaviourEvent]] = defaultdict(list)
            for event in self.events:
                index[event.type].append(event)
            self._by_type = dict(index)
        return self._by_type.get(kind, [])


def compile_predicate(rule: Rule, catalog: FieldCatalog = DEFAULT_CATALOG) -> Predicate:
    """A validated rule as `predicate(subject, now) -> bool`."""
    if isinstance(rule, AllOf):
        members = [compile_predicate(r, catalog) for r in rule.all]
        return lambda s, now: all(p(s, now) for p in members)
    if isinstance(rule, AnyOf):
        options = [compile_predicate(r, catalog) for r in rule.any]
        return lambda s, now: any(p(s, now) for p in options)
    if isinstance(rule, NotOf):
        inner = compile_predicate(rule.not_, catalog)
        return lambda s, now: not inner(s, now)
    if isinstance(rule, AttributeCondition):
        test = value_test(catalog.attributes[rule.attribute], rule.op, rule.value)
        name = rule.attribute
        return lambda s, now: test(s.attributes.get(name))
    if isinstance(rule, TraitCondition):
        test = value_test(catalog.traits[rule.trait], rule.op, rule.value)
        trait = rule.trait
        return lambda s, now: test(s.traits.get(trait))
    if isinstance(rule, ConsentCondition):
        key, state = f"{rule.consent}:{rule.purpose}", rule.state
        if state == "unknown":
            return lambda s, now: s.consents.get(key) is None
        return lambda s, now: s.consents.get(key) == state
    if isinstance(rule, IdentityCondition):
        kind = rule.has_identity
        return lambda s, now: kind in s.identities
    if isinstance(rule, SegmentCondition):
        return _membership(rule.in_segment)
    if isinstance(rule, OrderCondition):
        return _orders(rule.orders)
    return _behaviour(rule)


def value_test(kind: FieldType, op: str, expected: Any) -> Callable[[Any], bool]:
    """`test(actual)` for one comparison; a missing actual value only satisfies `not_exists`."""
    if op == "exists":
        return lambda actual: actual is not None
    if op == "not_exists":
        return lambda actual: actual is None
    if op in {"in", "not_in"}:
        options = {coerce(kind, v) for v in expected}
        if op == "in":
            return lambda actual: actual is not None and coerce(kind, actual) in options
        return lambda actual: actual is not None and coerce(kind, actual) not in options
    if op == "between":
        low, high = coerce(kind, expected[0]), coerce(kind, expected[1])
        return lambda actual: actual is not None and low <= coerce(kind, actual) <= high
    if op == "contains":
        return lambda actual: actual is not None and expected in actual
    if op == "starts_with":
        return lambda actual: actual is not None and actual.startswith(expected)
    compare = _COMPARE[op]
    target = coerce(kind, expected)
    return lambda actual: actual is not None and compare(coerce(kind, actual), target)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def window_bounds(window: Window | None, now: datetime) -> tuple[datetime | None, bool, datetime]:
    """(start, start_inclusive, end_exclusive_or_now): events count when start <(=) at and at <= now (< until)."""
    if window is None:
        return None, True, now
    if window.last_days is not None:
        return now - timedelta(days=window.last_days), False, now
    if window.this is not None:
        return period_start(window.this, now), True, now
    assert window.since is not None
    return window.since, True, now


def period_start(period: str, now: datetime) -> datetime:
    """The start of the current calendar day, week (Monday), month or year, in UTC."""
    utc = now.astimezone(UTC)
    day = datetime(utc.year, utc.month, utc.day, tzinfo=UTC)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=utc.weekday())
    if period == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def _quantity_tests(
    count: Comparison | None, amount: Comparison | None
) -> tuple[Callable[[float], bool] | None, Callable[[float], bool] | None]:
    """The count's and the amount's tests; a condition naming neither asks for at least one."""
    count_test = _quantity_test(count) if count is not None else None
    amount_test = _quantity_test(amount) if amount is not None else None
    if count_test is None and amount_test is None:
        count_test = _quantity_test(Comparison(op="gte", value=1))
    return count_test, amount_test


def _behaviour(rule: EventCondition) -> Predicate:
    kind = rule.event
    filters = [
        (where.property, value_test(EVENT_PROPERTY_TYPES[where.property], where.op, where.value))
        for where in rule.where
    ]
    count_test, sum_test = _quantity_tests(rule.count, rule.sum)
    window, until = rule.window, rule.window.until if rule.window is not None else None

    def matches(subject: Subject, now: datetime) -> bool:
        start, inclusive, end = window_bounds(window, now)
        count, total = 0, 0.0
        for event in subject.events_of(kind):
            at = event.occurred_at
            if at > end or (until is not None and at >= until):
                continue
            if start is not None and (at < start or (at == start and not inclusive)):
                continue
            if all(test(getattr(event, prop)) for prop, test in filters):
                count += 1
                if event.amount is not None:
                    total += event.amount
        if count_test is not None and not count_test(count):
            return False
        return sum_test is None or sum_test(total)

    return matches


@dataclass
class _Order:
    placed_at: datetime
    properties: dict[str, str | None]
    lines: dict[str | None, tuple[str | None, float]] = field(default_factory=dict)  # sku -> (category, net amount)


def placed_orders(rows: Iterable[OrderRow], now: datetime) -> list[_Order]:
    """The customer's orders as of `now`, not cancelled, each line net of what came back of it."""
    seen = [r for r in dict.fromkeys(rows) if r.occurred_at <= now]  # a row delivered twice counts once
    cancelled = {r.order_id for r in seen if r.kind == "cancellation"}
    orders: dict[str, _Order] = {}
    for row in sorted((r for r in seen if r.kind == "purchase"), key=lambda r: r.occurred_at):
        order = orders.setdefault(
            row.order_id, _Order(row.occurred_at, {"channel": None, "store": None, "currency": None})
        )
        for name, value in (("channel", row.channel), ("store", row.store), ("currency", row.currency)):
            if value is not None and (order.properties[name] is None or value > str(order.properties[name])):
                order.properties[name] = value  # the lines of one order agree; the largest, as SQL's max()
    for row in seen:
        placed = orders.get(row.order_id)
        if placed is None or row.order_id in cancelled or row.kind not in {"purchase", "return"}:
            continue
        category, net = placed.lines.get(row.sku, (None, 0.0))
        if row.category is not None and (category is None or row.category > category):
            category = row.category
        placed.lines[row.sku] = (category, net + row.amount)
    return [order for order_id, order in orders.items() if order_id not in cancelled]


def _orders(query: OrderQuery) -> Predicate:
    filters = [(where.property, value_test("string", where.op, where.value)) for where in query.where]
    count_test, spent_test = _quantity_tests(query.count, query.spent)
    window, until = query.window, query.window.until if query.window is not None else None

    def matches(subject: Subject, now: datetime) -> bool:
        start, inclusive, _ = window_bounds(window, now)
        count, spent = 0, 0.0
        for order in placed_orders(subject.orders, now):
            at = order.placed_at
            if (until is not None and at >= until) or (
                start is not None and (at < start or (at == start and not inclusive))
            ):
                continue
            matched = False
            for sku, (category, net) in order.lines.items():
                values = {**order.properties, "sku": sku, "category": category}
                if all(test(values[prop]) for prop, test in filters):
                    matched = True
                    spent += net
            count += matched
        if count_test is not None and not count_test(count):
            return False
        return spent_test is None or spent_test(spent)

    return matches


def _quantity_test(comparison: Comparison) -> Callable[[float], bool]:
    value = comparison.value
    if comparison.op == "between":
        assert isinstance(value, list)
        low, high = float(value[0]), float(value[1])
        return lambda actual: low <= actual <= high
    compare, target = _COMPARE[comparison.op], float(value)  # type: ignore[arg-type]
    return lambda actual: compare(actual, target)


def _membership(segment_id: str) -> Predicate:
    def member(subject: Subject, now: datetime) -> bool:
        entered = _latest(subject.events_of(SEGMENT_ENTERED), segment_id, now)
        if entered is None:
            return False
        exited = _latest(subject.events_of(SEGMENT_EXITED), segment_id, now)
        return exited is None or entered > exited

    return member


def _latest(events: Iterable[BehaviourEvent], segment_id: str, now: datetime) -> datetime | None:
    times = [e.occurred_at for e in events if e.segment_id == segment_id and e.occurred_at <= now]
    return max(times) if times else None


def subject_attributes(values: Mapping[str, Any], catalog_types: Mapping[str, FieldType]) -> dict[str, Any]:
    """Profile values in their comparable types, keeping only catalogued fields; bad values become missing."""
    kept: dict[str, Any] = {}
    for name, kind in catalog_types.items():
        value = values.get(name)
        if value is None:
            continue
        try:
            kept[name] = _typed(kind, value)
        except (TypeError, ValueError):
            continue
    return kept


def _typed(kind: FieldType, value: Any) -> Any:
    if kind == "number":
        if isinstance(value, bool):
            raise TypeError("a boolean is not a number")
        return float(value)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise TypeError("not a boolean")
        return value
    if kind == "date":
        return value if isinstance(value, date) and not isinstance(value, datetime) else coerce("date", value)
    return str(value)
