"""Broadcast's counts of its message events, folded window by window from stream records: each event once per
row, whatever Lambda hands again; a click a message once; a journey's pass and a request's own source not rows."""

from __future__ import annotations

from datetime import timedelta

from ecrm.broadcast.outcome_counts import MAX_COUNTS_PER_EVENT, WindowState, counted_source, events_of

from tests.outcome_counts import WINDOW_START, message_event, records_of, stream_record

WINDOW = (WINDOW_START, WINDOW_START + timedelta(seconds=10))


def rows(state: WindowState) -> dict[tuple[str, str, str | None, str, str], tuple[int, int]]:
    return {
        (c.minute.strftime("%H:%M"), c.event, c.channel, c.source, c.step): (c.events, c.messages)
        for c in state.outcome_counts()
    }


def test_events_count_per_minute_channel_source_and_step() -> None:
    later = WINDOW_START + timedelta(seconds=65)
    events = [
        message_event("MessageSent", "m1"),
        message_event("MessageSent", "m2"),
        message_event("MessageSent", "m3", step="r1.B", channel="sms"),
        message_event("MessageDelivered", "m1", at=later, status="delivered"),
        message_event("MessageSent", "m4", source="journey:jny_1", step="remind.2-0a1b2c3d"),
        message_event("MessageSent", "m5", source="journey:jny_1", step="remind.3"),
        message_event("MessageSuppressed", "m6", source="api:key-1", step="0", channel=None, status="suppressed"),
    ]
    state = WindowState()
    assert state.fold(records_of(events)) is None
    assert rows(state) == {
        ("10:00", "MessageSent", "email", "campaign:cmp_1", "r1.A"): (2, 2),
        ("10:00", "MessageSent", "sms", "campaign:cmp_1", "r1.B"): (1, 1),
        ("10:01", "MessageDelivered", "email", "campaign:cmp_1", "r1.A"): (1, 1),
        # a journey's passes count on their step; a request's own key is not a row
        ("10:00", "MessageSent", "email", "journey:jny_1", "remind"): (2, 2),
        ("10:00", "MessageSuppressed", None, "api", ""): (1, 1),
    }
    assert (state.first, state.last) == ("100", "106")


def test_a_record_handed_again_counts_once_and_a_retry_from_the_state_before_counts_the_same() -> None:
    records = records_of([message_event("MessageSent", f"m{n}") for n in range(4)])
    before = WindowState()
    before.fold(records[:2])
    saved = before.to_json()

    # Lambda hands the next batch, and again the first two (processed again after an error, out of order)
    state = WindowState.from_json(saved)
    assert state.fold([records[1], records[0], *records[2:]]) is None
    # and a failed invocation's retry folds the same batch into the state before it
    retried = WindowState.from_json(saved)
    retried.fold(records[2:])
    assert rows(state) == rows(retried) == {("10:00", "MessageSent", "email", "campaign:cmp_1", "r1.A"): (4, 4)}


def test_a_second_link_clicked_is_an_event_not_a_message() -> None:
    first = message_event("MessageClicked", "m1", status="delivered", link="https://shop.example.com/a")
    second = message_event("MessageClicked", "m1", status="delivered", link="https://shop.example.com/b")
    state = WindowState()
    state.fold(
        [
            stream_record(1, [first], old_doc={"history": []}),
            stream_record(2, [second], old_doc={"clicked_at": WINDOW_START.isoformat(), "history": []}),
        ]
    )
    assert rows(state) == {("10:00", "MessageClicked", "email", "campaign:cmp_1", "r1.A"): (2, 1)}


def test_a_write_without_message_events_moves_the_position_only() -> None:
    state = WindowState()
    record = stream_record(7, [message_event("MessageSent", "m1")])
    record["dynamodb"]["NewImage"].pop("outbox")
    assert state.fold([record]) is None
    assert (state.first, state.last, state.counts) == ("7", "7", {})


def test_a_big_window_travels_in_parts() -> None:
    events = [message_event("MessageSent", f"m{n}", step=f"r1.{n}") for n in range(MAX_COUNTS_PER_EVENT + 1)]
    state = WindowState()
    state.fold(records_of(events))
    parts = events_of("shardId-1", WINDOW, state)
    assert [(p.part, p.parts, len(p.counts)) for p in parts] == [(1, 2, MAX_COUNTS_PER_EVENT), (2, 2, 1)]
    assert {(p.first_sequence, p.last_sequence) for p in parts} == {(state.first, state.last)}


def test_only_campaigns_and_journeys_keep_their_source() -> None:
    assert counted_source("campaign:c1", "r2.B") == ("campaign:c1", "r2.B")
    assert counted_source("journey:j1", "welcome.1") == ("journey:j1", "welcome")
    assert counted_source("trigger:cart", "0") == ("trigger", "")
    assert counted_source("", "0") == ("", "")


def test_a_record_that_cannot_be_read_is_reported_and_those_before_it_stay_counted() -> None:
    records = records_of([message_event("MessageSent", f"m{n}") for n in range(3)])
    records[1]["dynamodb"]["NewImage"]["outbox"] = {"B": "bm90IHpsaWI="}  # not the packed events
    state = WindowState()
    assert state.fold(records) == "101"
    assert (state.first, state.last) == ("100", "100")
    assert rows(state) == {("10:00", "MessageSent", "email", "campaign:cmp_1", "r1.A"): (1, 1)}
