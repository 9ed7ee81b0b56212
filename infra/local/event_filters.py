"""Event source mappings' filter criteria (`FilterCriteria`), matched as Lambda matches them: what the local
queue and stream pollers skip before invoking.

The subset the platform's mappings use: exact values, `prefix` and `exists`, nested objects, lists of
alternatives. A pattern using anything else is refused when the mapping is created, not silently ignored.
"""

from __future__ import annotations

from typing import Any

_MISSING = object()
_OPERATORS = {"prefix", "exists"}


def checked_filter(pattern: Any) -> Any:
    """A filter pattern, refused at start-up if it uses a rule the local matcher does not run."""

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for rule in node:
                if isinstance(rule, dict) and not set(rule) <= _OPERATORS:
                    raise NotImplementedError(f"filter rule {rule} is not run locally (only values, prefix, exists)")
        else:
            raise NotImplementedError(f"filter pattern leaf {node!r} must be a list of rules")

    walk(pattern)
    return pattern


def matches(pattern: dict[str, Any], record: Any) -> bool:
    """Lambda's event filtering: every field of the pattern matches; a list matches if any of its rules does."""
    if not isinstance(record, dict):
        return False
    for key, expected in pattern.items():
        value = record.get(key, _MISSING)
        if isinstance(expected, dict):
            if not matches(expected, value):
                return False
        elif not any(_matches_rule(rule, value) for rule in expected):
            return False
    return True


def _matches_rule(rule: Any, value: Any) -> bool:
    if isinstance(rule, dict):
        if "exists" in rule:
            return (value is not _MISSING) == bool(rule["exists"])
        return isinstance(value, str) and value.startswith(rule["prefix"])
    return value is not _MISSING and value == rule
