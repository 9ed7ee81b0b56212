"""The delivery policy: channel and fallback, consent, suppression, caps, hours across zones, the pause."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ecrm.broadcast.policy import Cap, Decision, Intent, PolicySettings, Recipient, Situation, decide
from hypothesis import given, settings
from hypothesis import strategies as st

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # a Monday, noon UTC
SETTINGS = PolicySettings()
EVERY_CHANNEL = frozenset({"email", "sms", "voice", "push", "whatsapp", "in_app", "webhook"})


def card(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "customer_id": "c1",
        "status": "active",
        "addresses": {"email": ["Ada@Example.com"], "phone": ["+33612345678"]},
        "consents": [
            {"channel": ch, "purpose": "marketing", "state": "granted", "updated_at": "2026-01-01T00:00:00Z"}
            for ch in ("email", "sms", "phone", "push", "whatsapp", "in_app", "webhook")
        ],
        "preferences": {"preferred_channels": [], "time_zone": "Europe/Paris"},
        "profile": {"first_name": "Ada", "country": "FR"},
    }
    base.update(overrides)
    return base


def marketing(*channels: str, forced: str | None = None, topic: str | None = None) -> Intent:
    return Intent("marketing", frozenset(channels or EVERY_CHANNEL), topic=topic, forced_channel=forced)


def transactional(*channels: str, forced: str | None = None) -> Intent:
    return Intent("transactional", frozenset(channels or EVERY_CHANNEL), forced_channel=forced)


def run(
    intent: Intent,
    recipient: dict[str, Any] | None = None,
    situation: Situation | None = None,
    now: datetime = NOW,
    policy: PolicySettings = SETTINGS,
) -> Decision:
    person = Recipient.from_card(recipient if recipient is not None else card())
    return decide(intent, person, situation or Situation(), now=now, settings=policy)


# -- channel and fallback ---------------------------------------------------------------------------------
def test_the_first_preferred_reachable_channel_with_consent_is_chosen() -> None:
    # Given a customer preferring sms then email
    recipient = card(preferences={"preferred_channels": ["sms", "email"], "time_zone": "Europe/Paris"})
    # When a marketing message with email and sms content is decided at 13:00 Paris
    decision = run(marketing("email", "sms"), recipient)
    # Then it goes by sms to the phone
    assert (decision.outcome, decision.channel, decision.address) == ("send", "sms", "+33612345678")


def test_without_consent_on_the_preferred_channel_the_next_one_is_taken() -> None:
    consents = [
        {"channel": "email", "purpose": "marketing", "state": "granted", "updated_at": "2026-01-01T00:00:00Z"},
        {"channel": "sms", "purpose": "marketing", "state": "denied", "updated_at": "2026-01-01T00:00:00Z"},
    ]
    recipient = card(consents=consents, preferences={"preferred_channels": ["sms", "email"]})
    decision = run(marketing("email", "sms"), recipient)
    assert (decision.outcome, decision.channel) == ("send", "email")
    assert "sms: no_consent" in decision.trace


def test_an_unreachable_channel_falls_back_and_a_forced_one_does_not() -> None:
    recipient = card(addresses={"email": ["a@example.com"]}, preferences={"preferred_channels": ["push"]})
    assert run(marketing("push", "email"), recipient).channel == "email"
    forced = run(marketing("push", "email", forced="push"), recipient)
    assert (forced.outcome, forced.reason) == ("suppress", "unreachable")


def test_push_reaches_the_enabled_devices_and_in_app_is_always_reachable() -> None:
    recipient = card(addresses={}, preferences={"preferred_channels": ["push", "in_app"]})
    with_device = run(marketing("push", "in_app"), recipient, Situation(devices=("arn:endpoint/1",)))
    assert (with_device.channel, with_device.address) == ("push", "arn:endpoint/1")
    without = run(marketing("push", "in_app"), recipient)
    assert (without.channel, without.address) == ("in_app", "c1")


def test_no_consent_anywhere_is_suppressed_with_the_reason() -> None:
    decision = run(marketing("email", "sms"), card(consents=[]))
    assert (decision.outcome, decision.reason) == ("suppress", "no_consent")


def test_a_topic_denial_blocks_marketing_on_that_channel() -> None:
    consents = [
        *card()["consents"],
        {"channel": "email", "purpose": "topic:news", "state": "denied", "updated_at": "2026-01-01T00:00:00Z"},
    ]
    assert run(marketing("email", topic="news"), card(consents=consents)).reason == "no_consent"
    assert run(marketing("email", topic="offers"), card(consents=consents)).outcome == "send"


def test_transactional_needs_no_grant_but_honours_a_withdrawal() -> None:
    assert run(transactional("email"), card(consents=[])).outcome == "send"
    withdrawn = [
        {"channel": "email", "purpose": "transactional", "state": "denied", "updated_at": "2026-01-01T00:00:00Z"}
    ]
    assert run(transactional("email"), card(consents=withdrawn)).reason == "no_consent"


def test_voice_is_governed_by_the_phone_consent() -> None:
    consents = [{"channel": "phone", "purpose": "marketing", "state": "granted", "updated_at": "2026-01-01T00:00:00Z"}]
    decision = run(marketing("voice", forced="voice"), card(consents=consents))
    assert (decision.outcome, decision.channel) == ("send", "voice")


def test_an_unknown_or_erased_customer_is_not_sent_to() -> None:
    erased = decide(
        marketing("email"), Recipient.from_card(card(status="erased")), Situation(), now=NOW, settings=SETTINGS
    )
    missing = decide(marketing("email"), None, Situation(), now=NOW, settings=SETTINGS)
    assert erased.reason == missing.reason == "unknown_customer"


# -- suppression ----------------------------------------------------------------------------------------------
def test_suppression_wins_over_consent_and_falls_back_to_another_channel() -> None:
    situation = Situation(suppressed={"ada@example.com": "hard_bounce"})
    assert run(marketing("email"), situation=situation).reason == "suppressed:hard_bounce"
    assert run(transactional("email"), situation=situation).reason == "suppressed:hard_bounce"
    assert run(marketing("email", "sms"), situation=situation).channel == "sms"


@given(
    suppressed=st.sets(st.sampled_from(["ada@example.com", "+33612345678", "c1", "arn:d"])),
    purpose=st.sampled_from(["marketing", "transactional"]),
    channels=st.sets(st.sampled_from(sorted(EVERY_CHANNEL)), min_size=1),
)
@settings(max_examples=200, deadline=None)
def test_a_suppressed_address_is_never_sent_to(suppressed: set[str], purpose: str, channels: set[str]) -> None:
    situation = Situation(devices=("arn:d",), suppressed=dict.fromkeys(suppressed, "complaint"))
    intent = Intent(purpose, frozenset(channels))  # type: ignore[arg-type]
    decision = decide(intent, Recipient.from_card(card()), situation, now=NOW, settings=SETTINGS)
    if decision.outcome == "send":
        assert decision.address is not None
        assert decision.address.lower() not in suppressed


# -- quiet hours and the phone window ------------------------------------------------------------------------
def test_quiet_hours_defer_marketing_to_their_end_in_the_customers_zone() -> None:
    # Given quiet hours 22:00-08:00 in Tokyo (UTC+9): noon UTC is 21:00 in Tokyo, not quiet yet
    recipient = card(preferences={"time_zone": "Asia/Tokyo", "quiet_hours": {"start": "20:00", "end": "08:00"}})
    decision = run(marketing("email"), recipient)
    # Then it waits until 08:00 Tokyo, 23:00 UTC
    assert (decision.outcome, decision.reason) == ("defer", "quiet_hours")
    assert decision.until == datetime(2026, 12, 7, 23, 0, tzinfo=UTC)
    # And decided again then, it is sent
    assert run(marketing("email"), recipient, now=decision.until).outcome == "send"


def test_transactional_ignores_quiet_hours() -> None:
    recipient = card(preferences={"time_zone": "Asia/Tokyo", "quiet_hours": {"start": "20:00", "end": "08:00"}})
    assert run(transactional("email"), recipient).outcome == "send"


def test_marketing_sms_waits_for_eight_in_the_morning_local_time() -> None:
    # 12:00 UTC is 04:00 in Los Angeles (PST, UTC-8)
    recipient = card(preferences={"time_zone": "America/Los_Angeles"})
    decision = run(marketing("sms", forced="sms"), recipient)
    assert (decision.outcome, decision.reason) == ("defer", "sending_window")
    assert decision.until == datetime(2026, 12, 7, 16, 0, tzinfo=UTC)
    # after 21:00 local, the next morning
    late = run(marketing("voice", forced="voice"), recipient, now=datetime(2026, 12, 8, 6, 0, tzinfo=UTC))
    assert late.until == datetime(2026, 12, 8, 16, 0, tzinfo=UTC)
    # email is not held to the phone window
    assert run(marketing("email"), recipient).outcome == "send"


def test_a_window_across_a_change_of_summer_time_ends_at_the_local_hour() -> None:
    # Paris goes to summer time on 2027-03-28 at 02:00; at 01:00 UTC (02:00 CET... now 03:00 CEST) it is quiet
    recipient = card(preferences={"time_zone": "Europe/Paris", "quiet_hours": {"start": "22:00", "end": "08:00"}})
    decision = run(marketing("email"), recipient, now=datetime(2027, 3, 28, 1, 0, tzinfo=UTC))
    assert decision.until == datetime(2027, 3, 28, 6, 0, tzinfo=UTC)  # 08:00 CEST


@given(
    zone=st.sampled_from(["Europe/Paris", "Asia/Tokyo", "America/New_York", "Pacific/Auckland", "UTC"]),
    minutes=st.integers(min_value=0, max_value=60 * 24 * 400),
    start=st.integers(min_value=0, max_value=23),
    length=st.integers(min_value=1, max_value=14),
    channel=st.sampled_from(["email", "sms", "voice"]),
)
@settings(max_examples=300, deadline=None)
def test_a_deferral_is_never_a_drop_and_its_time_is_allowed(
    zone: str, minutes: int, start: int, length: int, channel: str
) -> None:
    quiet = {"start": f"{start:02d}:00", "end": f"{(start + length) % 24:02d}:00"}
    recipient = card(preferences={"time_zone": zone, "quiet_hours": quiet})
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    decision = run(marketing(channel, forced=channel), recipient, now=now)
    assert decision.outcome in {"send", "defer"}
    if decision.outcome == "defer":
        assert decision.until is not None
        assert now < decision.until <= now + timedelta(days=2)
        assert run(marketing(channel, forced=channel), recipient, now=decision.until).outcome == "send"


# -- caps and the pause ----------------------------------------------------------------------------------------
def test_frequency_caps_per_channel_and_overall_spare_transactional() -> None:
    policy = PolicySettings(channel_caps={"email": Cap(2, "day")}, overall_cap=Cap(3, "week"))
    two_today = Situation(recent_sends=[("email", NOW - timedelta(hours=1)), ("email", NOW - timedelta(hours=3))])
    assert run(marketing("email"), situation=two_today, policy=policy).reason == "frequency_cap"
    assert run(marketing("sms", forced="sms"), situation=two_today, policy=policy).outcome == "send"
    assert run(transactional("email"), situation=two_today, policy=policy).outcome == "send"
    three_this_week = Situation(recent_sends=[("sms", NOW - timedelta(days=d)) for d in (1, 2, 3)])
    assert run(marketing("email"), situation=three_this_week, policy=policy).reason == "frequency_cap"
    older = Situation(recent_sends=[("sms", NOW - timedelta(days=d)) for d in (1, 2, 8)])
    assert run(marketing("email"), situation=older, policy=policy).outcome == "send"


def test_the_customers_own_limit_replaces_the_default_overall_cap() -> None:
    policy = PolicySettings(overall_cap=Cap(10, "day"))
    recipient = card(preferences={"frequency_limit": {"max_messages": 1, "per": "week"}})
    sent = Situation(recent_sends=[("email", NOW - timedelta(days=2))])
    assert run(marketing("email"), recipient, sent, policy=policy).reason == "frequency_cap"


def test_the_deliverability_pause_defers_marketing_email_only() -> None:
    paused = Situation(paused_until=NOW + timedelta(hours=1))
    decision = run(marketing("email"), situation=paused)
    assert (decision.outcome, decision.reason, decision.until) == ("defer", "paused", NOW + timedelta(hours=1))
    assert run(transactional("email"), situation=paused).outcome == "send"
    assert run(marketing("sms", forced="sms"), situation=paused).outcome == "send"


def test_every_decision_carries_its_trace() -> None:
    decision = run(marketing("email"))
    assert decision.trace == ("email: chosen",)


def test_quiet_hours_that_leave_no_time_in_the_sms_window_give_way_to_the_window() -> None:
    # Quiet 07:00-21:00 and SMS only 08:00-21:00 leave no time: the window alone applies, never a wait forever
    recipient = card(preferences={"time_zone": "UTC", "quiet_hours": {"start": "07:00", "end": "21:00"}})
    assert run(marketing("sms", forced="sms"), recipient).outcome == "send"  # noon: inside the window
    late = run(marketing("sms", forced="sms"), recipient, now=datetime(2026, 12, 7, 22, 0, tzinfo=UTC))
    assert (late.outcome, late.until) == ("defer", datetime(2026, 12, 8, 8, 0, tzinfo=UTC))
