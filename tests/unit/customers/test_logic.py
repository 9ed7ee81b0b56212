"""The customer store's pure rules: resolution plans, attribute precedence, consents, merges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from ecrm.core.ids import new_id
from ecrm.customers.identity import NormalizedIdentity
from ecrm.customers.logic import (
    DEFAULT_UNIQUE_TYPES,
    ConsentChange,
    MergePolicy,
    apply_attributes,
    apply_consent,
    apply_preferences,
    consent_key,
    merge_consents,
    merge_into,
    outranks,
    plan_resolution,
)
from ecrm.customers.models import AttributeValue, Consent, ConsentIn, ConsentProof, Customer, Preferences, Scalar
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

FAST = settings(max_examples=100, deadline=None)

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=30)

# Customer ids are ULIDs: created a day apart, so they sort oldest first whatever their random bits.
OLDEST = new_id("cus_", now_ms=1_767_225_600_000)
MIDDLE = new_id("cus_", now_ms=1_767_225_600_000 + 86_400_000)
NEWEST = new_id("cus_", now_ms=1_767_225_600_000 + 2 * 86_400_000)

# crm outranks shop outranks callcenter for every attribute, except `city`, where the shop is trusted most.
POLICY = MergePolicy(source_priority={"*": ("crm", "shop", "callcenter"), "city": ("shop", "crm")})


def _at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def _email(value: str) -> NormalizedIdentity:
    return NormalizedIdentity("email", "", value)


def _phone(value: str) -> NormalizedIdentity:
    return NormalizedIdentity("phone", "", value)


def _device(value: str) -> NormalizedIdentity:
    return NormalizedIdentity("device_id", "", value)


def _external(namespace: str, value: str) -> NormalizedIdentity:
    return NormalizedIdentity("external_id", namespace, value)


def _value(value: Scalar, source: str, days: float) -> AttributeValue:
    return AttributeValue(value=value, source=source, observed_at=_at(days))


def _proof(days: float, source: str = "shop", **extra: str) -> ConsentProof:
    return ConsentProof.model_validate({"source": source, "captured_at": _at(days), **extra})


def _statement(
    state: str, days: float, *, channel: str = "email", purpose: str = "marketing", **extra: str
) -> ConsentIn:
    return ConsentIn.model_validate(
        {"channel": channel, "purpose": purpose, "state": state, "proof": _proof(days, **extra)}
    )


def _consent(state: str, days: float, *, channel: str = "email", purpose: str = "marketing") -> Consent:
    return Consent.model_validate(
        {"channel": channel, "purpose": purpose, "state": state, "proof": _proof(days), "updated_at": _at(days)}
    )


def _consents(*consents: Consent) -> dict[str, Consent]:
    return {consent_key(c.channel, c.purpose): c for c in consents}


def _customer(customer_id: str, **fields: object) -> Customer:
    return Customer.model_validate(
        {"customer_id": customer_id, "status": "active", "created_at": T0, "updated_at": T0, **fields}
    )


# -- plan_resolution -------------------------------------------------------------------------------
def test_unknown_identities_create_a_customer() -> None:
    # Given a record whose identities nobody owns
    identities = [_email("jane@example.com"), _phone("+49301234567")]

    # When its resolution is planned
    plan = plan_resolution(identities, {}, POLICY)

    # Then a new customer is created that claims every identity
    assert plan.action == "create"
    assert plan.survivor_id is None
    assert plan.merged_ids == plan.matched_by == ()
    assert plan.unclaimed == tuple(identities)


def test_one_owner_attaches_and_says_what_matched() -> None:
    # Given a record whose email belongs to a customer and whose phone is new
    email, phone = _email("jane@example.com"), _phone("+49301234567")

    # When its resolution is planned
    plan = plan_resolution([email, phone], {email.key: MIDDLE}, POLICY)

    # Then the record attaches to that customer, matched by the email; the phone is still to claim
    assert plan.action == "attach"
    assert plan.survivor_id == MIDDLE
    assert plan.merged_ids == ()
    assert plan.matched_by == (email.key,)
    assert plan.unclaimed == (phone,)


def test_two_owners_merge_into_the_oldest() -> None:
    # Given a record whose identities belong to three customers (newest listed first) plus one new identity
    email, phone = _email("jane@example.com"), _phone("+49301234567")
    erp, card = _external("erp", "C-1001"), NormalizedIdentity("loyalty_card", "", "AB-1")
    owners = {email.key: NEWEST, phone.key: OLDEST, erp.key: MIDDLE}

    # When its resolution is planned
    plan = plan_resolution([email, phone, erp, card], owners, POLICY)

    # Then the customers merge into the oldest id (the smallest ULID)
    assert plan.action == "merge"
    assert plan.survivor_id == OLDEST
    assert plan.merged_ids == (MIDDLE, NEWEST)
    assert plan.matched_by == tuple(sorted([email.key, phone.key, erp.key]))
    # And what the survivor does not own yet is left to claim
    assert set(plan.unclaimed) == {email, erp, card}


def test_device_id_alone_attaches_to_its_owner() -> None:
    # Given a record carrying only a device id another record already brought
    device = _device("tablet-7")

    # When its resolution is planned
    plan = plan_resolution([device], {device.key: MIDDLE}, POLICY)

    # Then the record attaches to that customer, matched by the device id
    assert plan.action == "attach"
    assert plan.survivor_id == MIDDLE
    assert plan.matched_by == (device.key,)
    assert plan.merged_ids == ()


def test_device_ids_of_two_customers_never_merge_them() -> None:
    # Given a record whose two device ids (a shared tablet, a kiosk) belong to two customers
    tablet, kiosk = _device("tablet-7"), _device("kiosk-2")

    # When its resolution is planned
    plan = plan_resolution([tablet, kiosk], {tablet.key: OLDEST, kiosk.key: NEWEST}, POLICY)

    # Then it attaches to one of them and merges nobody
    assert plan.action == "attach"
    assert plan.survivor_id in {OLDEST, NEWEST}
    assert plan.merged_ids == ()


def test_device_only_attach_still_claims_the_new_device_id() -> None:
    # Given a record with a known device id and a device id nobody owns yet
    known, new = _device("tablet-7"), _device("phone-app-3")

    # When its resolution is planned
    plan = plan_resolution([known, new], {known.key: MIDDLE}, POLICY)

    # Then it attaches to the owner and the new device id is left for the survivor to claim
    assert plan.survivor_id == MIDDLE
    assert plan.unclaimed == (new,)


def test_device_id_next_to_a_unique_identity_does_not_merge() -> None:
    # Given a record whose email belongs to one customer and whose device id to another
    email, tablet = _email("jane@example.com"), _device("tablet-7")

    # When its resolution is planned
    plan = plan_resolution([email, tablet], {email.key: NEWEST, tablet.key: OLDEST}, POLICY)

    # Then it attaches to the email's owner, matched by the email only, and the device id moves to it
    assert plan.action == "attach"
    assert plan.survivor_id == NEWEST
    assert plan.merged_ids == ()
    assert plan.matched_by == (email.key,)
    assert plan.unclaimed == (tablet,)


def test_device_id_owned_by_someone_does_not_stop_a_new_customer() -> None:
    # Given a new email arriving from a shared device that belongs to a customer
    email, tablet = _email("new@example.com"), _device("tablet-7")

    # When its resolution is planned
    plan = plan_resolution([email, tablet], {tablet.key: OLDEST}, POLICY)

    # Then a new customer is created (the unique identity says it is someone else)
    assert plan.action == "create"
    assert plan.merged_ids == ()


def test_a_policy_can_make_device_ids_unique() -> None:
    # Given a policy that trusts device ids as unique, and device ids owned by two customers
    policy = MergePolicy(unique_types=DEFAULT_UNIQUE_TYPES | {"device_id"})
    tablet, kiosk = _device("tablet-7"), _device("kiosk-2")

    # When the resolution is planned
    plan = plan_resolution([tablet, kiosk], {tablet.key: NEWEST, kiosk.key: OLDEST}, policy)

    # Then the two customers merge
    assert (plan.action, plan.survivor_id, plan.merged_ids) == ("merge", OLDEST, (NEWEST,))


# -- precedence ------------------------------------------------------------------------------------
def test_rank_uses_the_attribute_order_then_the_default_then_unknown_last() -> None:
    # Given a policy with a default order and an order for `city`
    # When sources are ranked
    # Then the attribute's own order applies where there is one, and unlisted sources come last
    assert [POLICY.rank("city", s) for s in ("shop", "crm", "callcenter")] == [0, 1, 2]
    assert [POLICY.rank("email_opt_in", s) for s in ("crm", "shop", "callcenter", "webform")] == [0, 1, 2, 3]
    assert MergePolicy().rank("city", "anything") == 0


def test_higher_priority_wins_regardless_of_time() -> None:
    # Given a value from the crm, and an older and a newer one from the lower-ranked shop
    crm = _value("Acme", "crm", days=1)

    # When each is weighed against the other
    # Then the crm wins both ways, whatever the dates
    assert not outranks(crm, _value("Other", "shop", days=9), "company", POLICY)
    assert outranks(_value("Other", "shop", days=9), _value("Acme", "crm", days=0), "company", POLICY)


def test_same_rank_the_more_recent_wins() -> None:
    # Given a value from the shop
    current = _value("Berlin", "shop", days=5)

    # When the shop speaks again, later, at the same time, or earlier
    # Then a later or equally recent observation wins, an earlier one does not
    assert outranks(current, _value("Munich", "shop", days=6), "city", POLICY)
    assert outranks(current, _value("Munich", "shop", days=5), "city", POLICY)
    assert not outranks(current, _value("Munich", "shop", days=4), "city", POLICY)


def test_unknown_sources_rank_last() -> None:
    # Given a value from the lowest listed source
    current = _value("Acme", "callcenter", days=1)

    # When an unlisted source says otherwise, later
    # Then it does not replace the listed source, but does replace another unlisted one by recency
    assert not outranks(current, _value("Other", "webform", days=9), "company", POLICY)
    assert outranks(_value("Acme", "survey", days=1), _value("Other", "webform", days=9), "company", POLICY)
    assert outranks(None, _value("Other", "webform", days=0), "company", POLICY)


# -- apply_attributes ------------------------------------------------------------------------------
def test_new_attributes_are_set_and_reported() -> None:
    # Given an empty profile
    profile: dict[str, AttributeValue] = {}

    # When a source brings attributes
    changed = apply_attributes(
        profile, {"last_name": "Doe", "first_name": "Jane"}, source="shop", observed_at=_at(1), policy=POLICY
    )

    # Then they are set with their provenance and reported in name order
    assert changed == ["first_name", "last_name"]
    assert profile["first_name"] == _value("Jane", "shop", days=1)


def test_higher_priority_source_keeps_its_value_against_newer_lower_ones() -> None:
    # Given a company name the crm observed long ago
    profile = {"company": _value("Acme", "crm", days=0)}

    # When the lower-ranked shop says otherwise much later
    changed = apply_attributes(profile, {"company": "Acme Ltd"}, source="shop", observed_at=_at(20), policy=POLICY)

    # Then nothing changes
    assert changed == []
    assert profile["company"].value == "Acme"


def test_higher_priority_source_replaces_a_newer_lower_one() -> None:
    # Given a company name the shop observed recently
    profile = {"company": _value("Acme Ltd", "shop", days=20)}

    # When the crm brings an older observation
    changed = apply_attributes(profile, {"company": "Acme"}, source="crm", observed_at=_at(1), policy=POLICY)

    # Then the crm's value wins
    assert changed == ["company"]
    assert profile["company"] == _value("Acme", "crm", days=1)


def test_same_rank_more_recent_wins_and_older_is_ignored() -> None:
    # Given a city the shop observed on day 5
    profile = {"city": _value("Berlin", "shop", days=5)}

    # When the shop sends an older record, then a newer one
    older = apply_attributes(profile, {"city": "Hamburg"}, source="shop", observed_at=_at(4), policy=POLICY)
    newer = apply_attributes(profile, {"city": "Munich"}, source="shop", observed_at=_at(6), policy=POLICY)

    # Then only the newer one changes the city
    assert (older, newer) == ([], ["city"])
    assert profile["city"] == _value("Munich", "shop", days=6)


def test_unknown_source_cannot_override_a_listed_one() -> None:
    # Given a job title from the lowest listed source
    profile = {"job_title": _value("Buyer", "callcenter", days=0)}

    # When an unlisted source says otherwise, later
    changed = apply_attributes(profile, {"job_title": "CTO"}, source="webform", observed_at=_at(9), policy=POLICY)

    # Then the listed source keeps it
    assert changed == []
    assert profile["job_title"].source == "callcenter"


def test_none_values_are_ignored() -> None:
    # Given a profile with a last name
    profile = {"last_name": _value("Doe", "callcenter", days=0)}

    # When the top source sends nulls (an empty column), one for an attribute the profile lacks
    changed = apply_attributes(
        profile, {"last_name": None, "city": None}, source="crm", observed_at=_at(9), policy=POLICY
    )

    # Then nothing is removed, added or reported
    assert changed == []
    assert profile == {"last_name": _value("Doe", "callcenter", days=0)}


def test_same_value_with_better_provenance_is_not_a_change() -> None:
    # Given a last name from the call centre
    profile = {"last_name": _value("Doe", "callcenter", days=0)}

    # When the crm confirms the same value
    changed = apply_attributes(profile, {"last_name": "Doe"}, source="crm", observed_at=_at(1), policy=POLICY)

    # Then the provenance improves but nothing is reported as changed
    assert changed == []
    assert profile["last_name"] == _value("Doe", "crm", days=1)


def test_same_value_with_worse_provenance_keeps_the_better_one() -> None:
    # Given a last name from the crm
    profile = {"last_name": _value("Doe", "crm", days=0)}

    # When the call centre repeats it later
    changed = apply_attributes(profile, {"last_name": "Doe"}, source="callcenter", observed_at=_at(5), policy=POLICY)

    # Then the crm stays the provenance
    assert changed == []
    assert profile["last_name"] == _value("Doe", "crm", days=0)


def test_attribute_outcome_does_not_depend_on_arrival_order() -> None:
    # Given three observations of one city by two equally ranked (unlisted) sources
    observations = [("webform", "Berlin", 1), ("webform", "Berlin", 3), ("survey", "Munich", 2)]

    # When they arrive in two different orders
    outcomes = []
    for order in (observations, [observations[0], observations[2], observations[1]]):
        profile: dict[str, AttributeValue] = {}
        for source, city, days in order:
            apply_attributes(profile, {"city": city}, source=source, observed_at=_at(days), policy=POLICY)
        outcomes.append(profile["city"].value)

    # Then the most recent observation (Berlin, day 3) wins both times
    assert outcomes == ["Berlin", "Berlin"]


# -- apply_consent ---------------------------------------------------------------------------------
def test_first_statement_is_recorded_as_a_change() -> None:
    # Given no consent on record
    consents: dict[str, Consent] = {}

    # When the customer grants email marketing
    change = apply_consent(consents, _statement("granted", 1), now=NOW)

    # Then it is held and reported, with no previous state
    assert change is not None
    assert change.previous_state is None
    assert consents["email#marketing"].state == "granted"
    assert consents["email#marketing"].updated_at == NOW
    assert change.consent == consents["email#marketing"]


def test_newer_statement_replaces_and_reports_the_previous_state() -> None:
    # Given a grant captured on day 1
    consents = _consents(_consent("granted", 1))

    # When a withdrawal captured on day 2 arrives
    change = apply_consent(consents, _statement("denied", 2), now=NOW)

    # Then the withdrawal is held and reported as a change from granted
    assert change == ConsentChange(consents["email#marketing"], "granted")
    assert consents["email#marketing"].state == "denied"


def test_stale_statement_is_ignored() -> None:
    # Given a withdrawal captured on day 5
    withdrawal = _consent("denied", 5)
    consents = _consents(withdrawal)

    # When a stale import brings a grant captured on day 1
    change = apply_consent(consents, _statement("granted", 1), now=NOW)

    # Then the withdrawal stands
    assert change is None
    assert consents["email#marketing"] == withdrawal


def test_same_state_with_fresher_proof_updates_without_a_change() -> None:
    # Given a grant captured on day 1
    consents = _consents(_consent("granted", 1))

    # When the customer grants again on day 3, under a newer notice
    change = apply_consent(consents, _statement("granted", 3, notice_version="v2"), now=NOW)

    # Then the fresher proof is kept, but no change is reported
    assert change is None
    assert consents["email#marketing"].proof.model_dump(exclude={"recorded_by"}) == (
        _proof(3, notice_version="v2").model_dump()
    )
    assert consents["email#marketing"].updated_at == NOW


def test_repeating_the_same_statement_changes_nothing() -> None:
    # Given a grant on record
    consents: dict[str, Consent] = {}
    apply_consent(consents, _statement("granted", 1), now=_at(1))
    held = consents["email#marketing"]

    # When the same statement is replayed later
    change = apply_consent(consents, _statement("granted", 1), now=NOW)

    # Then nothing changes, not even the update time
    assert change is None
    assert consents["email#marketing"] == held


def test_consents_are_held_per_channel_and_purpose() -> None:
    # Given a grant for email marketing
    consents = _consents(_consent("granted", 1))

    # When sms marketing is denied
    change = apply_consent(consents, _statement("denied", 2, channel="sms"), now=NOW)

    # Then email marketing is untouched and sms is new
    assert change is not None
    assert change.previous_state is None
    assert {k: c.state for k, c in consents.items()} == {"email#marketing": "granted", "sms#marketing": "denied"}


# -- merge_consents --------------------------------------------------------------------------------
def test_merge_denied_wins_over_a_newer_grant() -> None:
    # Given a survivor that granted recently and another record that denied long ago
    survivor = _consents(_consent("granted", 9))
    other = _consents(_consent("denied", 1))

    # When the consents are merged
    changes = merge_consents(survivor, other)

    # Then the denial wins, reported as a change from granted
    assert survivor["email#marketing"].state == "denied"
    assert [(c.consent.state, c.previous_state) for c in changes] == [("denied", "granted")]


def test_merge_keeps_a_denial_against_a_grant() -> None:
    # Given a survivor that denied and another record that granted later
    denial = _consent("denied", 1)
    survivor = _consents(denial)

    # When the consents are merged
    changes = merge_consents(survivor, _consents(_consent("granted", 9)))

    # Then the denial stays and nothing is reported
    assert changes == []
    assert survivor["email#marketing"] == denial


def test_merge_takes_the_union_of_keys() -> None:
    # Given consents on different channels on each side
    survivor = _consents(_consent("granted", 1), _consent("denied", 1, channel="push"))
    other = _consents(_consent("granted", 2, channel="sms"), _consent("denied", 2, purpose="profiling"))

    # When they are merged
    changes = merge_consents(survivor, other)

    # Then the survivor holds every key, and the ones it lacked are reported as new
    assert sorted(survivor) == ["email#marketing", "email#profiling", "push#marketing", "sms#marketing"]
    assert sorted((consent_key(c.consent.channel, c.consent.purpose), c.previous_state) for c in changes) == [
        ("email#profiling", None),
        ("sms#marketing", None),
    ]


def test_merge_same_state_keeps_the_fresher_proof_silently() -> None:
    # Given the same grant on both sides, the other's proof fresher
    survivor = _consents(_consent("granted", 1))
    fresher = _consent("granted", 4)

    # When they are merged
    changes = merge_consents(survivor, _consents(fresher))

    # Then the fresher proof is kept, without reporting a change
    assert changes == []
    assert survivor["email#marketing"] == fresher


# -- merge_into ------------------------------------------------------------------------------------
def test_merge_into_folds_the_profile_by_precedence() -> None:
    # Given a survivor and another customer with overlapping attributes from differently ranked sources
    survivor = _customer(
        OLDEST, profile={"company": _value("Acme Ltd", "shop", 9), "last_name": _value("Doe", "crm", 0)}
    )
    other = _customer(
        NEWEST,
        profile={
            "company": _value("Acme", "crm", 1),
            "last_name": _value("Smith", "callcenter", 9),
            "city": _value("Berlin", "shop", 2),
        },
    )

    # When the other is folded into the survivor
    changed, _ = merge_into(survivor, other, POLICY)

    # Then the higher-ranked source wins each attribute, and attributes only the other had are added
    assert sorted(changed) == ["city", "company"]
    assert survivor.profile == {
        "company": _value("Acme", "crm", 1),
        "last_name": _value("Doe", "crm", 0),
        "city": _value("Berlin", "shop", 2),
    }


def test_merge_into_tracks_merged_ids_transitively_and_unites_sources() -> None:
    # Given a survivor that absorbed one customer, and another that absorbed a third
    earlier_loser, others_loser = new_id("cus_"), new_id("cus_")
    survivor = _customer(OLDEST, merged_ids=[earlier_loser], sources=["crm", "shop"])
    other = _customer(MIDDLE, merged_ids=[others_loser], sources=["callcenter", "shop"])

    # When the other is folded into the survivor
    merge_into(survivor, other, POLICY)

    # Then every id that now resolves to the survivor is listed, and the sources are united
    assert survivor.merged_ids == sorted([earlier_loser, others_loser, MIDDLE])
    assert survivor.sources == ["callcenter", "crm", "shop"]


def test_merge_into_makes_consents_most_restrictive() -> None:
    # Given a survivor that granted email marketing and another that denied it, plus an sms grant
    survivor = _customer(OLDEST, consents=[_consent("granted", 5)])
    other = _customer(NEWEST, consents=[_consent("denied", 1), _consent("granted", 1, channel="sms")])

    # When the other is folded into the survivor
    _, consent_changes = merge_into(survivor, other, POLICY)

    # Then the denial wins, the sms grant is adopted, and both are reported
    assert [(c.channel, c.state) for c in survivor.consents] == [("email", "denied"), ("sms", "granted")]
    assert [(c.consent.channel, c.previous_state) for c in consent_changes] == [("email", "granted"), ("sms", None)]


def test_merge_into_keeps_the_survivors_preferences_and_traits_first() -> None:
    # Given a survivor without preferences and another customer with some, and traits on both sides
    other_preferences = Preferences(language="de", preferred_channels=["email"])
    survivor = _customer(OLDEST, traits={"ltv": 10})
    other = _customer(NEWEST, preferences=other_preferences, traits={"ltv": 99, "churn_risk": 0.2})

    # When the other is folded into the survivor
    merge_into(survivor, other, POLICY)

    # Then the other's preferences fill the gap, and the survivor's traits win where both have one
    assert survivor.preferences == other_preferences
    assert survivor.traits == {"ltv": 10, "churn_risk": 0.2}

    # And a survivor with its own preferences keeps them
    own = Preferences(language="fr")
    keeper = _customer(OLDEST, preferences=own)
    merge_into(keeper, other, POLICY)
    assert keeper.preferences == own


def test_merge_into_keeps_the_better_provenance_of_an_equal_value() -> None:
    # Given the same company on both sides, confirmed by the crm only on the other customer
    survivor = _customer(OLDEST, profile={"company": _value("Acme", "callcenter", 0)})
    other = _customer(NEWEST, profile={"company": _value("Acme", "crm", 1)})

    # When the other is folded into the survivor
    changed, _ = merge_into(survivor, other, POLICY)

    # Then nothing is reported as changed, but the crm is now the provenance
    assert changed == []
    assert survivor.profile["company"] == _value("Acme", "crm", 1)


# -- apply_preferences -----------------------------------------------------------------------------
def test_apply_preferences_reports_only_what_changed() -> None:
    # Given preferences with a language
    current = Preferences(language="de")

    # When a patch repeats the language and sets a time zone
    updated, changed = apply_preferences(current, {"language": "de", "time_zone": "Europe/Berlin"})

    # Then both are held, and only the time zone is reported
    assert (updated.language, updated.time_zone) == ("de", "Europe/Berlin")
    assert changed == ["preferences.time_zone"]
    assert current.time_zone is None


def test_apply_preferences_validates_the_result() -> None:
    # Given preferences
    # When a patch names a time zone that does not exist
    # Then it is refused
    with pytest.raises(ValidationError, match="IANA"):
        apply_preferences(Preferences(), {"time_zone": "Mars/Olympus"})


# -- properties ------------------------------------------------------------------------------------
_CONSENT_KEYS = [("email", "marketing"), ("email", "profiling"), ("sms", "marketing"), ("push", "topic:sale")]
_consent_maps = st.dictionaries(
    st.sampled_from(_CONSENT_KEYS), st.tuples(st.sampled_from(["granted", "denied"]), st.integers(0, 4)), max_size=4
)


def _consent_map(spec: dict[tuple[str, str], tuple[str, int]]) -> dict[str, Consent]:
    return _consents(
        *(_consent(state, days, channel=channel, purpose=purpose) for (channel, purpose), (state, days) in spec.items())
    )


@FAST
@given(_consent_maps, _consent_maps)
def test_merge_consents_is_most_restrictive(
    mine: dict[tuple[str, str], tuple[str, int]], theirs: dict[tuple[str, str], tuple[str, int]]
) -> None:
    # Given any two customers' consents
    survivor, other = _consent_map(mine), _consent_map(theirs)
    inputs = [dict(survivor), other]

    # When they are merged
    merge_consents(survivor, other)

    # Then every key of either side is held
    assert set(survivor) == set(inputs[0]) | set(inputs[1])
    for key, merged in survivor.items():
        held = [side[key].state for side in inputs if key in side]
        # And a key denied on either side is denied
        if "denied" in held:
            assert merged.state == "denied"
        # And a key granted after the merge was granted on every side that held it
        if merged.state == "granted":
            assert set(held) == {"granted"}


_TOKENS = st.text("ab12", min_size=1, max_size=3)
_customer_ids = st.sampled_from([OLDEST, MIDDLE, NEWEST])
_unique_identities = st.lists(
    st.builds(
        NormalizedIdentity,
        st.sampled_from(sorted(DEFAULT_UNIQUE_TYPES)),
        st.just(""),
        _TOKENS,
    ),
    unique=True,
    max_size=6,
)
_devices = st.lists(_TOKENS.map(_device), unique=True, max_size=3)


@FAST
@given(
    owner=_customer_ids,
    unique=_unique_identities.flatmap(lambda ids: st.tuples(st.just(ids), st.lists(st.booleans(), min_size=len(ids)))),
    devices=_devices.flatmap(
        lambda ids: st.tuples(st.just(ids), st.lists(st.none() | _customer_ids, min_size=len(ids)))
    ),
)
def test_one_owner_never_merges(
    owner: str,
    unique: tuple[list[NormalizedIdentity], list[bool]],
    devices: tuple[list[NormalizedIdentity], list[str | None]],
) -> None:
    # Given a record whose owned unique identities all belong to one customer (device ids to anyone)
    (unique_ids, owned), (device_ids, device_owners) = unique, devices
    owners = {i.key: owner for i, is_owned in zip(unique_ids, owned, strict=False) if is_owned}
    owners |= {d.key: o for d, o in zip(device_ids, device_owners, strict=False) if o is not None}

    # When its resolution is planned
    plan = plan_resolution([*unique_ids, *device_ids], owners, POLICY)

    # Then no customer is merged
    assert plan.action != "merge"
    assert plan.merged_ids == ()
    # And when a unique identity matched, the record attaches to its owner
    if any(i.key in owners for i in unique_ids):
        assert (plan.action, plan.survivor_id) == ("attach", owner)


_sources = st.sampled_from(["crm", "shop", "callcenter", "webform"])
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["Berlin", "Acme", ""]),
)
_names = st.sampled_from(["city", "company", "last_name", "tier"])
_profiles = st.dictionaries(
    _names, st.builds(AttributeValue, value=_scalars, source=_sources, observed_at=st.integers(0, 9).map(_at))
)


@FAST
@given(
    profile=_profiles,
    attributes=st.dictionaries(_names, _scalars),
    source=_sources,
    days=st.integers(0, 9),
)
def test_apply_attributes_is_idempotent(
    profile: dict[str, AttributeValue], attributes: dict[str, Scalar], source: str, days: int
) -> None:
    # Given any profile and a record from any source, applied once
    apply_attributes(profile, attributes, source=source, observed_at=_at(days), policy=POLICY)
    after_first = dict(profile)

    # When the same record is applied again
    changed = apply_attributes(profile, attributes, source=source, observed_at=_at(days), policy=POLICY)

    # Then it reports no change and leaves the profile as it was
    assert changed == []
    assert profile == after_first
