"""Schedule expressions as the AWS docs define them, and the local clock's durations (no AWS, no waiting)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from infra.local.clock import LocalClock, parse_duration
from infra.local.schedule_expressions import At, Cron, Rate, UnsupportedExpression, parse


def occurrences(expression: str, after: datetime, n: int, timezone: str = "UTC") -> list[str]:
    cron = parse(expression, timezone)
    assert isinstance(cron, Cron)
    found: list[str] = []
    at: datetime | None = after
    while len(found) < n:
        assert at is not None
        at = cron.next_after(at)
        assert at is not None
        found.append(at.strftime("%Y-%m-%dT%H:%MZ"))
    return found


def test_nine_in_paris_before_and_after_the_last_sunday_of_march() -> None:
    # Summer time starts on Sunday 29 March 2026: 09:00 Paris is 08:00 UTC before, 07:00 UTC after
    assert occurrences("cron(0 9 * * ? *)", datetime(2026, 3, 27, 12, tzinfo=UTC), 3, "Europe/Paris") == [
        "2026-03-28T08:00Z",
        "2026-03-29T07:00Z",
        "2026-03-30T07:00Z",
    ]


def test_nine_in_paris_before_and_after_the_last_sunday_of_october() -> None:
    assert occurrences("cron(0 9 * * ? *)", datetime(2026, 10, 23, 12, tzinfo=UTC), 3, "Europe/Paris") == [
        "2026-10-24T07:00Z",
        "2026-10-25T08:00Z",
        "2026-10-26T08:00Z",
    ]


def test_a_time_skipped_by_spring_forward_is_skipped_and_a_repeated_one_runs_once() -> None:
    # 02:30 does not exist in Paris on 29 March 2026 and happens twice on 25 October 2026
    assert occurrences("cron(30 2 * * ? *)", datetime(2026, 3, 28, 12, tzinfo=UTC), 2, "Europe/Paris") == [
        "2026-03-30T00:30Z",
        "2026-03-31T00:30Z",
    ]
    assert occurrences("cron(30 2 * * ? *)", datetime(2026, 10, 24, 12, tzinfo=UTC), 2, "Europe/Paris") == [
        "2026-10-25T00:30Z",
        "2026-10-26T01:30Z",
    ]


@pytest.mark.parametrize(
    ("expression", "first"),
    [
        ("cron(0 10 * * ? *)", "2026-03-02T10:00Z"),  # 10:00 every day
        ("cron(15 12 * * ? *)", "2026-03-02T12:15Z"),  # 12:15 every day
        ("cron(0 18 ? * MON-FRI *)", "2026-03-02T18:00Z"),  # 18:00 Monday to Friday
        ("cron(0 8 1 * ? *)", "2026-04-01T08:00Z"),  # 08:00 on the first of the month
        ("cron(0/15 * * * ? *)", "2026-03-02T00:15Z"),  # every 15 minutes
        ("cron(0/10 * ? * MON-FRI *)", "2026-03-02T00:10Z"),  # every 10 minutes, weekdays
        ("cron(0/5 8-17 ? * MON-FRI *)", "2026-03-02T08:00Z"),  # every 5 minutes 08:00-17:55, weekdays
        ("cron(0 9 ? * 2#1 *)", "2026-03-02T09:00Z"),  # 09:00 on the first Monday (2 March 2026)
        ("cron(0 9 L * ? *)", "2026-03-31T09:00Z"),  # the last day of the month
        ("cron(0 9 ? * 6L *)", "2026-03-27T09:00Z"),  # the last Friday of the month (6 is Friday)
        ("cron(0 9 15W * ? *)", "2026-03-16T09:00Z"),  # the weekday nearest the 15th (a Sunday)
        ("cron(0 9 ? * 1 *)", "2026-03-08T09:00Z"),  # 1 is Sunday in AWS cron
    ],
)
def test_the_aws_docs_cron_examples(expression: str, first: str) -> None:
    assert occurrences(expression, datetime(2026, 3, 2, 0, 0, 30, tzinfo=UTC), 1) == [first]


def test_a_cron_with_years_in_the_past_never_fires_again() -> None:
    cron = parse("cron(0 8 1 * ? 2020-2021)")
    assert isinstance(cron, Cron)
    assert cron.next_after(datetime(2026, 3, 1, tzinfo=UTC)) is None


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 9 * * * *)",  # both day fields given
        "cron(0 9 ? * ? *)",  # neither
        "cron(0 9 * * ?)",  # five fields
        "cron(0 9 LW * ? *)",
        "rate(1 minutes)",
        "rate(5 minute)",
        "rate(0 minutes)",
        "every day",
    ],
)
def test_what_aws_refuses_or_is_not_evaluated_is_refused_by_name(expression: str) -> None:
    with pytest.raises(UnsupportedExpression):
        parse(expression)


def test_rate_counts_periods_from_its_anchor() -> None:
    rate = parse("rate(5 minutes)")
    assert rate == Rate(timedelta(minutes=5))
    anchor = datetime(2026, 3, 1, tzinfo=UTC)
    assert rate.next_after(anchor, anchor) == anchor + timedelta(minutes=5)
    assert rate.next_after(anchor, anchor + timedelta(minutes=12)) == anchor + timedelta(minutes=15)
    # a day is 24 hours, whatever DST does to the wall clock
    assert parse("rate(1 day)") == Rate(timedelta(hours=24))


def test_at_is_read_in_its_time_zone() -> None:
    assert parse("at(2026-03-28T10:00:00)", "America/New_York") == At(datetime(2026, 3, 28, 14, tzinfo=UTC))
    assert parse("at(2026-01-28T10:00:00)", "Europe/Paris") == At(datetime(2026, 1, 28, 9, tzinfo=UTC))
    with pytest.raises(UnsupportedExpression):
        parse("at(2026-01-28T10:00:00)", "Mars/Olympus")


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("3d", timedelta(days=3)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("90m", timedelta(minutes=90)),
        ("2h30m15s", timedelta(hours=2, minutes=30, seconds=15)),
    ],
)
def test_durations(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta


@pytest.mark.parametrize("text", ["", "3", "d", "3x", "1.5d", "-1d"])
def test_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_the_local_clock_only_moves_forward() -> None:
    clock = LocalClock(real=lambda: datetime(2026, 3, 1, tzinfo=UTC))
    assert clock.advance(timedelta(days=2)) == datetime(2026, 3, 3, tzinfo=UTC)
    assert clock.offset == timedelta(days=2)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError, match="past"):
        clock.move_to(datetime(2026, 3, 2, tzinfo=UTC))


def test_the_runtime_clock_seam_follows_the_skew_and_is_untouched_without_it() -> None:
    from ecrm.core import clock

    assert clock.skew() == timedelta(0)
    before = clock.SystemClock().now()
    clock.set_skew(timedelta(days=2))
    try:
        assert clock.SystemClock().now() - before >= timedelta(days=2)
        assert clock.utc_now() - before >= timedelta(days=2)
    finally:
        clock.set_skew(timedelta(0))
