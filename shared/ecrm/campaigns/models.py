"""The campaigns-and-journeys engine's contract: campaigns, journeys, their reports and their events.

A campaign sends one message per recipient and arm: its variants share the audience with a control
holdout that receives nothing, by percentages that add up to 100, and each recipient's arm is a hash
of the campaign and the customer (`ecrm.campaigns.assignment`), so a re-run or a resumed run puts
everyone where they were. A message goes to broadcast keyed `(campaign:<id>, customer, <variant>)`
(ADR 12): broadcast's key is what makes a re-run send nobody twice.

A journey is a list of steps, the first one entered when its trigger event arrives; the pure
interpreter (`ecrm.campaigns.journeys`) says what each step does next.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator

from ecrm.broadcast.models import TEST_ADDRESS_PATTERN
from ecrm.core.contract import Contract
from ecrm.core.erasure import CustomerDataErased
from ecrm.core.events import DomainEvent
from ecrm.core.vocabulary import DeliveryChannel

SOURCE = "ecrm.campaigns"

CAMPAIGN_ID_PATTERN = r"^cmp_[0-9A-Za-z]{1,40}$"
JOURNEY_ID_PATTERN = r"^jny_[0-9A-Za-z]{1,40}$"
CUSTOMER_ID_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"
HOLDOUT = "holdout"
# An uploaded list's longest (a request of about 2.5 MB), and the longest kept in the campaign's own item.
MAX_LIST = 100_000
INLINE_LIST_LIMIT = 1_000

ArmKey = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_\-]{1,20}$")]
StepId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_\-]{1,40}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
CustomerId = Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)]
EventName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z]{1,63}$")]
Content = dict[DeliveryChannel, dict[str, Any]]
Purpose = Literal["marketing", "transactional"]
Metric = Literal["opens", "clicks", "conversions"]
CampaignStatus = Literal["draft", "scheduled", "running", "paused", "completed", "cancelled"]
JourneyStatus = Literal["draft", "active", "inactive"]


class Strict(Contract):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# -- campaigns ------------------------------------------------------------------------------------------------
class Variant(Strict):
    key: ArmKey = Field(description="Names the arm; the broadcast message's step")
    share: float = Field(gt=0, le=100, description="Percent of the whole audience")
    content: Content = Field(min_length=1, description="Per channel, its parts as broadcast templates")


class StoredList(Contract):
    """An uploaded list too long for the campaign's item (`INLINE_LIST_LIMIT` ids): the engine keeps it as an
    object in its bucket and the campaign says where, and how many ids it holds."""

    key: str
    count: int


class Audience(Strict):
    """Who: segments (members of any), minus excluded segments, or an uploaded list of customer ids.

    A list of more than `INLINE_LIST_LIMIT` ids is kept as an object (`stored_list`) and the campaign's
    `customer_ids` come back empty: a DynamoDB item holds 400 KB, about 12,000 ids, and a list of 100,000 is
    2 MB. `stored_list` is the engine's to set: a request that sends one is refused."""

    segment_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(default_factory=list)
    exclude_segment_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list
    )
    customer_ids: list[CustomerId] = Field(default_factory=list, max_length=MAX_LIST)
    stored_list: StoredList | None = Field(
        default=None, description="Set by the engine (never in a request): where a long uploaded list is kept"
    )
    erased: int = Field(
        default=0,
        ge=0,
        description="Set by the engine (never in a request): how many ids erasure requests took out of the list",
    )

    @model_validator(mode="after")
    def _someone(self) -> Audience:
        # a list whose every id was erased stays a (now empty) list: the campaign's history still reads
        if not self.segment_ids and not self.customer_ids and self.stored_list is None and not self.erased:
            raise ValueError("an audience needs segment_ids or customer_ids")
        return self


class ChannelStrategy(Strict):
    """`single`: that channel or nothing; `preferred`: the customer's preferred reachable channel among the
    variants' content (broadcast's policy chooses, in order)."""

    mode: Literal["single", "preferred"] = "preferred"
    channel: DeliveryChannel | None = None

    @model_validator(mode="after")
    def _single_names_channel(self) -> ChannelStrategy:
        if (self.mode == "single") != (self.channel is not None):
            raise ValueError("a single-channel strategy names its channel, a preferred one does not")
        return self


class Schedule(Strict):
    """`now`; `at` an instant; `cron` recurring (EventBridge Scheduler syntax, UTC unless `timezone`);
    `local_time`: on `at`'s date at `local_time` in each recipient's own zone (the customer store's; UTC when
    it holds none): the run starts when the first zone on Earth gets there and waits for each zone."""

    kind: Literal["now", "at", "cron", "local_time"] = "now"
    at: datetime | None = None
    cron: Annotated[str, StringConstraints(pattern=r"^cron\([0-9A-Za-z*?/,\-#L ]{9,120}\)$")] | None = None
    local_time: time | None = None
    timezone: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_]+(/[A-Za-z0-9_+\-]+){0,2}$")] = "UTC"

    @model_validator(mode="after")
    def _complete(self) -> Schedule:
        needs = {"now": (), "at": ("at",), "cron": ("cron",), "local_time": ("at", "local_time")}[self.kind]
        missing = [name for name in needs if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.kind} schedule needs {', '.join(missing)}")
        if self.at is not None and self.at.tzinfo is None:
            raise ValueError("at needs a time zone offset")
        return self


class AutoWinner(Strict):
    """Send the variants to `test_share` percent of the treated audience, wait `test_hours`, then send the
    rest the variant with the best `metric` rate."""

    metric: Metric
    test_share: float = Field(gt=0, lt=100)
    test_hours: int = Field(ge=1, le=24 * 14)


class CampaignIn(Strict):
    name: Name
    purpose: Purpose = "marketing"
    topic: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_\-]{1,40}$")] | None = None
    audience: Audience
    variants: list[Variant] = Field(min_length=1, max_length=10)
    holdout_share: float = Field(default=0, ge=0, lt=100, description="Percent of the audience that receives nothing")
    channel_strategy: ChannelStrategy = Field(default_factory=ChannelStrategy)
    schedule: Schedule = Field(default_factory=Schedule)
    throttle_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    auto_winner: AutoWinner | None = None
    tracking: bool = True

    @model_validator(mode="after")
    def _arms_add_up(self) -> CampaignIn:
        keys = [v.key for v in self.variants]
        if len(set(keys)) != len(keys) or HOLDOUT in keys:
            raise ValueError(f"variant keys must be unique and not {HOLDOUT!r}")
        total = sum(v.share for v in self.variants) + self.holdout_share
        if abs(total - 100) > 1e-6:
            raise ValueError(f"variant shares and the holdout add up to {total:g}, not 100")
        if self.auto_winner is not None and len(self.variants) < 2:
            raise ValueError("an auto-winner needs at least two variants")
        if self.auto_winner is not None and self.schedule.kind == "local_time":
            raise ValueError(
                "an auto-winner sends the rest at one time: it does not combine with a local_time schedule"
            )
        forced = self.channel_strategy.channel
        if forced is not None and any(forced not in v.content for v in self.variants):
            raise ValueError(f"every variant needs content for the channel {forced}")
        return self


class Campaign(CampaignIn):
    campaign_id: str
    status: CampaignStatus
    created_at: datetime
    updated_at: datetime
    created_by: str
    launched_at: datetime | None = None
    completed_at: datetime | None = None
    run: int = Field(default=0, description="How many runs were started (a recurring campaign runs again)")
    attempt: int = Field(default=0, description="The run's attempt: a resume starts the next one")
    winner: str | None = None
    version: int = 0


class CampaignList(Contract):
    items: list[Campaign]
    next: str | None = None


class ArmCount(Contract):
    arm: str
    recipients: int


class ArmPolicy(Contract):
    """What broadcast's delivery policy would decide now for an arm's sampled recipients."""

    arm: str
    sampled: int
    send: int = 0
    defer: int = 0
    suppress: int = 0
    reasons: dict[str, int] = Field(
        default_factory=dict, description="The most frequent reasons to defer or suppress, with their counts"
    )


class DryRun(Contract):
    campaign_id: str
    audience: int
    arms: list[ArmCount]
    policy: list[ArmPolicy] | None = Field(
        default=None, description="Per arm, broadcast's decision for a sample of its recipients (none: not asked)"
    )
    test_phase: int | None = Field(
        default=None, description="An auto-winner's test phase: recipients sent their variant before the pick"
    )
    minutes_to_hand_over: int = Field(
        default=0, description="How long the throttle makes handing the messages to broadcast (0: at once)"
    )
    note: str = Field(description="What the count can and cannot tell before sending")


class TestSendIn(Strict):
    """Staff addresses a campaign's variants are sent to as tests: emails get the email content, E.164 numbers
    the SMS content."""

    __test__ = False

    addresses: list[Annotated[str, StringConstraints(strip_whitespace=True, pattern=TEST_ADDRESS_PATTERN)]] = Field(
        min_length=1, max_length=20
    )

    @field_validator("addresses")
    @classmethod
    def _distinct(cls, addresses: list[str]) -> list[str]:
        if len({a.lower() for a in addresses}) != len(addresses):
            raise ValueError("each address once")
        return addresses


class TestSendItem(Contract):
    __test__ = False

    variant: str
    channel: str
    address: str
    status: Literal["sent", "already_sent", "failed", "no_content"]
    reason: str | None = None


class TestSendResult(Contract):
    __test__ = False

    campaign_id: str
    items: list[TestSendItem]
    note: str


# -- reports --------------------------------------------------------------------------------------------------
class ArmReport(Contract):
    arm: str
    targeted: int
    requested: int
    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    opened: int = 0
    clicked: int = 0
    converted: int = 0
    suppressed: int = 0
    deferred: int = 0
    failed: int = 0
    revenue_minor: int = 0
    rates: dict[str, float] = Field(default_factory=dict)


class Lift(Contract):
    """A treated arm's conversion rate against the holdout's: difference, interval, two-sided p-value."""

    arm: str
    metric: str
    treated_rate: float
    control_rate: float
    difference: float
    low: float
    high: float
    confidence: float
    p_value: float
    significant: bool


class CampaignReport(Contract):
    campaign_id: str
    status: CampaignStatus
    arms: list[ArmReport]
    lift: list[Lift]
    winner: str | None = None


# -- journeys -------------------------------------------------------------------------------------------------
Scalar = str | int | float | bool
FieldName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
EventMatch = Annotated[
    dict[FieldName, Scalar | list[Scalar]],
    Field(
        max_length=10,
        description="Fields of the event's data and the value each must have (a list: any of them)",
    ),
]


class SendStep(Strict):
    type: Literal["send"] = "send"
    id: StepId
    content: Content = Field(min_length=1)
    channel: DeliveryChannel | None = None
    recommendations: int | None = Field(
        default=None,
        ge=1,
        le=20,
        description="How many of personalization's recommendations the templates read as `data.recommendations`",
    )
    next: StepId | None = None


class WaitStep(Strict):
    """Wait a duration, until a local time of day, until a time the trigger event named (`until_trigger_time`,
    less `before_seconds`), or until an event (`on_timeout` when it does not come). An awaited event may have
    to match data (`until_match`) and carry the trigger's own values (`same_as_trigger`: the same order)."""

    type: Literal["wait"] = "wait"
    id: StepId
    seconds: int | None = Field(default=None, ge=1, le=366 * 86400)
    until_local_time: time | None = None
    until_trigger_time: FieldName | None = Field(
        default=None, description="A date or date-time field of the trigger event's data (points' expires_on)"
    )
    before_seconds: int = Field(default=0, ge=0, le=366 * 86400, description="With until_trigger_time: that early")
    until_event: EventName | None = None
    until_match: EventMatch = Field(default_factory=dict)
    same_as_trigger: list[FieldName] = Field(
        default_factory=list, max_length=5, description="Fields the awaited event shares with the trigger (order_id)"
    )
    timeout_seconds: int | None = Field(default=None, ge=1, le=366 * 86400)
    next: StepId | None = None
    on_timeout: StepId | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> WaitStep:
        options = (self.seconds, self.until_local_time, self.until_trigger_time, self.until_event)
        if len([k for k in options if k is not None]) != 1:
            raise ValueError("a wait has exactly one of seconds, until_local_time, until_trigger_time, until_event")
        if self.until_event is not None and self.timeout_seconds is None:
            raise ValueError("a wait for an event needs timeout_seconds")
        if (self.until_match or self.same_as_trigger) and self.until_event is None:
            raise ValueError("until_match and same_as_trigger narrow until_event, which is missing")
        if self.before_seconds and self.until_trigger_time is None:
            raise ValueError("before_seconds goes with until_trigger_time")
        return self


class Condition(Strict):
    """`profile`: `attribute` `op` `value`; `segment`: a member of `segment_id`; `engagement`: `event` seen since
    the customer entered (MessageOpened, MessageClicked, OrderPlaced...)."""

    kind: Literal["profile", "segment", "engagement"]
    attribute: str | None = None
    op: Literal["eq", "ne", "gt", "gte", "lt", "lte", "exists"] = "eq"
    value: Any = None
    segment_id: str | None = None
    event: EventName | None = None

    @model_validator(mode="after")
    def _complete(self) -> Condition:
        needs = {"profile": "attribute", "segment": "segment_id", "engagement": "event"}[self.kind]
        if getattr(self, needs) is None:
            raise ValueError(f"a {self.kind} condition needs {needs}")
        return self


class BranchStep(Strict):
    type: Literal["branch"] = "branch"
    id: StepId
    condition: Condition
    then: StepId | None
    otherwise: StepId | None


class SplitPath(Strict):
    share: float = Field(gt=0, le=100)
    next: StepId | None


class SplitStep(Strict):
    type: Literal["split"] = "split"
    id: StepId
    paths: list[SplitPath] = Field(min_length=2, max_length=10)

    @model_validator(mode="after")
    def _adds_up(self) -> SplitStep:
        if abs(sum(p.share for p in self.paths) - 100) > 1e-6:
            raise ValueError("split shares add up to 100")
        return self


class ExitStep(Strict):
    type: Literal["exit"] = "exit"
    id: StepId


Step = Annotated[SendStep | WaitStep | BranchStep | SplitStep | ExitStep, Field(discriminator="type")]


class Trigger(Strict):
    event: EventName = Field(description="The detail-type that enters a customer (CustomerCreated, OrderPlaced...)")
    source: Annotated[str, StringConstraints(pattern=r"^ecrm\.[a-z_]{1,40}$")] | None = None
    match: EventMatch = Field(default_factory=dict)


class JourneyIn(Strict):
    name: Name
    purpose: Purpose = "marketing"
    trigger: Trigger
    steps: list[Step] = Field(min_length=1, max_length=100)
    goal_event: EventName | None = Field(default=None, description="Reaching it exits the customer as converted")
    exit_events: list[EventName] = Field(default_factory=list)
    reentry: Literal["never", "after_exit", "always"] = "after_exit"
    reentry_after_seconds: int = Field(default=0, ge=0)
    reentry_key: FieldName | None = Field(
        default=None,
        description=(
            "A field of the trigger event's data: the customer passes through the journey once per value at a time "
            "(points' expires_on: each expiry its own reminder), the re-entry rules applying per value"
        ),
    )
    max_concurrent_journeys: int = Field(default=3, ge=1, le=100, description="Per customer, across journeys")

    @model_validator(mode="after")
    def _steps_connect(self) -> JourneyIn:
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError("step ids must be unique")
        known = set(ids)
        for step in self.steps:
            for target in step_targets(step):
                if target is not None and target not in known:
                    raise ValueError(f"step {step.id} goes to an unknown step {target}")
        return self


def step_targets(step: SendStep | WaitStep | BranchStep | SplitStep | ExitStep) -> list[str | None]:
    if isinstance(step, SendStep):
        return [step.next]
    if isinstance(step, WaitStep):
        return [step.next, step.on_timeout]
    if isinstance(step, BranchStep):
        return [step.then, step.otherwise]
    if isinstance(step, SplitStep):
        return [p.next for p in step.paths]
    return []


class Journey(JourneyIn):
    journey_id: str
    status: JourneyStatus
    created_at: datetime
    updated_at: datetime
    created_by: str
    version: int = 0


class JourneyList(Contract):
    items: list[Journey]
    next: str | None = None


class JourneyReport(Contract):
    journey_id: str
    entered: int
    active: int
    exited: dict[str, int] = Field(description="Per exit reason: completed, goal, exit_event")
    steps: dict[str, int] = Field(description="Per step id, how many customers reached it")


# -- the journey library (`ecrm.campaigns.journey_library`) ---------------------------------------------------
class LibraryParameter(Contract):
    name: str
    description: str
    type: Literal["integer", "number", "string"]
    default: Scalar | None = Field(description="None: the parameter is required")


class LibraryJourney(Contract):
    """A ready-made journey: its definition as the library's defaults build it, and what it stands on."""

    name: str
    title: str
    description: str
    trigger_ready: bool = Field(description="False: the event it should start on is not on the bus yet")
    trigger_note: str = Field(description="Where the trigger event comes from, or what is missing")
    parameters: list[LibraryParameter]
    journey: JourneyIn = Field(description="Built with the parameters' defaults (a required one: its example)")


class JourneyLibrary(Contract):
    items: list[LibraryJourney]


class JourneyOverrides(Strict):
    """Fields of the ready-made journey replaced as a whole; a field sent as null clears it (`goal_event`)."""

    name: Name | None = None
    purpose: Purpose | None = None
    trigger: Trigger | None = None
    steps: list[Step] | None = Field(default=None, min_length=1, max_length=100)
    goal_event: EventName | None = None
    exit_events: list[EventName] | None = None
    reentry: Literal["never", "after_exit", "always"] | None = None
    reentry_after_seconds: int | None = Field(default=None, ge=0)
    reentry_key: FieldName | None = None
    max_concurrent_journeys: int | None = Field(default=None, ge=1, le=100)


class LibraryDraftIn(Strict):
    """`POST /journeys/library/{name}`: the entry's parameters, new content for some of its send steps, and
    whole fields replaced; the result is validated as any journey is."""

    parameters: dict[FieldName, Scalar] = Field(default_factory=dict, description="By the entry's parameter names")
    content: dict[StepId, Content] = Field(
        default_factory=dict, description="Per send step id, its content instead of the library's"
    )
    overrides: JourneyOverrides = Field(default_factory=JourneyOverrides)


# -- events ---------------------------------------------------------------------------------------------------
class CampaignLaunched(DomainEvent):
    source = SOURCE
    detail_type = "CampaignLaunched"

    campaign_id: str
    run: int
    arms: dict[str, float] = Field(description="Arm -> percent of the audience (the holdout included)")
    launched_at: datetime


class CampaignStatusChanged(DomainEvent):
    source = SOURCE
    detail_type = "CampaignStatusChanged"

    campaign_id: str
    status: CampaignStatus
    previous: CampaignStatus
    occurred_at: datetime


class CampaignCompleted(DomainEvent):
    source = SOURCE
    detail_type = "CampaignCompleted"

    campaign_id: str
    run: int
    targeted: dict[str, int] = Field(description="Per arm, the recipients (the holdout included)")
    completed_at: datetime


class JourneyEntered(DomainEvent):
    source = SOURCE
    detail_type = "JourneyEntered"

    journey_id: str
    customer_id: str
    entry: int
    occurred_at: datetime


class JourneyExited(DomainEvent):
    source = SOURCE
    detail_type = "JourneyExited"

    journey_id: str
    customer_id: str
    entry: int
    reason: Literal["completed", "goal", "exit_event", "deactivated"]
    occurred_at: datetime


class CampaignsDataErased(CustomerDataErased):
    """The campaigns engine's acknowledgement of an erasure request, from this engine's source."""

    source: ClassVar[str] = SOURCE
    detail_type: ClassVar[str] = "CustomerDataErased"
