"""The rows an event counts on, the hours a window reads, and how buckets add up (pure, no AWS)."""

from __future__ import annotations

from datetime import UTC, datetime

from ecrm.insights.logic import HourRange, add_up, live_view, rows_of, shard_of, source_row, window_hours
from hypothesis import given
from hypothesis import strategies as st


def test_a_campaign_message_counts_on_its_variant_a_journey_message_on_its_step() -> None:
    assert source_row("campaign:cmp_1", "r3.B") == "campaign#cmp_1#B"
    assert source_row("campaign:cmp_1", "holdout") == "campaign#cmp_1#holdout"
    assert source_row("journey:jny_1", "welcome.4") == "journey#jny_1#welcome"
    assert source_row("api:k", "0") is None
    assert rows_of("trigger:reset", "0", None) == ["total", "channel#unknown"]
    assert rows_of("campaign:c", "r1.A", "sms") == ["total", "channel#sms", "campaign#c#A"]


def test_a_window_reads_each_hour_it_touches_once_with_its_minutes() -> None:
    until = datetime(2026, 11, 23, 10, 14, 59, tzinfo=UTC)
    assert list(window_hours(until, 60)) == [
        HourRange("2026-11-23T09", "15", "59"),
        HourRange("2026-11-23T10", "00", "14"),
    ]
    assert list(window_hours(until, 1)) == [HourRange("2026-11-23T10", "14", "14")]
    assert len(list(window_hours(until, 24 * 60))) == 25


@given(st.integers(min_value=1, max_value=24 * 60), st.datetimes(timezones=st.just(UTC)))
def test_a_windows_hours_cover_exactly_its_minutes(minutes: int, until: datetime) -> None:
    covered = sum(int(h.last_minute) - int(h.first_minute) + 1 for h in window_hours(until, minutes))
    assert covered == minutes


def test_shards_spread_events_and_stay_in_range() -> None:
    shards = {shard_of(f"evt-{n}", 4) for n in range(100)}
    assert shards == {0, 1, 2, 3}
    assert shard_of("evt-1", 1) == 0


def test_buckets_add_up_into_rows_with_rates_and_revenue() -> None:
    sums = add_up(
        [
            ("total", {"c_sent": 2, "c_delivered": 1}),
            ("total", {"c_sent": 2, "c_bounced": 1, "r_EUR": 500}),
            ("campaign#cmp_1#A", {"c_sent": 1}),
            ("journey#jny_1#welcome", {"c_sent": 1}),
            ("channel#email", {"c_sent": 4}),
        ]
    )
    view = live_view(sums, until=datetime(2026, 11, 23, 10, 0, 30, tzinfo=UTC), minutes=60)
    assert (view.total.sent, view.total.delivered, view.total.revenue) == (4, 1, {"EUR": 500})
    assert view.total.rates == {"delivery": 0.25, "bounce": 0.25, "complaint": 0.0, "open": 0.0, "click": 0.0}
    assert (view.since, view.until) == ("2026-11-23T09:01:00+00:00", "2026-11-23T10:00:00+00:00")
    assert [(r.campaign_id, r.variant) for r in view.campaigns] == [("cmp_1", "A")]
    assert [(r.journey_id, r.step) for r in view.journeys] == [("jny_1", "welcome")]
    assert [r.channel for r in view.channels] == ["email"]
