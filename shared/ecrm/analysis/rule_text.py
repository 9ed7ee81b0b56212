"""A segment rule in words, for lists and confirmations: `country is one of FR, BE and ...`."""

from __future__ import annotations

from typing import Any

from ecrm.analysis.rules import (
    AllOf,
    AnyOf,
    AttributeCondition,
    Comparison,
    ConsentCondition,
    IdentityCondition,
    NotOf,
    OrderCondition,
    OrderQuery,
    Rule,
    SegmentCondition,
    TraitCondition,
    Window,
)

_SAY = {
    "eq": "is",
    "ne": "is not",
    "gt": "is over",
    "gte": "is at least",
    "lt": "is under",
    "lte": "is at most",
    "in": "is one of",
    "not_in": "is none of",
    "between": "is between",
    "contains": "contains",
    "starts_with": "starts with",
    "exists": "is known",
    "not_exists": "is unknown",
}


def describe(rule: Rule) -> str:
    """The rule in words, for lists and confirmations: `country is one of FR, BE and ...`."""
    if isinstance(rule, AllOf):
        return "(" + " and ".join(describe(r) for r in rule.all) + ")" if len(rule.all) > 1 else describe(rule.all[0])
    if isinstance(rule, AnyOf):
        return "(" + " or ".join(describe(r) for r in rule.any) + ")" if len(rule.any) > 1 else describe(rule.any[0])
    if isinstance(rule, NotOf):
        return f"not {describe(rule.not_)}"
    if isinstance(rule, AttributeCondition):
        return _say(rule.attribute, rule.op, rule.value)
    if isinstance(rule, TraitCondition):
        return _say(f"trait {rule.trait}", rule.op, rule.value)
    if isinstance(rule, ConsentCondition):
        if rule.state == "unknown":
            return f"never stated consent to {rule.purpose} {rule.consent}"
        verb = "may receive" if rule.state == "granted" else "refused"
        return f"{verb} {rule.purpose} {rule.consent}"
    if isinstance(rule, IdentityCondition):
        return f"has a known {rule.has_identity.replace('_', ' ')}"
    if isinstance(rule, SegmentCondition):
        return f"is in segment {rule.in_segment}"
    if isinstance(rule, OrderCondition):
        return _describe_orders(rule.orders)
    text = rule.event.replace("_", " ")
    if rule.where:
        text += " with " + " and ".join(_say(w.property, w.op, w.value) for w in rule.where)
    if rule.count is None and rule.sum is None:
        text += " at least once"
    if rule.count is not None:
        text += f" {_quantity(rule.count)} times"
    if rule.sum is not None:
        text += f" for an amount that {_say('', rule.sum.op, rule.sum.value).strip()}"
    return text + _describe_window(rule.window)


def _describe_orders(query: OrderQuery) -> str:
    text = "placed " + (f"{_quantity(query.count)} orders" if query.count is not None else "an order")
    if query.count is None and query.spent is not None:
        text = "placed orders"
    if query.where:
        text += " with " + " and ".join(_say(w.property, w.op, w.value) for w in query.where)
    if query.spent is not None:
        text += f" spending (net of returns) an amount that {_say('', query.spent.op, query.spent.value).strip()}"
    return text + _describe_window(query.window)


def _describe_window(window: Window | None) -> str:
    if window is None:
        return ""
    if window.last_days is not None:
        return f" in the last {window.last_days} days"
    if window.this is not None:
        return f" this {window.this}"
    return f" since {window.since:%Y-%m-%d}" + (f" until {window.until:%Y-%m-%d}" if window.until else "")


def _say(name: str, op: str, value: Any) -> str:
    if op in {"exists", "not_exists"}:
        return f"{name} {_SAY[op]}"
    if op == "between":
        return f"{name} {_SAY[op]} {value[0]} and {value[1]}"
    shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return f"{name} {_SAY[op]} {shown}"


def _quantity(comparison: Comparison) -> str:
    value = comparison.value
    if comparison.op == "between" and isinstance(value, list):
        return f"between {value[0]:g} and {value[1]:g}"
    words = {"eq": "exactly", "ne": "other than", "gt": "more than", "gte": "at least", "lt": "fewer than"}
    assert isinstance(value, int | float)
    return f"{words.get(comparison.op, 'at most')} {value:g}"
