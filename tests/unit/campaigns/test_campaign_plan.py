"""When a run's chunks may go: local times per zone, the throttle's pace, and the Wait state's timestamps."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from ecrm.campaigns.plan import earliest_local_instant, local_instant, plan_chunks, timestamp, whole_second
from hypothesis import given, settings
from hypothesis import strategies as st

NOW = datetime(2026, 11, 23, 10, 0, 0, 250_000, tzinfo=UTC)


def test_a_local_time_is_that_time_in_the_recipients_zone_and_utc_when_unknown() -> None:
    day, nine = date(2026, 11, 25), time(9, 0)
    assert local_instant(day, nine, "Asia/Tokyo") == datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
    assert local_instant(day, nine, "America/New_York") == datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
    assert (
        local_instant(day, nine, None)
        == local_instant(day, nine, "Not/AZone")
        == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    )
    # the first zone on Earth (UTC+14) gets there first: that is when the schedule fires
    assert earliest_local_instant(day, nine) == datetime(2026, 11, 24, 19, 0, tzinfo=UTC)
    assert earliest_local_instant(day, nine) <= local_instant(day, nine, "Pacific/Kiritimati")


def test_without_a_throttle_every_chunk_may_go_at_once() -> None:
    chunks = plan_chunks([(NOW, [f"c{i}" for i in range(1200)])], chunk_size=500, per_minute=None)
    assert [len(c.customer_ids) for c in chunks] == [500, 500, 200]
    assert {c.not_before for c in chunks} == {whole_second(NOW)}
    assert timestamp(NOW) == "2026-11-23T10:00:01Z"


def test_a_throttle_below_the_chunk_size_makes_minute_chunks_a_minute_apart() -> None:
    chunks = plan_chunks([(NOW, [f"c{i}" for i in range(250)])], chunk_size=500, per_minute=100)
    assert [len(c.customer_ids) for c in chunks] == [100, 100, 50]
    start = whole_second(NOW)
    assert [c.not_before for c in chunks] == [start, start + timedelta(minutes=1), start + timedelta(minutes=2)]


def test_the_holdout_costs_no_time() -> None:
    ids = [f"c{i}" for i in range(200)]
    chunks = plan_chunks([(NOW, ids)], chunk_size=100, per_minute=100, sends=lambda c: int(c[1:]) % 2 == 0)
    assert chunks[1].not_before - chunks[0].not_before == timedelta(seconds=30)  # 50 messages at 100 a minute


def test_zones_go_in_order_and_a_later_zone_waits_for_the_throttle() -> None:
    tokyo, london = NOW, NOW + timedelta(hours=9)
    chunks = plan_chunks([(london, ["l1", "l2"]), (tokyo, ["t1", "t2", "t3"])], chunk_size=500, per_minute=2)
    assert [c.customer_ids for c in chunks] == [["t1", "t2"], ["t3"], ["l1", "l2"]]
    assert chunks[1].not_before == whole_second(tokyo) + timedelta(minutes=1)
    assert chunks[2].not_before == whole_second(london)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    per_minute=st.integers(min_value=1, max_value=2000),
    recipients=st.integers(min_value=0, max_value=3000),
    chunk_size=st.integers(min_value=1, max_value=500),
)
def test_by_any_chunk_the_messages_before_it_had_their_minutes(
    per_minute: int, recipients: int, chunk_size: int
) -> None:
    chunks = plan_chunks([(NOW, [f"c{i}" for i in range(recipients)])], chunk_size=chunk_size, per_minute=per_minute)
    start = whole_second(NOW)
    before = 0
    for chunk in chunks:
        assert len(chunk.customer_ids) <= min(chunk_size, per_minute)
        assert (chunk.not_before - start).total_seconds() >= before * 60 / per_minute
        before += len(chunk.customer_ids)
        assert chunk.not_before.microsecond == 0
    assert sum(len(c.customer_ids) for c in chunks) == recipients
