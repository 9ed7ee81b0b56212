"""Offers: eligibility with its reasons, ranking by expected value, and arbitration across channels."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ecrm.core.events import DomainEvent, envelope_for, registered_events
from ecrm.customers.models import AttributeValue, Consent, ConsentProof, Customer
from ecrm.personalization.offers import (
    DECISION_WINDOW,
    PRIOR_STRENGTH,
    CustomerContext,
    Exclusion,
    Offer,
    OfferAccepted,
    OfferCounters,
    OfferCreated,
    OfferExhausted,
    OfferIn,
    OfferOutcomes,
    OfferPresented,
    OutcomeCounts,
    budget_exhausted,
    customer_offers,
    eligible_offers,
    estimate_propensity,
    next_best_offer,
    rank_key,
    rank_offers,
    score_offer,
    trait_buckets,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

FAST = settings(max_examples=150, deadline=None)

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CHANNELS = ("email", "sms", "push", "in_app", "web", "phone")

CUSTOMER = CustomerContext(
    customer_id="cus_1",
    segments=frozenset({"vip", "newsletter"}),
    traits={"churn_risk": 0.7, "rfm_segment": "champions", "orders": 12, "is_member": True},
    country="FR",
    marketing_channels=frozenset({"email", "sms", "in_app"}),
)


def make_offer(offer_id: str, **overrides: Any) -> Offer:
    body: dict[str, Any] = {
        "name": offer_id,
        "channels": ["email", "sms", "in_app", "web"],
        "valid_from": NOW - timedelta(days=1),
        "value": 10.0,
        "propensity_prior": 0.1,
    } | overrides
    return Offer(offer_id=offer_id, created_at=NOW - timedelta(days=2), updated_at=NOW - timedelta(days=2), **body)


def exclusion_of(offer: Offer, customer: CustomerContext = CUSTOMER, **kwargs: Any) -> Exclusion | None:
    kwargs.setdefault("now", NOW)
    result = eligible_offers([offer], customer, **kwargs)
    return result.excluded[0] if result.excluded else None


# -- eligibility ------------------------------------------------------------------------------------
def test_an_offer_with_no_rules_is_eligible() -> None:
    assert exclusion_of(make_offer("off_a")) is None


@pytest.mark.parametrize(
    ("overrides", "kwargs", "reason"),
    [
        ({"status": "paused"}, {}, "offer not active"),
        ({"status": "exhausted"}, {}, "budget exhausted"),
        ({"valid_from": NOW + timedelta(seconds=1)}, {}, "outside validity window"),
        ({"valid_from": NOW - timedelta(days=3), "valid_until": NOW}, {}, "outside validity window"),
        ({"channels": ["email"]}, {"channel": "sms"}, "channel not allowed"),
        ({"channels": ["push"]}, {"channel": "push"}, "no marketing consent"),
        ({"channels": ["push", "phone"]}, {}, "no marketing consent"),
        ({"eligibility": {"segments": {"any_of": ["gold", "platinum"]}}}, {}, "not eligible: segment"),
        ({"eligibility": {"segments": {"none_of": ["vip"]}}}, {}, "not eligible: segment"),
        (
            {"eligibility": {"conditions": [{"trait": "churn_risk", "op": ">=", "value": 0.8}]}},
            {},
            "not eligible: trait",
        ),
        (
            {"eligibility": {"conditions": [{"trait": "rfm_segment", "op": "in", "value": ["lost"]}]}},
            {},
            "not eligible: trait",
        ),
        (
            {"eligibility": {"conditions": [{"trait": "country", "op": "in", "value": ["de", "at"]}]}},
            {},
            "not eligible: trait",
        ),
        ({"eligibility": {"conditions": [{"trait": "ltv", "op": ">", "value": 0}]}}, {}, "not eligible: trait"),
        ({"eligibility": {"conditions": [{"trait": "is_member", "op": "==", "value": 1}]}}, {}, "not eligible: trait"),
        ({"cap": {"max_presentations": 3}}, {"usage": {"off_a": OutcomeCounts(presented=3)}}, "cap reached"),
        ({"cap": {"max_acceptances": 1}}, {"usage": {"off_a": OutcomeCounts(presented=5, accepted=1)}}, "cap reached"),
        ({"budget": {"max_acceptances": 100}, "counters": {"presented": 900, "accepted": 100}}, {}, "budget exhausted"),
        (
            {"budget": {"max_total_cost": 100, "unit_cost": 15}},
            {"budget_usage": {"off_a": OfferCounters(accepted=6, cost_spent=90)}},
            "budget exhausted",
        ),
    ],
)
def test_each_rule_excludes_with_its_reason(overrides: dict[str, Any], kwargs: dict[str, Any], reason: str) -> None:
    # Given an offer breaking exactly one rule for the customer
    excluded = exclusion_of(make_offer("off_a", **overrides), **kwargs)
    # Then it is excluded, and the reason names the rule
    assert excluded is not None
    assert excluded.reason == reason
    assert excluded.offer_id == "off_a"
    assert excluded.detail


@pytest.mark.parametrize(
    ("conditions", "channel"),
    [
        ([{"trait": "churn_risk", "op": ">=", "value": 0.6}], "email"),
        ([{"trait": "rfm_segment", "op": "in", "value": ["champions", "loyal"]}], "email"),
        ([{"trait": "country", "op": "in", "value": ["fr", "be"]}], "sms"),
        ([{"trait": "orders", "op": ">", "value": 10}, {"trait": "is_member", "op": "==", "value": True}], "email"),
        ([{"trait": "ltv", "op": "not_in", "value": [0]}, {"trait": "rfm_segment", "op": "exists"}], "in_app"),
        (
            [{"trait": "churn_risk", "op": "<", "value": 0.9}, {"trait": "rfm_segment", "op": "!=", "value": "lost"}],
            "web",
        ),
    ],
)
def test_conditions_that_hold_keep_the_offer(conditions: list[dict[str, Any]], channel: str) -> None:
    offer = make_offer("off_a", eligibility={"conditions": conditions, "segments": {"any_of": ["vip", "gold"]}})
    assert exclusion_of(offer, channel=channel) is None


def test_the_web_needs_no_marketing_consent_but_other_channels_do() -> None:
    # Given a customer who granted no marketing consent at all
    silent = CUSTOMER.model_copy(update={"marketing_channels": frozenset()})
    offer = make_offer("off_a", channels=["web", "email"])
    # Then the offer can be shown on the site, not sent by email
    assert exclusion_of(offer, silent, channel="web") is None
    assert exclusion_of(offer, silent, channel="email").reason == "no marketing consent"  # type: ignore[union-attr]
    assert exclusion_of(offer, silent) is None  # reachable on at least one of its channels


def test_without_profiling_consent_only_untargeted_or_country_targeted_offers_remain() -> None:
    objector = CUSTOMER.model_copy(update={"profiling_allowed": False})
    by_trait = make_offer("off_t", eligibility={"conditions": [{"trait": "churn_risk", "op": ">", "value": 0.5}]})
    by_segment = make_offer("off_s", eligibility={"segments": {"none_of": ["staff"]}})
    by_country = make_offer("off_c", eligibility={"conditions": [{"trait": "country", "op": "==", "value": "FR"}]})
    result = eligible_offers([by_trait, by_segment, by_country, make_offer("off_u")], objector, now=NOW)
    assert [o.offer_id for o in result.eligible] == ["off_c", "off_u"]
    assert {(e.offer_id, e.reason) for e in result.excluded} == {
        ("off_t", "no profiling consent"),
        ("off_s", "no profiling consent"),
    }


def test_the_validity_window_includes_its_start_and_excludes_its_end() -> None:
    offer = make_offer("off_a", valid_from=NOW, valid_until=NOW + timedelta(hours=1))
    assert exclusion_of(offer, now=NOW) is None
    assert exclusion_of(offer, now=NOW + timedelta(minutes=59)) is None
    assert exclusion_of(offer, now=NOW + timedelta(hours=1)).reason == "outside validity window"  # type: ignore[union-attr]


def test_a_budget_stops_before_the_acceptance_that_would_overrun_it() -> None:
    offer = make_offer("off_a", budget={"max_total_cost": 100, "unit_cost": 15})
    assert budget_exhausted(offer, OfferCounters(accepted=5, cost_spent=75)) is None  # 90 <= 100
    assert budget_exhausted(offer, OfferCounters(accepted=6, cost_spent=90)) is not None  # 105 > 100
    assert budget_exhausted(make_offer("off_b")) is None


def test_accepting_one_offer_of_an_exclusive_group_excludes_the_others() -> None:
    ten, twenty = make_offer("off_10", exclusive_group="shoes"), make_offer("off_20", exclusive_group="shoes")
    result = eligible_offers([ten, twenty], CUSTOMER, now=NOW, usage={"off_20": OutcomeCounts(presented=1, accepted=1)})
    assert [o.offer_id for o in result.eligible] == ["off_20"]
    assert result.excluded[0].reason == "exclusive group"


# -- ranking ----------------------------------------------------------------------------------------
def test_propensity_is_the_beta_posterior_mean_around_the_prior() -> None:
    # Given a 10% prior worth 20 presentations, and 20 acceptances in 80 presentations
    offer = make_offer("off_a", counters={"presented": 80, "accepted": 20})
    propensity, basis = estimate_propensity(offer, CUSTOMER)
    assert PRIOR_STRENGTH == 20
    assert propensity == pytest.approx((0.1 * 20 + 20) / (20 + 80))  # 0.22
    assert basis == "offer"
    assert estimate_propensity(make_offer("off_b"), CUSTOMER) == (pytest.approx(0.1), "prior")


def test_the_customers_best_documented_trait_bucket_adjusts_the_propensity() -> None:
    offer = make_offer("off_a")
    outcomes = OfferOutcomes(
        presented=80,
        accepted=20,
        by_bucket={
            "rfm_segment=champions": OutcomeCounts(presented=30, accepted=15),
            "churn_risk=high": OutcomeCounts(presented=10, accepted=9),
            "rfm_segment=lost": OutcomeCounts(presented=500, accepted=0),  # not this customer's bucket
        },
    )
    propensity, basis = estimate_propensity(offer, CUSTOMER, outcomes)
    # the offer's 0.22 becomes the prior of the bucket with the most presentations among the customer's
    assert propensity == pytest.approx((0.22 * 20 + 15) / (20 + 30))  # 0.388
    assert basis == "bucket:rfm_segment=champions"
    # and without profiling consent, the customer is not bucketed
    objector = CUSTOMER.model_copy(update={"profiling_allowed": False})
    assert estimate_propensity(offer, objector, outcomes) == (pytest.approx(0.22), "offer")


def test_trait_buckets_are_text_flags_score_thirds_and_country() -> None:
    assert trait_buckets(CUSTOMER) == ["churn_risk=high", "is_member=true", "rfm_segment=champions", "country=FR"]


def test_offers_rank_by_expected_value() -> None:
    # Given expected values 0.1 x 10 = 1, 0.02 x 100 = 2 and 0.5 x 1 = 0.5
    offers = [
        make_offer("off_a"),
        make_offer("off_b", propensity_prior=0.02, value=100),
        make_offer("off_c", propensity_prior=0.5, value=1),
    ]
    ranked = rank_offers(offers, CUSTOMER).ranked
    assert [r.offer_id for r in ranked] == ["off_b", "off_a", "off_c"]
    assert [r.expected_value for r in ranked] == pytest.approx([2.0, 1.0, 0.5])


def test_priority_overrides_expected_value_and_expected_value_orders_within_a_priority() -> None:
    offers = [
        make_offer("off_a", value=1000),
        make_offer("off_b", priority=5, value=1),
        make_offer("off_c", priority=5, value=2),
    ]
    assert [r.offer_id for r in rank_offers(offers, CUSTOMER).ranked] == ["off_c", "off_b", "off_a"]


def test_equal_expected_values_prefer_the_likelier_offer() -> None:
    offers = [make_offer("off_a", propensity_prior=0.1, value=20), make_offer("off_b", propensity_prior=0.2, value=10)]
    assert [r.offer_id for r in rank_offers(offers, CUSTOMER).ranked] == ["off_b", "off_a"]


def test_exact_ties_are_deterministic_and_spread_across_customers() -> None:
    offers = [make_offer(f"off_{i}") for i in range(4)]
    for customer_id in ("cus_1", "cus_2", "cus_3"):
        customer = CUSTOMER.model_copy(update={"customer_id": customer_id})
        orders = {
            tuple(r.offer_id for r in rank_offers(list(p), customer).ranked) for p in itertools.permutations(offers)
        }
        assert len(orders) == 1  # the input order does not matter
    firsts = {
        rank_offers(offers, CUSTOMER.model_copy(update={"customer_id": f"cus_{n}"})).ranked[0].offer_id
        for n in range(40)
    }
    assert len(firsts) > 1  # equal offers are not all shown to everyone in the same order


def test_only_the_best_offer_of_an_exclusive_group_is_ranked() -> None:
    offers = [make_offer("off_10", exclusive_group="shoes"), make_offer("off_20", exclusive_group="shoes", value=20)]
    ranking = rank_offers(offers, CUSTOMER)
    assert [r.offer_id for r in ranking.ranked] == ["off_20"]
    assert ranking.excluded == [
        Exclusion(offer_id="off_10", reason="exclusive group", detail="off_20 ranks higher in group shoes")
    ]


def test_customer_offers_lists_eligible_offers_best_first_with_the_reasons_for_the_rest() -> None:
    offers = [make_offer("off_a"), make_offer("off_b", value=50), make_offer("off_c", status="paused")]
    ranking = customer_offers(offers, CUSTOMER, now=NOW)
    assert [r.offer_id for r in ranking.ranked] == ["off_b", "off_a"]
    assert [(e.offer_id, e.reason) for e in ranking.excluded] == [("off_c", "offer not active")]


# -- arbitration --------------------------------------------------------------------------------------
CATALOGUE = [
    make_offer("off_best", value=30, channels=["email", "in_app"]),
    make_offer("off_second", value=20),
    make_offer("off_third", value=10),
]


def test_every_channel_gets_the_same_offer_within_the_decision_window() -> None:
    # Given a decision made on email
    first = next_best_offer(CATALOGUE, CUSTOMER, now=NOW, channel="email")
    assert first.offer is not None
    assert first.offer.offer_id == "off_best"
    assert first.decided_now
    assert first.decision.expires_at == NOW + DECISION_WINDOW
    # When in-app asks an hour later, with the remembered decision
    later = next_best_offer(
        CATALOGUE, CUSTOMER, now=NOW + timedelta(hours=1), channel="in_app", previous=first.decision
    )
    # Then it shows the same offer, and the decision is not remade
    assert later.offer is not None
    assert later.offer.offer_id == "off_best"
    assert not later.decided_now
    assert later.decision == first.decision


def test_a_channel_that_cannot_show_the_best_offer_shows_the_next_one_in_the_remembered_order() -> None:
    first = next_best_offer(CATALOGUE, CUSTOMER, now=NOW, channel="email")
    sms = next_best_offer(CATALOGUE, CUSTOMER, now=NOW, channel="sms", previous=first.decision)
    assert sms.offer is not None
    assert sms.offer.offer_id == "off_second"
    assert sms.rank == 2
    assert ("off_best", "channel not allowed") in {(e.offer_id, e.reason) for e in sms.excluded}


def test_the_decision_holds_against_new_evidence_until_the_window_ends() -> None:
    first = next_best_offer(CATALOGUE, CUSTOMER, now=NOW, channel="email")
    # Given evidence that the third offer converts far better than assumed
    outcomes = {"off_third": OfferOutcomes(presented=1000, accepted=900)}
    kwargs: dict[str, Any] = {"channel": "email", "previous": first.decision, "outcomes": outcomes}
    # Then within the window the remembered order stands...
    within = next_best_offer(CATALOGUE, CUSTOMER, now=NOW + DECISION_WINDOW - timedelta(seconds=1), **kwargs)
    assert within.offer is not None
    assert within.offer.offer_id == "off_best"
    # ...and the first request after it decides afresh
    after = next_best_offer(CATALOGUE, CUSTOMER, now=NOW + DECISION_WINDOW, **kwargs)
    assert after.decided_now
    assert after.offer is not None
    assert after.offer.offer_id == "off_third"
    assert after.decision.ranking[0] == "off_third"


def test_an_offer_capped_within_the_window_gives_way_to_the_next() -> None:
    capped = make_offer("off_best", value=30, channels=["email", "in_app"], cap={"max_presentations": 2})
    catalogue = [capped, *CATALOGUE[1:]]
    first = next_best_offer(catalogue, CUSTOMER, now=NOW, channel="email")
    usage = {"off_best": OutcomeCounts(presented=2)}
    again = next_best_offer(catalogue, CUSTOMER, now=NOW, channel="in_app", previous=first.decision, usage=usage)
    assert again.offer is not None
    assert again.offer.offer_id == "off_second"


def test_an_offer_created_within_the_window_comes_after_the_remembered_ones() -> None:
    catalogue = [make_offer("off_email", channels=["email"])]
    first = next_best_offer(catalogue, CUSTOMER, now=NOW, channel="email")
    newcomer = make_offer("off_new", value=1000)
    grown = [*catalogue, newcomer]
    email = next_best_offer(grown, CUSTOMER, now=NOW, channel="email", previous=first.decision)
    sms = next_best_offer(grown, CUSTOMER, now=NOW, channel="sms", previous=first.decision)
    assert email.offer is not None
    assert email.offer.offer_id == "off_email"  # the remembered best still wins where it can be shown
    assert sms.offer is not None
    assert sms.offer.offer_id == "off_new"  # nothing remembered fits SMS: the newcomer does
    assert sms.rank == 2


def test_two_channels_never_show_two_offers_of_one_exclusive_group() -> None:
    # Given the group's best offer can only go by email
    catalogue = [
        make_offer("off_20", exclusive_group="shoes", value=40, channels=["email"]),
        make_offer("off_10", exclusive_group="shoes", value=30),
        make_offer("off_other", value=5),
    ]
    email = next_best_offer(catalogue, CUSTOMER, now=NOW, channel="email")
    sms = next_best_offer(catalogue, CUSTOMER, now=NOW, channel="sms", previous=email.decision)
    assert email.offer is not None
    assert email.offer.offer_id == "off_20"
    assert sms.offer is not None
    assert sms.offer.offer_id == "off_other"
    assert ("off_10", "exclusive group") in {(e.offer_id, e.reason) for e in sms.excluded}


def test_no_eligible_offer_means_no_offer_and_the_reasons_why() -> None:
    result = next_best_offer([make_offer("off_a", status="paused")], CUSTOMER, now=NOW, channel="email")
    assert result.offer is None
    assert result.rank is None
    assert result.decision.ranking == []
    assert [e.reason for e in result.excluded] == ["offer not active"]


def test_a_decision_for_another_customer_is_refused() -> None:
    first = next_best_offer(CATALOGUE, CUSTOMER, now=NOW, channel="email")
    other = CUSTOMER.model_copy(update={"customer_id": "cus_2"})
    with pytest.raises(ValueError, match="another customer"):
        next_best_offer(CATALOGUE, other, now=NOW, channel="email", previous=first.decision)


# -- properties ---------------------------------------------------------------------------------------
@st.composite
def situations(draw: st.DrawFn, groups: bool) -> tuple[list[Offer], CustomerContext, dict[str, OutcomeCounts]]:
    offers, usage = [], {}
    for i in range(draw(st.integers(0, 8))):
        presented = draw(st.integers(0, 200))
        overrides: dict[str, Any] = {
            "channels": draw(st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=4, unique=True)),
            "priority": draw(st.sampled_from([0, 0, 0, 1, 2])),
            "value": draw(st.sampled_from([0.0, 1.0, 5.0, 10.0, 20.0, 100.0])),
            "propensity_prior": draw(st.sampled_from([0.01, 0.05, 0.1, 0.5])),
            "counters": {"presented": presented, "accepted": draw(st.integers(0, presented))},
            "status": draw(st.sampled_from(["active", "active", "active", "paused"])),
            "exclusive_group": draw(st.sampled_from([None, None, "g1", "g2"])) if groups else None,
        }
        if draw(st.booleans()):
            overrides["eligibility"] = {"segments": {"any_of": [draw(st.sampled_from(["vip", "gold"]))]}}
        if draw(st.booleans()):
            overrides["cap"] = {"max_presentations": draw(st.integers(1, 3))}
        offers.append(make_offer(f"off_{i}", **overrides))
        usage[f"off_{i}"] = OutcomeCounts(presented=draw(st.integers(0, 3)))
    customer = CustomerContext(
        customer_id=draw(st.sampled_from(["cus_1", "cus_2", "cus_3"])),
        segments=frozenset(draw(st.lists(st.sampled_from(["vip", "gold"]), unique=True))),
        marketing_channels=frozenset(draw(st.lists(st.sampled_from(CHANNELS), unique=True))),
    )
    return offers, customer, usage


@FAST
@given(situations(groups=False), st.sampled_from(CHANNELS))
def test_property_the_chosen_offer_is_eligible_and_nothing_eligible_outranks_it(
    situation: tuple[list[Offer], CustomerContext, dict[str, OutcomeCounts]], channel: Any
) -> None:
    offers, customer, usage = situation
    result = next_best_offer(offers, customer, now=NOW, channel=channel, usage=usage)
    eligible = eligible_offers(offers, customer, now=NOW, channel=channel, usage=usage).eligible
    if not eligible:
        assert result.offer is None
        return
    assert result.offer is not None
    assert result.offer.offer_id in {o.offer_id for o in eligible}
    for offer in eligible:
        other = score_offer(offer, customer)
        # no higher priority; within the same priority, no higher expected value
        assert other.priority <= result.offer.priority
        if other.priority == result.offer.priority:
            assert other.expected_value <= result.offer.expected_value + 1e-9
        assert rank_key(result.offer, customer.customer_id) <= rank_key(other, customer.customer_id)


@FAST
@given(situations(groups=True), st.sampled_from(CHANNELS))
def test_property_only_a_better_member_of_its_group_hides_a_better_offer(
    situation: tuple[list[Offer], CustomerContext, dict[str, OutcomeCounts]], channel: Any
) -> None:
    # (a group's best member may be one this channel cannot show: the group then stays out of this channel)
    offers, customer, usage = situation
    result = next_best_offer(offers, customer, now=NOW, channel=channel, usage=usage)
    eligible = eligible_offers(offers, customer, now=NOW, channel=channel, usage=usage).eligible
    by_id = {o.offer_id: o for o in offers}
    ranking = result.decision.ranking
    ahead = ranking if result.offer is None else ranking[: ranking.index(result.offer.offer_id)]
    held_groups = {by_id[i].exclusive_group for i in ahead} - {None}
    chosen_key = None if result.offer is None else rank_key(result.offer, customer.customer_id)
    for offer in eligible:
        if chosen_key is None or rank_key(score_offer(offer, customer), customer.customer_id) < chosen_key:
            assert offer.exclusive_group in held_groups
    if result.offer is not None:
        assert result.offer.offer_id in {o.offer_id for o in eligible}


@FAST
@given(situations(groups=True), st.sampled_from(CHANNELS), st.sampled_from(CHANNELS))
def test_property_a_remembered_decision_answers_like_a_fresh_one_when_nothing_changed(
    situation: tuple[list[Offer], CustomerContext, dict[str, OutcomeCounts]], first: Any, second: Any
) -> None:
    offers, customer, usage = situation
    decided = next_best_offer(offers, customer, now=NOW, channel=first, usage=usage)
    remembered = next_best_offer(
        offers, customer, now=NOW + timedelta(hours=1), channel=second, usage=usage, previous=decided.decision
    )
    fresh = next_best_offer(offers, customer, now=NOW + timedelta(hours=1), channel=second, usage=usage)
    assert remembered.offer == fresh.offer
    # and the best offer goes to both channels whenever both may show it
    both = {
        o.offer_id
        for o in offers
        if {first, second} <= set(o.channels) and customer.reachable_on(first) and customer.reachable_on(second)
    }
    if decided.decision.ranking and decided.decision.ranking[0] in both and decided.offer is not None:
        assert remembered.offer is not None
        assert decided.offer.offer_id == remembered.offer.offer_id == decided.decision.ranking[0]


# -- validation ---------------------------------------------------------------------------------------
VALID: dict[str, Any] = {"name": "Spring -10%", "channels": ["email"], "valid_from": NOW.isoformat(), "value": 12.5}


@pytest.mark.parametrize(
    ("changes", "where", "message"),
    [
        (
            {"eligibility": {"conditions": [{"trait": "churn_risk", "op": ">=", "value": "high"}]}},
            "eligibility.conditions.0",
            "churn_risk >=: needs a number, got 'high'",
        ),
        (
            {"eligibility": {"conditions": [{"trait": "rfm_segment", "op": "in", "value": "champions"}]}},
            "eligibility.conditions.0",
            "rfm_segment in: needs a list",
        ),
        (
            {"eligibility": {"conditions": [{"trait": "ok", "op": "exists"}, {"trait": "Bad Name", "op": "exists"}]}},
            "eligibility.conditions.1.trait",
            "String should match pattern",
        ),
        (
            {"eligibility": {"conditions": [{"trait": "x", "op": "~", "value": 1}]}},
            "eligibility.conditions.0.op",
            "'~'",
        ),
        ({"eligibility": {"segments": {"any_of": ["vip"], "none_of": ["vip"]}}}, "eligibility.segments", "['vip']"),
        ({"valid_until": (NOW - timedelta(days=1)).isoformat()}, "", "valid_until must be after valid_from"),
        ({"valid_from": "2026-03-02T12:00:00"}, "valid_from", "timezone"),
        ({"budget": {"max_total_cost": 500}}, "budget", "max_total_cost needs unit_cost"),
        ({"budget": {}}, "budget", "max_acceptances or max_total_cost"),
        ({"cap": {}}, "cap", "max_presentations or max_acceptances"),
        ({"code": "SPRING10", "code_pool": "pool_spring"}, "", "code or code_pool, not both"),
        ({"channels": ["email", "email"]}, "channels", "a channel appears twice"),
        ({"channels": ["fax"]}, "channels.0", "'fax'"),
        ({"propensity_prior": 1.0}, "propensity_prior", "less than 1"),
        ({"value": -1}, "value", "greater than or equal to 0"),
    ],
)
def test_validation_errors_name_the_offending_part(changes: dict[str, Any], where: str, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        OfferIn.model_validate(VALID | changes)
    text = str(error.value)
    assert message in text
    assert where in text


def test_a_valid_offer_body_normalises_countries() -> None:
    body = OfferIn.model_validate(
        VALID | {"eligibility": {"conditions": [{"trait": "country", "op": "in", "value": ["fr", "Be"]}]}}
    )
    assert body.eligibility.conditions[0].value == ["FR", "BE"]


# -- the customer, and events -----------------------------------------------------------------------------
def test_the_context_takes_marketing_consents_and_profiling_objections_from_the_customer() -> None:
    proof = ConsentProof(source="shop", captured_at=NOW)

    def consent(channel: Any, purpose: str, state: Any) -> Consent:
        return Consent(channel=channel, purpose=purpose, state=state, proof=proof, updated_at=NOW)

    customer = Customer(
        customer_id="cus_1",
        status="active",
        created_at=NOW,
        updated_at=NOW,
        profile={"country": AttributeValue(value="fr", source="shop", observed_at=NOW)},
        consents=[
            consent("email", "marketing", "granted"),
            consent("sms", "marketing", "denied"),
            consent("webhook", "marketing", "granted"),
            consent("email", "profiling", "denied"),
        ],
        traits={"churn_risk": 0.2},
        segments=["vip"],
    )
    context = CustomerContext.from_customer(customer)
    assert context.marketing_channels == frozenset({"email"})
    assert context.country == "FR"
    assert not context.profiling_allowed
    assert context.segments == frozenset({"vip"})
    assert context.traits == {"churn_risk": 0.2}


@pytest.mark.parametrize("event", [OfferCreated, OfferPresented, OfferAccepted, OfferExhausted])
def test_offer_events_are_registered_under_the_personalization_source(event: type[DomainEvent]) -> None:
    assert registered_events()[("ecrm.personalization", event.detail_type)] is event


def test_an_offer_presented_event_serialises_into_the_envelope() -> None:
    event = OfferPresented(
        offer_id="off_a",
        customer_id="cus_1",
        channel="email",
        propensity=0.22,
        expected_value=2.2,
        decided_at=NOW,
        presented_at=NOW,
    )
    detail = envelope_for(event)
    assert detail["data"]["offer_id"] == "off_a"
    assert detail["data"]["presented_at"] == "2026-03-02T12:00:00Z"


def test_naive_now_and_negative_windows_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        eligible_offers(CATALOGUE, CUSTOMER, now=NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="negative"):
        next_best_offer(CATALOGUE, CUSTOMER, now=NOW, channel="email", decision_window=timedelta(hours=-1))


def test_a_zero_window_decides_afresh_every_time() -> None:
    first = next_best_offer(CATALOGUE, CUSTOMER, now=NOW, channel="email", decision_window=timedelta(0))
    again = next_best_offer(CATALOGUE, CUSTOMER, now=NOW, channel="email", previous=first.decision)
    assert again.decided_now
