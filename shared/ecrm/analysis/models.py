"""The analysis engine's contract: segments, audiences, OLAP requests, and its events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints, model_validator

from ecrm.analysis.rules import Rule
from ecrm.core.contract import Contract
from ecrm.core.erasure import CustomerDataErased
from ecrm.core.events import DomainEvent

SOURCE = "ecrm.analysis"
SegmentName = Annotated[str, StringConstraints(min_length=1, max_length=120, strip_whitespace=True)]
CustomerId = Annotated[str, StringConstraints(pattern=r"^cus_[A-Za-z0-9]{1,40}$")]


class SegmentIn(Contract):
    """A segment to save: dynamic (a rule, kept current) or static (a snapshot of a rule, or a list)."""

    model_config = ConfigDict(extra="forbid")

    name: SegmentName
    description: Annotated[str, StringConstraints(max_length=1000)] = ""
    kind: Literal["dynamic", "static"] = "dynamic"
    rule: Rule | None = None
    members: list[CustomerId] | None = Field(default=None, max_length=10_000, description="A static list")

    @model_validator(mode="after")
    def _rule_or_list(self) -> SegmentIn:
        if self.kind == "dynamic" and (self.rule is None or self.members is not None):
            raise ValueError("a dynamic segment has a rule and no member list")
        if self.kind == "static" and (self.rule is None) == (self.members is None):
            raise ValueError("a static segment has either a rule (snapshot) or a member list")
        return self


class Segment(Contract):
    segment_id: str
    name: str
    description: str = ""
    kind: Literal["dynamic", "static"]
    rule: dict[str, Any] | None = None
    rule_text: str | None = None
    time_relative: bool = False
    member_count: int = 0
    created_at: datetime
    created_by: str
    updated_at: datetime
    version: int = 1
    last_audience_id: str | None = None


class SegmentList(Contract):
    items: list[Segment]


class PreviewIn(Contract):
    model_config = ConfigDict(extra="forbid")

    rule: Rule
    sample: int = Field(default=10, ge=0, le=100)


class Preview(Contract):
    count: int
    sample: list[str]
    rule_text: str
    evaluated_at: datetime
    data_scanned_bytes: int | None = None


class AudienceBuild(Contract):
    audience_id: str
    segment_id: str
    segment_version: int
    purpose: Literal["audience", "membership"] = "audience"
    status: Literal["running", "completed", "failed"]
    evaluated_at: datetime
    shards: int
    count: int | None = None
    entered: int | None = None
    exited: int | None = None
    manifest: str | None = Field(default=None, description="s3:// location of the manifest (JSON listing CSV parts)")
    created_at: datetime
    completed_at: datetime | None = None
    failure: str | None = None


# -- OLAP ----------------------------------------------------------------------------------------------------------
Measure = Literal[
    "events",
    "customers",
    "orders",
    "revenue",
    "average_order_value",
    "conversion_rate",
    "messages_delivered",
    "open_rate",
    "click_rate",
]
Dimension = Literal[
    "event_type",
    "channel",
    "category",
    "source",
    "country",
    "city",
    "tier",
    "rfm_segment",
    "cluster",
    "segment",
    "day",
    "week",
    "month",
]


class OlapFilter(Contract):
    model_config = ConfigDict(extra="forbid")

    dimension: Dimension
    op: Literal["eq", "ne", "in", "not_in"] = "eq"
    value: str | list[str]


class TimeRange(Contract):
    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime = Field(alias="from")
    end: AwareDatetime = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if self.end <= self.start:
            raise ValueError("to must be after from")
        return self


class OlapRequest(Contract):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    measures: list[Measure] = Field(min_length=1, max_length=9)
    dimensions: list[Dimension] = Field(default_factory=list, max_length=4)
    filters: list[OlapFilter] = Field(default_factory=list, max_length=20)
    time_range: TimeRange | None = None
    order_by: Measure | Dimension | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class OlapResult(Contract):
    columns: list[str]
    rows: list[dict[str, Any]]
    data_scanned_bytes: int | None = None


# -- events ---------------------------------------------------------------------------------------------------------
class SegmentEntered(DomainEvent):
    """A customer now matches a segment (real time, or found by a membership build)."""

    source = SOURCE
    detail_type = "SegmentEntered"

    segment_id: str
    segment_name: str
    customer_id: str
    entered_at: datetime
    trigger: str = Field(description="What caused the re-evaluation: the event type, or 'build'")


class SegmentExited(DomainEvent):
    """A customer no longer matches a segment."""

    source = SOURCE
    detail_type = "SegmentExited"

    segment_id: str
    segment_name: str
    customer_id: str
    exited_at: datetime
    trigger: str


class CustomerTraits(Contract):
    customer_id: str
    traits: dict[str, str | float | int | None]


class TraitsComputed(DomainEvent):
    """A model job scored customers: their computed traits (a batch, at most a few hundred customers)."""

    source = SOURCE
    detail_type = "TraitsComputed"

    model: str
    model_version: str
    computed_at: datetime
    customers: list[CustomerTraits]


class AudienceBuilt(DomainEvent):
    """A segment's audience is in the lake bucket: the manifest lists the CSV parts of customer ids."""

    source = SOURCE
    detail_type = "AudienceBuilt"

    audience_id: str
    segment_id: str
    count: int
    manifest: str
    built_at: datetime


class AnalysisDataErased(CustomerDataErased):
    """Segmentation's acknowledgement of an erasure request, from this engine's source."""

    source = SOURCE
    detail_type = "CustomerDataErased"
