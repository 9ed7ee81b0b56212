"""The analysis engine's projection of a customer: customer store events applied idempotently, and what changed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from ecrm.analysis.predicate import BehaviourEvent
from ecrm.analysis.projection import (
    Change,
    Projection,
    apply_consent,
    apply_snapshot,
    apply_traits,
    behaviour_from_interaction,
    millisecond,
)
from ecrm.analysis.rules import Rule, dependencies
from pydantic import TypeAdapter

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
RULE: TypeAdapter[Rule] = TypeAdapter(Rule)


def snapshot(projection: Projection, version: int, at: datetime = T0, **values: Any) -> Change:
    return apply_snapshot(
        projection,
        version=version,
        attributes=values.get("attributes", {}),
        identity_types=values.get("identities", []),
        consents=values.get("consents", {}),
        at=at,
    )


# -- snapshots ------------------------------------------------------------------------------------------------------
def test_a_snapshot_applies_by_version_only_and_says_what_changed() -> None:
    # Given a projection that took snapshot 2
    projection = Projection("cus_1")
    first = snapshot(
        projection,
        2,
        attributes={"country": "FR", "tier": "gold", "first_name": "Sample", "birth_date": "1985-04-12"},
        identities=["email", "phone", "email"],
        consents={"email:marketing": "granted"},
    )

    # Then only catalogued attributes are kept, typed, and the change names everything that became known
    assert projection.attributes == {"country": "FR", "tier": "gold", "birth_date": date(1985, 4, 12)}
    assert projection.identities == ["email", "phone"]
    assert (projection.snapshot_version, projection.consents["email:marketing"][0]) == (2, "granted")
    assert first.attributes == {"country", "tier", "birth_date"}
    assert (first.identities, first.consents) == ({"email", "phone"}, {"email:marketing"})

    # When an older snapshot and the same snapshot arrive again
    stale = snapshot(projection, 1, attributes={"country": "DE"})
    duplicate = snapshot(projection, 2, attributes={"country": "DE"})

    # Then neither changes anything, and says so
    assert not stale
    assert not duplicate
    assert projection.attributes["country"] == "FR"

    # When snapshot 3 changes the country, drops the tier, keeps the rest, and loses the phone
    third = snapshot(
        projection, 3, attributes={"country": "DE", "birth_date": "1985-04-12", "city": ""}, identities=["email"]
    )

    # Then the change names exactly what differs
    assert third.attributes == {"country", "tier", "city"}
    assert third.identities == {"phone"}
    assert projection.attributes == {"country": "DE", "birth_date": date(1985, 4, 12), "city": ""}


def test_a_value_of_the_wrong_type_is_missing_rather_than_wrong() -> None:
    # Given a snapshot whose birth date is not a date
    projection = Projection("cus_1")
    snapshot(projection, 1, attributes={"birth_date": "soon", "country": "FR"})

    # Then the birth date is unknown (rules on it are false, not errors)
    assert projection.attributes == {"country": "FR"}


# -- consents -------------------------------------------------------------------------------------------------------
def test_consent_states_apply_by_time() -> None:
    # Given marketing email granted at T0
    projection = Projection("cus_1")
    assert apply_consent(projection, "email:marketing", "granted", T0).consents == {"email:marketing"}

    # When an older withdrawal arrives late, then it changes nothing
    assert not apply_consent(projection, "email:marketing", "denied", T0 - timedelta(hours=1))
    assert projection.consents["email:marketing"][0] == "granted"

    # When the same state is stated again, then nothing changed
    assert not apply_consent(projection, "email:marketing", "granted", T0 + timedelta(minutes=1))

    # When a newer withdrawal arrives, then it applies and is a change
    assert apply_consent(projection, "email:marketing", "denied", T0 + timedelta(hours=1)).consents == {
        "email:marketing"
    }
    assert projection.consents["email:marketing"] == ["denied", "2026-11-23T11:00:00.000Z"]


def test_a_confirmed_consent_is_not_undone_by_an_older_statement_arriving_later() -> None:
    # Given marketing email granted at T0, and confirmed at T0 + 2 h (a snapshot that still says granted)
    projection = Projection("cus_1")
    apply_consent(projection, "email:marketing", "granted", T0)
    snapshot(projection, 2, at=T0 + timedelta(hours=2), consents={"email:marketing": "granted"})

    # When a withdrawal made at T0 + 1 h (before the confirmation) arrives only now
    late = apply_consent(projection, "email:marketing", "denied", T0 + timedelta(hours=1))

    # Then the customer still may receive marketing email: the newest statement says so
    assert not late
    assert projection.consents["email:marketing"][0] == "granted"


# -- traits ---------------------------------------------------------------------------------------------------------
def test_traits_newest_computation_wins_and_unknown_traits_are_ignored() -> None:
    # Given traits computed at T0, one of them not in the catalogue
    projection = Projection("cus_1")
    first = apply_traits(projection, {"churn_risk": 0.8, "cluster": "c2", "shoe_size": 42}, T0)
    assert first.traits == {"churn_risk", "cluster"}
    assert projection.traits == {"churn_risk": 0.8, "cluster": "c2"}

    # When an older computation arrives, then it changes nothing
    assert not apply_traits(projection, {"churn_risk": 0.1}, T0 - timedelta(days=1))
    assert projection.traits["churn_risk"] == 0.8

    # When a newer one changes one trait, repeats another and clears a third
    newer = apply_traits(projection, {"churn_risk": 0.3, "cluster": "c2", "rfm_segment": None}, T0 + timedelta(days=1))

    # Then only the changed trait is a change; traits it does not mention are kept
    assert newer.traits == {"churn_risk"}
    assert projection.traits == {"churn_risk": 0.3, "cluster": "c2"}

    # When a trait is computed as unknown, then it is removed
    assert apply_traits(projection, {"cluster": None}, T0 + timedelta(days=2)).traits == {"cluster"}
    assert projection.traits == {"churn_risk": 0.3}


# -- what a change touches ------------------------------------------------------------------------------------------
def depends(rule: dict[str, Any]) -> Any:
    return dependencies(RULE.validate_python(rule))


COUNTRY = depends({"attribute": "country", "op": "eq", "value": "FR"})
ORDERS = depends({"event": "order_completed", "window": {"last_days": 30}})
EMAILABLE = depends({"consent": "email", "purpose": "marketing"})
AT_RISK = depends({"not": {"trait": "churn_risk", "op": "lt", "value": 0.5}})
WITH_PHONE = depends({"has_identity": "phone"})
ON_SEGMENT = depends({"all": [{"in_segment": "seg_A"}, {"attribute": "tier", "op": "eq", "value": "gold"}]})
ALL = {"country": COUNTRY, "orders": ORDERS, "emailable": EMAILABLE, "at_risk": AT_RISK, "phone": WITH_PHONE}


@pytest.mark.parametrize(
    ("change", "touched"),
    [
        (Change(attributes={"country"}), {"country"}),
        (Change(attributes={"city"}), set()),
        (Change(events={"order_completed"}), {"orders"}),
        (Change(events={"email_opened"}), set()),
        (Change(consents={"email:marketing"}), {"emailable"}),
        (Change(consents={"sms:marketing"}), set()),
        (Change(traits={"churn_risk"}), {"at_risk"}),
        (Change(identities={"phone"}), {"phone"}),
        (Change(everything=True), set(ALL)),
        (Change(), set()),
    ],
)
def test_a_change_touches_only_the_segments_reading_what_changed(change: Change, touched: set[str]) -> None:
    # When a change is compared with each rule's dependencies, then only those reading it are touched
    assert {name for name, depends_on in ALL.items() if change.touches(depends_on)} == touched
    assert bool(change) == (change != Change())


def test_a_segment_on_another_is_touched_by_membership_moves_and_its_own_fields() -> None:
    # Given a rule on membership of another segment and on the tier
    # Then moves in or out of segments, and tier changes, touch it; the country does not
    assert ON_SEGMENT.segments == frozenset({"seg_A"})
    assert Change(events={"segment_entered"}).touches(ON_SEGMENT)
    assert Change(events={"segment_exited"}).touches(ON_SEGMENT)
    assert Change(attributes={"tier"}).touches(ON_SEGMENT)
    assert not Change(attributes={"country"}).touches(ON_SEGMENT)


# -- interactions as behaviour --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("properties", "amount", "category", "product_id"),
    [
        ({"revenue": 12.5, "total": 99, "category": "shoes", "product_id": "sku_1"}, 12.5, "shoes", "sku_1"),
        ({"total": "40.10", "products": [{"category": "bags", "product_id": 7}]}, 40.1, "bags", "7"),
        ({"amount": True, "value": 3, "category": "", "products": [{"category": "hats"}]}, 3.0, "hats", None),
        ({"order_total": "n/a", "price": 5}, 5.0, None, None),
        ({"products": "not a list", "category": {"nested": 1}}, None, None, None),
        ({}, None, None, None),
    ],
)
def test_an_interaction_becomes_behaviour_reading_common_property_names(
    properties: dict[str, Any], amount: float | None, category: str | None, product_id: str | None
) -> None:
    # When an interaction is read as behaviour
    event = behaviour_from_interaction("int_1", "order_completed", T0, "web", properties, "shop")

    # Then the amount, category and product come from the first usable common property
    assert (event.amount, event.category, event.product_id) == (amount, category, product_id)
    assert (event.event_id, event.type, event.channel, event.source, event.segment_id) == (
        "int_1",
        "order_completed",
        "web",
        "shop",
        None,
    )


def test_interaction_times_are_utc_to_the_millisecond_as_the_lake_keeps_them() -> None:
    # Given a time with microseconds, naive (taken as UTC) or in another zone
    naive = datetime(2026, 11, 23, 10, 0, 0, 123456)
    paris = datetime(2026, 11, 23, 12, 0, 0, 123999, tzinfo=ZoneInfo("Europe/Paris"))

    # Then both are UTC milliseconds
    assert millisecond(naive) == datetime(2026, 11, 23, 10, 0, 0, 123000, tzinfo=UTC)
    assert millisecond(paris) == datetime(2026, 11, 23, 11, 0, 0, 123000, tzinfo=UTC)
    event = behaviour_from_interaction("int_1", "page_viewed", naive, None, {})
    assert event.occurred_at.tzinfo is UTC


def test_a_projection_survives_its_round_trip_through_the_table() -> None:
    # Given a projection with every kind of value
    projection = Projection("cus_1", version=7)
    snapshot(projection, 3, attributes={"country": "FR", "birth_date": "1985-04-12"}, identities=["email"])
    apply_consent(projection, "sms:marketing", "denied", T0)
    apply_traits(projection, {"clv": 120.5}, T0)

    # When it is written and read back
    again = Projection.from_item("cus_1", projection.to_item())

    # Then nothing is lost, and its subject is what rules read
    assert again == projection
    subject = again.subject([BehaviourEvent("int_1", "page_viewed", T0)])
    assert (subject.consents, subject.identities, subject.traits) == (
        {"sms:marketing": "denied"},
        frozenset({"email"}),
        {"clv": 120.5},
    )
