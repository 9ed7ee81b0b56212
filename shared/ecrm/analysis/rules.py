"""Segment rules: the language a marketer writes and reads, and its validation.

A rule is JSON, nested groups of conditions:

    {"all": [
        {"attribute": "country", "op": "in", "value": ["FR", "BE"]},
        {"consent": "email", "purpose": "marketing"},
        {"event": "order_completed", "window": {"last_days": 90}, "count": {"op": "gte", "value": 2}},
        {"not": {"event": "email_opened", "window": {"last_days": 30}}},
        {"event": "order_completed", "where": [{"property": "category", "op": "eq", "value": "shoes"}],
         "window": {"this": "year"}, "sum": {"op": "gt", "value": 500}},
        {"in_segment": "seg_..."},
        {"orders": {"where": [{"property": "channel", "op": "eq", "value": "web"}], "window": {"this": "month"}}},
        {"orders": {"window": {"last_days": 90}, "count": {"op": "gte", "value": 2},
                    "spent": {"op": "gte", "value": 100}}}
    ]}

Conditions: `attribute` (profile attributes), `trait` (computed by the analysis jobs: RFM,
cluster, churn risk, CLV), `consent` (a channel and purpose, granted by default), `has_identity`,
`event` (behaviour in a time window: how many times, or how much amount, optionally filtered by
category, channel, product, amount or segment), `in_segment` (currently a member of another
segment), `orders` (orders the transactions engine took, net of their returns: how many, or how much
spent, in a time window, optionally filtered by channel, store, currency, category or sku); groups
`all`, `any`, `not`.

Semantics, identical on the real-time path (`ecrm.analysis.predicate`) and the batch path
(`ecrm.analysis.segment_sql`, proven equal by a property test):
- A condition on a missing value is false, whatever the operator (`ne`, `not_in` included);
  only `not_exists` matches a missing value. `not` negates a whole condition, so
  `{"not": {"attribute": "country", "op": "eq", "value": "FR"}}` includes customers without a country.
- Windows are relative to the evaluation time `now`: `last_days: N` is (now - N days, now];
  `this: day|week|month|year` starts at the calendar boundary in UTC (weeks start on Monday);
  `since`/`until` are absolute ([since, until)). Events after `now` never count.
- `count` defaults to "at least once"; `sum` adds the events' `amount` (events without one add
  nothing). Both given: both must hold.
- `in_segment` is true when the customer's latest `segment_entered` event for that segment is
  later than their latest `segment_exited` one.
- `orders` reads the order lines (the lake's `order_lines`: a purchase row per line placed, a
  negative row per line returned, a row per cancellation). A cancelled order is no order at all;
  a return is never a purchase: it takes its amount off the line it returns. An order falls in the
  window by when it was placed; it matches `where` when one of its lines does (`channel`, `store`,
  `currency` are the order's, `category` and `sku` the line's). `count` counts matching orders
  (default: at least one; an order returned in full was still placed); `spent` adds the net amount
  (bought less returned, in major units of the order's currency: filter on `currency` to compare
  like with like) of their matching lines. Rows after `now` are not there yet.

Fields are declared in a `FieldCatalog` with a type, so values are checked when a segment is
saved and the batch path reads typed columns. Validation errors name the offending part of the
rule (`rule.all[2].count.value`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, ConfigDict, Discriminator, Field, Tag, model_validator

from ecrm.core.contract import Contract
from ecrm.core.vocabulary import CHANNELS, PUBLISHED_ATTRIBUTES, Channel

FieldType = Literal["string", "number", "boolean", "date"]
Operator = Literal[
    "eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "between", "contains", "starts_with", "exists", "not_exists"
]
CountOperator = Literal["eq", "ne", "gt", "gte", "lt", "lte", "between"]
EventProperty = Literal["category", "channel", "product_id", "amount", "segment_id"]
OrderProperty = Literal["channel", "store", "currency", "category", "sku"]
ConsentChannel = Channel
IdentityKind = Literal["email", "phone", "external_id", "loyalty_card", "device_id"]

EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
SEGMENT_ENTERED = "segment_entered"
SEGMENT_EXITED = "segment_exited"
# What a change of a customer's orders is called among the event types a rule depends on (never a valid type).
ORDER_CHANGES = "@orders"
MAX_WINDOW_DAYS = 730
MAX_CONDITIONS = 100
MAX_DEPTH = 8

OPERATORS_BY_TYPE: dict[FieldType, frozenset[str]] = {
    "string": frozenset({"eq", "ne", "in", "not_in", "contains", "starts_with", "exists", "not_exists"}),
    "number": frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "between", "exists", "not_exists"}),
    "date": frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "between", "exists", "not_exists"}),
    "boolean": frozenset({"eq", "ne", "exists", "not_exists"}),
}
EVENT_PROPERTY_TYPES: dict[str, FieldType] = {
    "category": "string",
    "channel": "string",
    "product_id": "string",
    "amount": "number",
    "segment_id": "string",
}

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True)
class FieldCatalog:
    """What rules may reference, with types: the batch path's columns are derived from it."""

    attributes: Mapping[str, FieldType] = field(default_factory=dict)
    traits: Mapping[str, FieldType] = field(default_factory=dict)
    consent_purposes: tuple[str, ...] = ("marketing", "profiling", "transactional")
    consent_channels: tuple[str, ...] = CHANNELS
    identity_kinds: tuple[str, ...] = ("email", "phone", "external_id", "loyalty_card", "device_id")

    def __post_init__(self) -> None:
        for name in [*self.attributes, *self.traits]:
            if not _NAME.match(name):
                raise ValueError(f"field name {name!r} must be lower_snake_case")


# The transactions engine's loyalty standing, kept as traits under the names the customer store gives them
# (tier, balance, points expiring within 30 days, the day the next of them expire), so "loyalty tier is gold"
# means the same in a segment, a journey's contact card and an offer rule. The account version is one too:
# a projection keeps a standing only when it is newer than the one it holds (events arrive late and twice).
LOYALTY_TRAITS: Mapping[str, FieldType] = {
    "loyalty_tier": "string",
    "loyalty_balance": "number",
    "loyalty_qualifying_points": "number",
    "loyalty_points_expiring_30d": "number",
    "loyalty_expiring_by": "date",
    "loyalty_account_version": "number",
}

DEFAULT_CATALOG = FieldCatalog(
    attributes=dict(PUBLISHED_ATTRIBUTES),  # what the customer store publishes by default
    traits={
        **LOYALTY_TRAITS,
        "rfm_segment": "string",
        "rfm_recency": "number",
        "rfm_frequency": "number",
        "rfm_monetary": "number",
        "cluster": "string",
        "churn_risk": "number",
        "clv": "number",
        "p_alive": "number",
        "expected_orders_90d": "number",
        "orders": "number",
        "revenue": "number",
    },
)


# -- the rule models ---------------------------------------------------------------------------------------------
class _Strict(Contract):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AttributeCondition(_Strict):
    attribute: str
    op: Operator
    value: Any = None


class TraitCondition(_Strict):
    trait: str
    op: Operator
    value: Any = None


class ConsentCondition(_Strict):
    """`{"consent": "email", "purpose": "marketing"}`: may receive marketing email."""

    consent: ConsentChannel
    purpose: str = "marketing"
    state: Literal["granted", "denied", "unknown"] = "granted"


class IdentityCondition(_Strict):
    has_identity: IdentityKind


class Comparison(_Strict):
    op: CountOperator
    value: float | list[float]


class EventFilter(_Strict):
    property: EventProperty
    op: Operator
    value: Any = None


class Window(_Strict):
    """Exactly one of: `last_days`, `this`, or `since` (with an optional `until`)."""

    last_days: int | None = Field(default=None, ge=1, le=MAX_WINDOW_DAYS)
    this: Literal["day", "week", "month", "year"] | None = None
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Window:
        forms = [self.last_days is not None, self.this is not None, self.since is not None]
        if sum(forms) != 1:
            raise ValueError("a window is one of: last_days, this, or since (with an optional until)")
        if self.until is not None and (self.since is None or self.until <= self.since):
            raise ValueError("until needs a since before it")
        return self


class EventCondition(_Strict):
    event: str = Field(pattern=EVENT_TYPE_PATTERN)
    where: list[EventFilter] = Field(default_factory=list, max_length=10)
    window: Window | None = None
    count: Comparison | None = None
    sum: Comparison | None = None


class OrderFilter(_Strict):
    property: OrderProperty
    op: Operator
    value: Any = None


class OrderQuery(_Strict):
    where: list[OrderFilter] = Field(default_factory=list, max_length=10)
    window: Window | None = None
    count: Comparison | None = None
    spent: Comparison | None = None


class OrderCondition(_Strict):
    """`{"orders": {"window": {"last_days": 90}, "count": {"op": "gte", "value": 2}}}`: placed 2 orders in 90 days."""

    orders: OrderQuery


class SegmentCondition(_Strict):
    in_segment: str = Field(pattern=r"^seg_[A-Za-z0-9]{1,40}$")


class AllOf(_Strict):
    all: list[Rule] = Field(min_length=1, max_length=50)


class AnyOf(_Strict):
    any: list[Rule] = Field(min_length=1, max_length=50)


class NotOf(_Strict):
    not_: Rule = Field(alias="not")


_KINDS = {
    "all": "all",
    "any": "any",
    "not": "not",
    "not_": "not",
    "attribute": "attribute",
    "trait": "trait",
    "consent": "consent",
    "has_identity": "identity",
    "event": "event",
    "in_segment": "segment",
    "orders": "orders",
}


def _rule_kind(value: Any) -> str | None:
    keys = value.keys() if isinstance(value, dict) else value.__class__.model_fields.keys()
    for key in keys:
        if key in _KINDS:
            return _KINDS[key]
    return None


Rule = Annotated[
    Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[NotOf, Tag("not")]
    | Annotated[AttributeCondition, Tag("attribute")]
    | Annotated[TraitCondition, Tag("trait")]
    | Annotated[ConsentCondition, Tag("consent")]
    | Annotated[IdentityCondition, Tag("identity")]
    | Annotated[EventCondition, Tag("event")]
    | Annotated[SegmentCondition, Tag("segment")]
    | Annotated[OrderCondition, Tag("orders")],
    Discriminator(
        _rule_kind,
        custom_error_type="unknown_condition",
        custom_error_message=(
            "a rule part is one of: all, any, not, attribute, trait, consent, has_identity, event, in_segment, orders"
        ),
    ),
]

Leaf = (
    AttributeCondition
    | TraitCondition
    | ConsentCondition
    | IdentityCondition
    | EventCondition
    | SegmentCondition
    | OrderCondition
)


# -- validation ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RuleProblem:
    path: str
    message: str


def walk(rule: Rule, path: str = "rule") -> Iterator[tuple[str, Rule]]:
    """Every part of the rule with its path (`rule.all[1].not`), groups before their members."""
    yield path, rule
    if isinstance(rule, AllOf):
        for number, member in enumerate(rule.all):
            yield from walk(member, f"{path}.all[{number}]")
    elif isinstance(rule, AnyOf):
        for number, member in enumerate(rule.any):
            yield from walk(member, f"{path}.any[{number}]")
    elif isinstance(rule, NotOf):
        yield from walk(rule.not_, f"{path}.not")


def problems(rule: Rule, catalog: FieldCatalog = DEFAULT_CATALOG) -> list[RuleProblem]:
    """What is wrong with a structurally valid rule against the catalogue (empty when it is fine)."""
    found: list[RuleProblem] = []
    leaves = 0
    for path, part in walk(rule):
        if path.count(".") > MAX_DEPTH:
            found.append(RuleProblem(path, f"rules nest at most {MAX_DEPTH} levels"))
            break
        if isinstance(part, AllOf | AnyOf | NotOf):
            continue
        leaves += 1
        if isinstance(part, AttributeCondition):
            found += _check_field(path, "attribute", part.attribute, catalog.attributes, part.op, part.value)
        elif isinstance(part, TraitCondition):
            found += _check_field(path, "trait", part.trait, catalog.traits, part.op, part.value)
        elif isinstance(part, ConsentCondition):
            if part.purpose not in catalog.consent_purposes:
                found.append(
                    RuleProblem(
                        f"{path}.purpose", f"unknown purpose {part.purpose!r}; known: {_list(catalog.consent_purposes)}"
                    )
                )
        elif isinstance(part, EventCondition):
            found += _check_event(path, part)
        elif isinstance(part, OrderCondition):
            found += _check_orders(f"{path}.orders", part.orders)
    if leaves > MAX_CONDITIONS:
        found.append(RuleProblem("rule", f"a rule has at most {MAX_CONDITIONS} conditions ({leaves} given)"))
    return found


def _check_event(path: str, condition: EventCondition) -> list[RuleProblem]:
    found: list[RuleProblem] = []
    for number, where in enumerate(condition.where):
        kind = EVENT_PROPERTY_TYPES[where.property]
        found += _check_value(f"{path}.where[{number}]", kind, where.op, where.value)
    return found + _check_quantities(path, condition, ("count", "sum"))


def _check_orders(path: str, query: OrderQuery) -> list[RuleProblem]:
    found: list[RuleProblem] = []
    for number, where in enumerate(query.where):
        found += _check_value(f"{path}.where[{number}]", "string", where.op, where.value)
    return found + _check_quantities(path, query, ("count", "spent"))


def _check_quantities(path: str, condition: EventCondition | OrderQuery, names: tuple[str, str]) -> list[RuleProblem]:
    found: list[RuleProblem] = []
    for name in names:
        comparison = getattr(condition, name)
        if comparison is None:
            continue
        value = comparison.value
        if comparison.op == "between":
            if not (isinstance(value, list) and len(value) == 2 and value[0] <= value[1]):
                found.append(RuleProblem(f"{path}.{name}.value", "between takes [low, high] with low <= high"))
        elif isinstance(value, list):
            found.append(RuleProblem(f"{path}.{name}.value", f"{comparison.op} takes one number"))
        elif name == "count" and (value < 0 or value != int(value)):
            found.append(RuleProblem(f"{path}.count.value", "a count is a whole number, 0 or more"))
    return found


def _check_field(
    path: str, kind: str, name: str, known: Mapping[str, FieldType], op: str, value: Any
) -> list[RuleProblem]:
    if name not in known:
        return [RuleProblem(f"{path}.{kind}", f"unknown {kind} {name!r}; known: {_list(sorted(known))}")]
    return _check_value(path, known[name], op, value)


def _check_value(path: str, kind: FieldType, op: str, value: Any) -> list[RuleProblem]:
    if op not in OPERATORS_BY_TYPE[kind]:
        allowed = _list(sorted(OPERATORS_BY_TYPE[kind]))
        return [RuleProblem(f"{path}.op", f"{op} does not apply to a {kind}; use one of {allowed}")]
    if op in {"exists", "not_exists"}:
        return [] if value is None else [RuleProblem(f"{path}.value", f"{op} takes no value")]
    if op in {"in", "not_in"}:
        if not isinstance(value, list) or not 1 <= len(value) <= 500:
            return [RuleProblem(f"{path}.value", f"{op} takes a list of 1 to 500 values")]
        values = value
    elif op == "between":
        if not isinstance(value, list) or len(value) != 2:
            return [RuleProblem(f"{path}.value", "between takes [low, high]")]
        values = value
    else:
        values = [value]
    for item in values:
        reason = _type_mismatch(kind, item)
        if reason:
            return [RuleProblem(f"{path}.value", reason)]
    if op == "between" and coerce(kind, values[0]) > coerce(kind, values[1]):
        return [RuleProblem(f"{path}.value", "between takes [low, high] with low <= high")]
    if op in {"contains", "starts_with"} and value == "":
        return [RuleProblem(f"{path}.value", f"{op} takes a non-empty text")]
    return []


def _type_mismatch(kind: FieldType, value: Any) -> str | None:
    if kind == "string" and not isinstance(value, str):
        return f"expected a text, got {value!r}"
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
        return f"expected a number, got {value!r}"
    if kind == "boolean" and not isinstance(value, bool):
        return f"expected true or false, got {value!r}"
    if kind == "date":
        try:
            coerce("date", value)
        except (TypeError, ValueError):
            return f"expected a date (YYYY-MM-DD), got {value!r}"
    if kind == "string" and len(value) > 256:
        return "texts in rules are at most 256 characters"
    return None


def coerce(kind: FieldType, value: Any) -> Any:
    """A rule or profile value in its comparable form (dates as `date`, numbers as float)."""
    if value is None:
        return None
    if kind == "date":
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        return date.fromisoformat(str(value)[:10])
    if kind == "number":
        return float(value)
    return value


def _list(items: Any) -> str:
    return ", ".join(items)


# -- what a rule depends on (real-time re-evaluation) ----------------------------------------------------------------
@dataclass(frozen=True)
class Dependencies:
    """What changes can change a rule's result for a customer: the real-time path's index."""

    attributes: frozenset[str] = frozenset()
    traits: frozenset[str] = frozenset()
    consents: frozenset[str] = frozenset()
    identities: frozenset[str] = frozenset()
    events: frozenset[str] = frozenset()
    segments: frozenset[str] = frozenset()
    time_relative: bool = False


def dependencies(rule: Rule) -> Dependencies:
    found: dict[str, set[str]] = {
        k: set() for k in ("attributes", "traits", "consents", "identities", "events", "segments")
    }
    time_relative = False
    for _, part in walk(rule):
        if isinstance(part, AttributeCondition):
            found["attributes"].add(part.attribute)
        elif isinstance(part, TraitCondition):
            found["traits"].add(part.trait)
        elif isinstance(part, ConsentCondition):
            found["consents"].add(f"{part.consent}:{part.purpose}")
        elif isinstance(part, IdentityCondition):
            found["identities"].add(part.has_identity)
        elif isinstance(part, EventCondition):
            found["events"].add(part.event)
            time_relative = time_relative or (part.window is not None and part.window.since is None)
            found["segments"].update(str(w.value) for w in part.where if w.property == "segment_id" and w.op == "eq")
        elif isinstance(part, SegmentCondition):
            found["segments"].add(part.in_segment)
            found["events"].update({SEGMENT_ENTERED, SEGMENT_EXITED})
        elif isinstance(part, OrderCondition):
            found["events"].add(ORDER_CHANGES)
            window = part.orders.window
            time_relative = time_relative or (window is not None and window.since is None)
    return Dependencies(**{k: frozenset(v) for k, v in found.items()}, time_relative=time_relative)
