"""Segment rules as the engine reads them: what they depend on, how they read aloud, and build shards."""

from __future__ import annotations

from typing import Any

import pytest
from ecrm.analysis.rule_text import describe
from ecrm.analysis.rules import Rule, dependencies, problems
from ecrm.analysis.segment_sql import CROCKFORD, Shard
from pydantic import TypeAdapter, ValidationError

RULE: TypeAdapter[Rule] = TypeAdapter(Rule)


def rule(value: dict[str, Any]) -> Rule:
    return RULE.validate_python(value)


@pytest.mark.parametrize(
    ("value", "time_relative"),
    [
        ({"event": "order_completed", "window": {"last_days": 30}}, True),
        ({"event": "order_completed", "window": {"this": "month"}}, True),
        ({"event": "order_completed", "window": {"since": "2026-01-01T00:00:00Z"}}, False),
        ({"event": "order_completed"}, False),
        ({"not": {"in_segment": "seg_A"}}, False),
        ({"attribute": "country", "op": "eq", "value": "FR"}, False),
    ],
)
def test_only_windows_relative_to_now_make_a_segment_change_with_time(
    value: dict[str, Any], time_relative: bool
) -> None:
    # When the dependencies of a rule are read, then only relative windows need the scheduled rebuild
    assert dependencies(rule(value)).time_relative is time_relative


def test_dependencies_name_every_field_event_and_segment_a_rule_reads() -> None:
    # Given a rule over every kind of condition
    value = {
        "all": [
            {"attribute": "country", "op": "in", "value": ["FR", "BE"]},
            {"trait": "clv", "op": "gt", "value": 100},
            {"consent": "sms", "purpose": "profiling"},
            {"has_identity": "phone"},
            {
                "any": [
                    {"in_segment": "seg_A"},
                    {"event": "email_opened", "where": [{"property": "segment_id", "op": "eq", "value": "seg_B"}]},
                ]
            },
        ]
    }

    # When its dependencies are read
    found = dependencies(rule(value))

    # Then each is named where the real-time path looks for it
    assert (found.attributes, found.traits, found.consents, found.identities) == (
        frozenset({"country"}),
        frozenset({"clv"}),
        frozenset({"sms:profiling"}),
        frozenset({"phone"}),
    )
    assert found.events == frozenset({"email_opened", "segment_entered", "segment_exited"})
    assert found.segments == frozenset({"seg_A", "seg_B"})


def test_a_rule_reads_aloud() -> None:
    value = {
        "all": [
            {"attribute": "country", "op": "in", "value": ["FR", "BE"]},
            {"not": {"event": "email_opened", "window": {"last_days": 30}}},
            {
                "event": "order_completed",
                "where": [{"property": "category", "op": "eq", "value": "shoes"}],
                "window": {"this": "year"},
                "sum": {"op": "gt", "value": 500.5},
            },
            {"consent": "email", "state": "unknown"},
        ]
    }
    assert describe(rule(value)) == (
        "(country is one of FR, BE and not email opened at least once in the last 30 days and order completed with"
        " category is shoes for an amount that is over 500.5 this year and never stated consent to marketing email)"
    )


def test_catalogue_problems_are_named_by_path() -> None:
    # Given a rule with a bad between, a list given to a single-value operator and an unknown purpose
    value = {
        "any": [
            {"attribute": "birth_date", "op": "between", "value": ["2000-01-01", "1990-01-01"]},
            {"event": "order_completed", "sum": {"op": "gt", "value": [1, 2]}},
            {"consent": "email", "purpose": "raffles"},
        ]
    }

    # Then each problem says where it is
    assert [p.path for p in problems(rule(value))] == [
        "rule.any[0].value",
        "rule.any[1].sum.value",
        "rule.any[2].purpose",
    ]


def test_a_window_is_one_form_only() -> None:
    # When a window mixes forms, or ends before it starts, then the rule's shape is refused
    with pytest.raises(ValidationError, match="one of"):
        rule({"event": "order_completed", "window": {"last_days": 7, "this": "week"}})
    with pytest.raises(ValidationError, match="until needs a since"):
        rule({"event": "x", "window": {"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}})


@pytest.mark.parametrize("count", range(1, 33))
def test_the_shards_of_a_build_cover_every_id_ending_exactly_once(count: int) -> None:
    # When a build is split in `count` shards
    owners: dict[str, list[int]] = {}
    for index in range(count):
        for ending in Shard(index, count).endings:
            owners.setdefault(ending, []).append(index)

    # Then every id ending (in either case) belongs to exactly one shard
    assert set(owners) == set(CROCKFORD) | set(CROCKFORD.lower())
    assert all(len(shards) == 1 for shards in owners.values())


@pytest.mark.parametrize(("index", "count"), [(0, 0), (1, 1), (-1, 4), (0, 33)])
def test_a_shard_outside_the_alphabet_is_refused(index: int, count: int) -> None:
    with pytest.raises(ValueError, match="shard"):
        Shard(index, count)
