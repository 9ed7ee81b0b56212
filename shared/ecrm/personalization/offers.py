"""Offers and next-best-offer: the offer catalogue's contract, who may get which offer, and which one first.

Owns the `POST /offers` body and the stored offer, the eligibility rules (status, validity window, channel,
consent, segments, trait conditions, per-customer cap, budget, exclusive group) with the reason each offer
was left out, the ranking by expected value, the arbitration that gives a customer one consistent best offer
across channels, and the offer events. Pure logic: the caller reads offers, counters and the remembered
decision, and stores what comes back.

Vocabulary: an offer is *presented* when a channel shows it and *accepted* when the customer takes it up
(redeems its code or claims it); budgets and caps count acceptances, propensity is accepted / presented.

Ranking rule, in this order: higher `priority` first (a business override: any priority beats any expected
value below it; the default 0 leaves the order to expected value), then higher expected value
(propensity x value, compared to 9 decimals), then higher propensity (equal value, the likelier one), then a
hash of (customer, offer) that spreads otherwise equal offers across customers deterministically (so a new
offer with the same prior as another is not starved of presentations), then the offer id.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast, get_args

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints, field_validator, model_validator

from ecrm.core.contract import Contract
from ecrm.core.events import DomainEvent
from ecrm.core.values import AttributeName, FiniteFloat, Scalar
from ecrm.core.vocabulary import MessageChannel

if TYPE_CHECKING:  # only a parameter's type: the offer API does not import the customer store's contract
    from ecrm.customers.models import Customer

SOURCE = "ecrm.personalization"

OfferChannel = Literal[MessageChannel, "web", "phone"]  # `web`: shown on the site, not sent
OFFER_CHANNELS: frozenset[str] = frozenset(get_args(OfferChannel))
# Shown on a page the customer is already looking at: nothing is sent, so no per-channel marketing consent is
# needed (profiling consent still governs targeting, like everywhere else).
CONSENT_FREE_CHANNELS: frozenset[str] = frozenset({"web"})

OfferStatus = Literal["active", "paused", "exhausted"]
ConditionOperator = Literal["==", "!=", ">", ">=", "<", "<=", "in", "not_in", "exists"]
ExclusionReason = Literal[
    "offer not active",
    "outside validity window",
    "channel not allowed",
    "no marketing consent",
    "no profiling consent",
    "not eligible: segment",
    "not eligible: trait",
    "cap reached",
    "budget exhausted",
    "exclusive group",
]

PRIOR_STRENGTH = 20.0  # pseudo-presentations behind an offer's propensity prior (and behind a bucket's)
DECISION_WINDOW = timedelta(hours=24)

Token = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-:.]{1,128}$")]
STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)


_COMPARE = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same_kind(a: Any, b: Any) -> bool:
    """`True == 1` in Python; a condition on a flag must not match a count."""
    return (_is_number(a) and _is_number(b)) or (type(a) is type(b))


# -- the catalogue ----------------------------------------------------------------------------------
class TraitCondition(Contract):
    """One test on the customer, e.g. `churn_risk >= 0.6` or `rfm_segment in [champions, loyal]`.

    `country` reads the customer's country; every other name reads the traits the analysis engine computed.
    A missing trait fails every test except `not_in` and `!=` (nothing known to exclude the customer).
    """

    model_config = STRICT

    trait: AttributeName
    op: ConditionOperator
    value: Scalar | list[Scalar] = None

    @model_validator(mode="after")
    def _value_fits_operator(self) -> TraitCondition:
        where = f"{self.trait} {self.op}"
        if self.op == "exists":
            if self.value is not None:
                raise ValueError(f"{where}: takes no value")
        elif self.op in ("in", "not_in"):
            if not isinstance(self.value, list) or not self.value or len(self.value) > 100:
                raise ValueError(f"{where}: needs a list of 1 to 100 values, got {self.value!r}")
        elif self.op in (">", ">=", "<", "<="):
            if not _is_number(self.value):
                raise ValueError(f"{where}: needs a number, got {self.value!r}")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"{where}: needs one value, got {self.value!r}")
        if self.trait == "country":
            values = self.value if isinstance(self.value, list) else [self.value]
            if any(not isinstance(v, str) for v in values if v is not None):
                raise ValueError(f"{where}: countries are ISO 3166-1 alpha-2 codes")
            upper = [v.upper() if isinstance(v, str) else v for v in values]
            self.value = upper if isinstance(self.value, list) else upper[0]
        return self

    def holds(self, actual: Any) -> bool:
        if self.op == "exists":
            return actual is not None
        if actual is None:
            return self.op in ("!=", "not_in")
        if self.op in ("in", "not_in"):
            assert isinstance(self.value, list)
            found = any(_same_kind(actual, v) and actual == v for v in self.value)
            return found if self.op == "in" else not found
        if self.op in ("==", "!="):
            equal = _same_kind(actual, self.value) and actual == self.value
            return equal if self.op == "==" else not equal
        return _is_number(actual) and _COMPARE[self.op](actual, cast(float, self.value))

    def __str__(self) -> str:
        return f"{self.trait} {self.op} {self.value!r}" if self.op != "exists" else f"{self.trait} exists"


class SegmentEligibility(Contract):
    """Segments from the segmentation engine: in at least one of `any_of` (if given) and in none of `none_of`."""

    model_config = STRICT

    any_of: list[Token] = Field(default_factory=list, max_length=50)
    none_of: list[Token] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _not_both(self) -> SegmentEligibility:
        both = sorted(set(self.any_of) & set(self.none_of))
        if both:
            raise ValueError(f"segments {both} are in both any_of and none_of")
        return self


class OfferEligibility(Contract):
    model_config = STRICT

    segments: SegmentEligibility = Field(default_factory=SegmentEligibility)
    conditions: list[TraitCondition] = Field(default_factory=list, max_length=20, description="All must hold")

    @property
    def uses_profiling(self) -> bool:
        """Targeting by segment or computed trait is profiling; targeting by country alone is not."""
        segments = self.segments.any_of or self.segments.none_of
        return bool(segments) or any(c.trait != "country" for c in self.conditions)


class PerCustomerCap(Contract):
    """How often one customer may see or take the offer, over all channels."""

    model_config = STRICT

    max_presentations: int | None = Field(default=None, ge=1)
    max_acceptances: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _some_limit(self) -> PerCustomerCap:
        if self.max_presentations is None and self.max_acceptances is None:
            raise ValueError("a cap needs max_presentations or max_acceptances")
        return self


class OfferBudget(Contract):
    """What the offer may cost in total; it stops being offered before an acceptance would overrun it."""

    model_config = STRICT

    max_acceptances: int | None = Field(default=None, ge=1)
    max_total_cost: FiniteFloat | None = Field(default=None, gt=0)
    unit_cost: FiniteFloat | None = Field(default=None, ge=0, description="The cost of one acceptance")

    @model_validator(mode="after")
    def _some_limit(self) -> OfferBudget:
        if self.max_acceptances is None and self.max_total_cost is None:
            raise ValueError("a budget needs max_acceptances or max_total_cost")
        if self.max_total_cost is not None and self.unit_cost is None:
            raise ValueError("max_total_cost needs unit_cost, the cost of one acceptance")
        return self


class OfferIn(Contract):
    """`POST /offers`: an offer, who may get it, when, where, how often, and what it is worth."""

    model_config = STRICT

    name: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    code: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,64}$")] | None = Field(
        default=None, description="One code for everyone"
    )
    code_pool: Token | None = Field(default=None, description="A pool of single-use codes: one per acceptance")
    channels: list[OfferChannel] = Field(min_length=1, max_length=6)
    eligibility: OfferEligibility = Field(default_factory=OfferEligibility)
    valid_from: AwareDatetime
    valid_until: AwareDatetime | None = Field(default=None, description="Exclusive; open-ended if absent")
    cap: PerCustomerCap | None = None
    budget: OfferBudget | None = None
    priority: int = Field(default=0, ge=0, le=100, description="Business override: higher always ranks first")
    value: FiniteFloat = Field(ge=0, description="Net value to the business of one acceptance (after its cost)")
    propensity_prior: float = Field(default=0.05, gt=0, lt=1, description="Expected acceptance rate before data")
    category: Token | None = None
    exclusive_group: Token | None = Field(
        default=None, description="Offers in a group are mutually exclusive: a customer gets at most one"
    )

    @field_validator("channels")
    @classmethod
    def _no_repeats(cls, channels: list[str]) -> list[str]:
        if len(set(channels)) != len(channels):
            raise ValueError("a channel appears twice")
        return channels

    @model_validator(mode="after")
    def _consistent(self) -> OfferIn:
        if self.code is not None and self.code_pool is not None:
            raise ValueError("give code or code_pool, not both")
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self


class OutcomeCounts(Contract):
    """Presentations and acceptances: of an offer overall, in a trait bucket, or for one customer."""

    presented: int = Field(default=0, ge=0)
    accepted: int = Field(default=0, ge=0)


class OfferCounters(OutcomeCounts):
    cost_spent: FiniteFloat = Field(default=0.0, ge=0)


class Offer(OfferIn):
    """A stored offer. `exhausted` is set once its budget ran out (see `budget_exhausted`)."""

    offer_id: str
    status: OfferStatus = "active"
    counters: OfferCounters = Field(default_factory=OfferCounters)
    created_at: datetime
    updated_at: datetime


class OfferOutcomes(OutcomeCounts):
    """An offer's outcomes, also per trait bucket (keys from `trait_buckets`) when the data exist."""

    by_bucket: dict[str, OutcomeCounts] = Field(default_factory=dict)


# -- the customer as the offer engine sees them ----------------------------------------------------------
class CustomerContext(Contract):
    model_config = ConfigDict(frozen=True)

    customer_id: str
    segments: frozenset[str] = frozenset()
    traits: dict[str, Any] = Field(default_factory=dict)
    country: str | None = None
    marketing_channels: frozenset[OfferChannel] = Field(
        default=frozenset(), description="Channels with a granted marketing consent"
    )
    profiling_allowed: bool = Field(default=True, description="False once the customer objected to profiling")

    @classmethod
    def from_customer(cls, customer: Customer) -> CustomerContext:
        """Marketing consent per channel as granted; profiling allowed unless denied on any channel."""
        country = customer.profile.get("country")
        return cls(
            customer_id=customer.customer_id,
            segments=frozenset(customer.segments),
            traits=dict(customer.traits),
            country=str(country.value).upper() if country is not None and country.value is not None else None,
            marketing_channels=frozenset(
                c.channel
                for c in customer.consents
                if c.purpose == "marketing" and c.state == "granted" and c.channel in OFFER_CHANNELS
            ),
            profiling_allowed=not any(c.purpose == "profiling" and c.state == "denied" for c in customer.consents),
        )

    def attribute(self, name: str) -> Any:
        return self.country if name == "country" else self.traits.get(name)

    def reachable_on(self, channel: str) -> bool:
        return channel in CONSENT_FREE_CHANNELS or channel in self.marketing_channels


def trait_buckets(customer: CustomerContext) -> list[str]:
    """The kinds of customer outcomes are counted under; whoever counts outcomes must use this same function.

    Short text and flags as they are (`rfm_segment=champions`), scores in [0, 1] in thirds
    (`churn_risk=high`), the country; other numbers are not bucketed (too many values to learn from).
    """
    keys = []
    for name, value in sorted(customer.traits.items()):
        if isinstance(value, bool):
            keys.append(f"{name}={str(value).lower()}")
        elif isinstance(value, str) and 0 < len(value) <= 64:
            keys.append(f"{name}={value}")
        elif _is_number(value) and 0 <= value <= 1:
            keys.append(f"{name}={'low' if value < 1 / 3 else 'medium' if value < 2 / 3 else 'high'}")
    if customer.country:
        keys.append(f"country={customer.country}")
    return keys


# -- eligibility --------------------------------------------------------------------------------------
class Exclusion(Contract):
    offer_id: str
    reason: ExclusionReason
    detail: str = ""


class Eligibility(Contract):
    eligible: list[Offer]
    excluded: list[Exclusion]


def budget_exhausted(offer: Offer, counters: OfferCounters | None = None) -> str | None:
    """Why the offer cannot afford one more acceptance, or None; also tells the caller when to mark it exhausted."""
    budget, spent = offer.budget, counters or offer.counters
    if budget is None:
        return None
    if budget.max_acceptances is not None and spent.accepted >= budget.max_acceptances:
        return f"{spent.accepted} of {budget.max_acceptances} acceptances used"
    if budget.max_total_cost is not None and spent.cost_spent + (budget.unit_cost or 0) > budget.max_total_cost + 1e-9:
        return f"spent {spent.cost_spent:g} of {budget.max_total_cost:g}; one more costs {budget.unit_cost:g}"
    return None


def _exclusion(
    offer: Offer,
    customer: CustomerContext,
    now: datetime,
    channel: OfferChannel | None,
    usage: Mapping[str, OutcomeCounts],
    budget_usage: Mapping[str, OfferCounters],
    accepted_groups: Mapping[str, str],
) -> Exclusion | None:
    def excluded(reason: ExclusionReason, detail: str = "") -> Exclusion:
        return Exclusion(offer_id=offer.offer_id, reason=reason, detail=detail)

    if offer.status == "exhausted":
        return excluded("budget exhausted", "offer marked exhausted")
    if offer.status != "active":
        return excluded("offer not active", offer.status)
    if now < offer.valid_from or (offer.valid_until is not None and now >= offer.valid_until):
        until = offer.valid_until.isoformat() if offer.valid_until else "open-ended"
        return excluded("outside validity window", f"valid {offer.valid_from.isoformat()} to {until}")
    if channel is not None and channel not in offer.channels:
        return excluded("channel not allowed", f"{channel} not in {offer.channels}")
    reachable = [c for c in ([channel] if channel else offer.channels) if customer.reachable_on(c)]
    if not reachable:
        return excluded("no marketing consent", f"none on {channel or ', '.join(offer.channels)}")
    rules = offer.eligibility
    if rules.uses_profiling and not customer.profiling_allowed:
        return excluded("no profiling consent", "targeted by segment or trait")
    if rules.segments.any_of and not customer.segments.intersection(rules.segments.any_of):
        return excluded("not eligible: segment", f"in none of {rules.segments.any_of}")
    if customer.segments.intersection(rules.segments.none_of):
        return excluded("not eligible: segment", f"in {sorted(customer.segments & set(rules.segments.none_of))}")
    for condition in rules.conditions:
        if not condition.holds(customer.attribute(condition.trait)):
            return excluded("not eligible: trait", f"{condition} fails for {customer.attribute(condition.trait)!r}")
    used = usage.get(offer.offer_id, OutcomeCounts())
    if offer.cap is not None:
        if offer.cap.max_presentations is not None and used.presented >= offer.cap.max_presentations:
            return excluded("cap reached", f"presented {used.presented} of {offer.cap.max_presentations} times")
        if offer.cap.max_acceptances is not None and used.accepted >= offer.cap.max_acceptances:
            return excluded("cap reached", f"accepted {used.accepted} of {offer.cap.max_acceptances} times")
    spent = budget_exhausted(offer, budget_usage.get(offer.offer_id))
    if spent is not None:
        return excluded("budget exhausted", spent)
    taken = accepted_groups.get(offer.exclusive_group or "")
    if taken is not None and taken != offer.offer_id:
        return excluded("exclusive group", f"already accepted {taken} of group {offer.exclusive_group}")
    return None


def eligible_offers(
    offers: Sequence[Offer],
    customer: CustomerContext,
    *,
    now: datetime,
    channel: OfferChannel | None = None,
    usage: Mapping[str, OutcomeCounts] | None = None,
    budget_usage: Mapping[str, OfferCounters] | None = None,
) -> Eligibility:
    """Which offers this customer may get now, on `channel` or (None) on any channel they can be reached on.

    `usage` is this customer's counts per offer id; `budget_usage` overrides the offers' own counters when the
    caller has fresher ones. Each excluded offer carries the first rule it failed, checked in the order of
    `_exclusion`: status, window, channel, consent, profiling, segment, trait, cap, budget, exclusive group.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware, like the validity windows it is compared with")
    usage, budget_usage = usage or {}, budget_usage or {}
    accepted_groups: dict[str, str] = {}
    for offer in sorted(offers, key=lambda o: o.offer_id):
        if offer.exclusive_group and usage.get(offer.offer_id, OutcomeCounts()).accepted > 0:
            accepted_groups.setdefault(offer.exclusive_group, offer.offer_id)
    eligible, excluded = [], []
    for offer in offers:
        reason = _exclusion(offer, customer, now, channel, usage, budget_usage, accepted_groups)
        if reason is None:
            eligible.append(offer)
        else:
            excluded.append(reason)
    return Eligibility(eligible=eligible, excluded=excluded)


# -- ranking ----------------------------------------------------------------------------------------
class RankedOffer(Contract):
    offer_id: str
    name: str
    priority: int
    propensity: float
    value: float
    expected_value: float
    basis: str = Field(description="What the propensity comes from: prior, offer, or bucket:<trait>=<bucket>")


class Ranking(Contract):
    ranked: list[RankedOffer]
    excluded: list[Exclusion] = Field(default_factory=list)


def estimate_propensity(
    offer: Offer,
    customer: CustomerContext,
    outcomes: OfferOutcomes | None = None,
    prior_strength: float = PRIOR_STRENGTH,
) -> tuple[float, str]:
    """Posterior mean of a Beta prior worth `prior_strength` presentations at the offer's prior rate.

    With bucket data for this kind of customer, the offer's estimate becomes the prior of the bucket's (same
    strength), using the customer's bucket with the most presentations: one adjustment, not a product of
    several, so correlated traits do not compound. No bucket adjustment without profiling consent.
    """
    if prior_strength <= 0:
        raise ValueError("prior_strength must be positive")
    counts: OutcomeCounts = outcomes if outcomes is not None else offer.counters
    accepted = min(counts.accepted, counts.presented)
    propensity = (offer.propensity_prior * prior_strength + accepted) / (prior_strength + counts.presented)
    basis = "offer" if counts.presented else "prior"
    if outcomes is not None and outcomes.by_bucket and customer.profiling_allowed:
        known = [(key, outcomes.by_bucket[key]) for key in trait_buckets(customer) if key in outcomes.by_bucket]
        known = [(key, b) for key, b in known if b.presented > 0]
        if known:
            key, bucket = min(known, key=lambda kb: (-kb[1].presented, kb[0]))
            accepted = min(bucket.accepted, bucket.presented)
            propensity = (propensity * prior_strength + accepted) / (prior_strength + bucket.presented)
            basis = f"bucket:{key}"
    return propensity, basis


def score_offer(
    offer: Offer,
    customer: CustomerContext,
    outcomes: OfferOutcomes | None = None,
    prior_strength: float = PRIOR_STRENGTH,
) -> RankedOffer:
    propensity, basis = estimate_propensity(offer, customer, outcomes, prior_strength)
    return RankedOffer(
        offer_id=offer.offer_id,
        name=offer.name,
        priority=offer.priority,
        propensity=propensity,
        value=offer.value,
        expected_value=propensity * offer.value,
        basis=basis,
    )


def rank_key(ranked: RankedOffer, customer_id: str) -> tuple[int, float, float, str, str]:
    """The module's ranking rule as a sort key: smaller sorts first."""
    spread = hashlib.sha256(f"{customer_id}\x00{ranked.offer_id}".encode()).hexdigest()
    return (-ranked.priority, -round(ranked.expected_value, 9), -round(ranked.propensity, 9), spread, ranked.offer_id)


def rank_offers(
    offers: Sequence[Offer],
    customer: CustomerContext,
    *,
    outcomes: Mapping[str, OfferOutcomes] | None = None,
    prior_strength: float = PRIOR_STRENGTH,
) -> Ranking:
    """Order offers the customer is eligible for (the caller filters first) by the module's ranking rule.

    Only the best offer of each exclusive group stays; the others are returned as excluded. `outcomes` per
    offer id, when given, replace the offers' own counters as evidence and add per-bucket data.
    """
    outcomes = outcomes or {}
    scored = [(score_offer(o, customer, outcomes.get(o.offer_id), prior_strength), o) for o in offers]
    scored.sort(key=lambda so: rank_key(so[0], customer.customer_id))
    ranked: list[RankedOffer] = []
    excluded: list[Exclusion] = []
    winners: dict[str, str] = {}
    for score, offer in scored:
        group = offer.exclusive_group
        if group and group in winners:
            detail = f"{winners[group]} ranks higher in group {group}"
            excluded.append(Exclusion(offer_id=offer.offer_id, reason="exclusive group", detail=detail))
            continue
        if group:
            winners[group] = offer.offer_id
        ranked.append(score)
    return Ranking(ranked=ranked, excluded=excluded)


def customer_offers(
    offers: Sequence[Offer],
    customer: CustomerContext,
    *,
    now: datetime,
    channel: OfferChannel | None = None,
    usage: Mapping[str, OutcomeCounts] | None = None,
    budget_usage: Mapping[str, OfferCounters] | None = None,
    outcomes: Mapping[str, OfferOutcomes] | None = None,
    prior_strength: float = PRIOR_STRENGTH,
) -> Ranking:
    """`GET /me/offers`: the customer's eligible offers, best first, with why the others were left out."""
    eligibility = eligible_offers(offers, customer, now=now, channel=channel, usage=usage, budget_usage=budget_usage)
    ranking = rank_offers(eligibility.eligible, customer, outcomes=outcomes, prior_strength=prior_strength)
    return Ranking(ranked=ranking.ranked, excluded=eligibility.excluded + ranking.excluded)


# -- arbitration ----------------------------------------------------------------------------------------
class OfferDecision(Contract):
    """A customer's offers in the order decided at `decided_at`: what keeps every channel in agreement."""

    customer_id: str
    decided_at: datetime
    expires_at: datetime
    ranking: list[str] = Field(description="Offer ids, best first, over every channel the customer is reachable on")

    def applies(self, now: datetime) -> bool:
        return self.decided_at <= now < self.expires_at


class NextBestOffer(Contract):
    customer_id: str
    channel: OfferChannel
    offer: RankedOffer | None
    rank: int | None = Field(description="1-based position among the candidates walked (ranking, then newcomers)")
    decision: OfferDecision
    decided_now: bool = Field(description="True: a new decision for the caller to remember; False: the old one")
    excluded: list[Exclusion] = Field(description="Why other offers were not chosen for this channel")


def next_best_offer(
    offers: Sequence[Offer],
    customer: CustomerContext,
    *,
    now: datetime,
    channel: OfferChannel,
    previous: OfferDecision | None = None,
    usage: Mapping[str, OutcomeCounts] | None = None,
    budget_usage: Mapping[str, OfferCounters] | None = None,
    outcomes: Mapping[str, OfferOutcomes] | None = None,
    decision_window: timedelta = DECISION_WINDOW,
    prior_strength: float = PRIOR_STRENGTH,
) -> NextBestOffer:
    """`GET /customers/{id}/next-best-offer?channel=`: one consistent best offer across channels.

    The decision ranks the offers eligible on any channel the customer can be reached on, not only this one,
    and is remembered for `decision_window` (`previous`, stored by the caller). While it applies, every
    channel walks the same remembered order and shows the first offer eligible on it *now*: the best offer
    where it can be shown, else the next one (not allowed on this channel, or since capped, exhausted or
    expired). Only if none is, offers unknown to the decision follow, best first, except any sharing an
    exclusive group with a remembered offer (so two channels never show two offers of one group). New
    evidence changes nothing until the window ends; then the next request decides afresh.
    """
    if decision_window < timedelta(0):
        raise ValueError("decision_window cannot be negative (zero: decide afresh on every request)")
    if previous is not None and previous.customer_id != customer.customer_id:
        raise ValueError("the remembered decision belongs to another customer")
    kwargs: dict[str, Any] = {"now": now, "usage": usage, "budget_usage": budget_usage}
    overall = customer_offers(offers, customer, outcomes=outcomes, prior_strength=prior_strength, **kwargs)
    if previous is not None and previous.applies(now):
        decision, decided_now = previous, False
    else:
        ranking = [r.offer_id for r in overall.ranked]
        decision = OfferDecision(
            customer_id=customer.customer_id, decided_at=now, expires_at=now + decision_window, ranking=ranking
        )
        decided_now = True
    by_id = {o.offer_id: o for o in offers}
    remembered_groups = {by_id[i].exclusive_group for i in decision.ranking if i in by_id} - {None}
    on_channel = eligible_offers(offers, customer, channel=channel, **kwargs)
    eligible = {o.offer_id for o in on_channel.eligible}
    newcomers, group_taken = [], []
    for r in overall.ranked:
        group = by_id[r.offer_id].exclusive_group
        if r.offer_id in decision.ranking:
            continue
        if group in remembered_groups:
            detail = f"group {group} is held by an offer of the remembered decision"
            group_taken.append(Exclusion(offer_id=r.offer_id, reason="exclusive group", detail=detail))
        else:
            newcomers.append(r.offer_id)
    candidates = decision.ranking + newcomers
    position = next((i for i, offer_id in enumerate(candidates) if offer_id in eligible), None)
    chosen = None
    if position is not None:
        offer = by_id[candidates[position]]
        chosen = score_offer(offer, customer, (outcomes or {}).get(offer.offer_id), prior_strength)
    excluded = on_channel.excluded + [
        e
        for e in overall.excluded + group_taken
        if e.offer_id in eligible and (chosen is None or e.offer_id != chosen.offer_id)
    ]
    return NextBestOffer(
        customer_id=customer.customer_id,
        channel=channel,
        offer=chosen,
        rank=None if position is None else position + 1,
        decision=decision,
        decided_now=decided_now,
        excluded=excluded,
    )


# -- events ---------------------------------------------------------------------------------------------
class OfferCreated(DomainEvent):
    """A new offer is in the catalogue (active from `valid_from`)."""

    source = SOURCE
    detail_type = "OfferCreated"

    offer_id: str
    name: str
    channels: list[str]
    category: str | None
    exclusive_group: str | None
    priority: int
    value: float
    valid_from: datetime
    valid_until: datetime | None
    created_at: datetime


class OfferPresented(DomainEvent):
    """A channel showed an offer to a customer: counts toward the cap and the offer's propensity."""

    source = SOURCE
    detail_type = "OfferPresented"

    offer_id: str
    customer_id: str
    channel: str
    propensity: float
    expected_value: float
    decided_at: datetime = Field(description="When the arbitration decision it came from was made")
    presented_at: datetime


class OfferAccepted(DomainEvent):
    """The customer took an offer up (redeemed its code or claimed it): counts toward cap, budget and propensity."""

    source = SOURCE
    detail_type = "OfferAccepted"

    offer_id: str
    customer_id: str
    channel: str | None = Field(description="Where it had been presented, if known")
    code: str | None
    cost: float
    accepted_at: datetime


class OfferExhausted(DomainEvent):
    """An offer's budget cannot afford one more acceptance: it is no longer offered to anyone."""

    source = SOURCE
    detail_type = "OfferExhausted"

    offer_id: str
    reason: str
    accepted: int
    cost_spent: float
    exhausted_at: datetime
