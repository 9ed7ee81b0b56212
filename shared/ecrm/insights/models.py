"""The insights engine's contract: what `GET /insights/live` answers, and the counters it names.

Live counters are sums of per-minute buckets the event stream fills within seconds of each event: per
campaign and variant, per journey and step, per channel, and in total. A campaign's own report
(`GET /campaigns/{id}/report`) stays the lifetime account of its arms; this is the last hour (or day) of
the whole platform at a glance.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from ecrm.core.contract import Contract
from ecrm.core.erasure import CustomerDataErased

SOURCE = "ecrm.insights"

# The counters, in the order a reader meets them: a message requested (targeted), what the policy did with it,
# what the provider did, what the customer did. `revenue` is kept apart, per currency, in minor units.
COUNTERS: tuple[str, ...] = (
    "targeted",
    "suppressed",
    "deferred",
    "sent",
    "failed",
    "delivered",
    "bounced",
    "complained",
    "opened",
    "clicked",
    "converted",
    "unsubscribed",
)
# Broadcast's message events and the counter each adds one to.
COUNTER_OF_EVENT: dict[str, str] = {
    "MessageRequested": "targeted",
    "MessageSuppressed": "suppressed",
    "MessageDeferred": "deferred",
    "MessageSent": "sent",
    "MessageFailed": "failed",
    "MessageDelivered": "delivered",
    "MessageBounced": "bounced",
    "MessageComplained": "complained",
    "MessageOpened": "opened",
    "MessageClicked": "clicked",
}
MAX_WINDOW_MINUTES = 24 * 60
DEFAULT_WINDOW_MINUTES = 60

RowKind = Literal["campaign", "journey", "channel"]


class Counters(Contract):
    """Counts of one row over the window; `revenue` is minor units per ISO 4217 currency (attributed orders)."""

    targeted: int = 0
    suppressed: int = 0
    deferred: int = 0
    sent: int = 0
    failed: int = 0
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    opened: int = 0
    clicked: int = 0
    converted: int = 0
    unsubscribed: int = 0
    revenue: dict[str, int] = Field(default_factory=dict, description="Minor units per currency")
    rates: dict[str, float] = Field(
        default_factory=dict, description="delivery, bounce, complaint (of sent); open, click (of delivered)"
    )


class CampaignRow(Counters):
    campaign_id: str
    variant: str = Field(description="The arm (A, B, ... or holdout); a recurring campaign's runs add up")


class JourneyRow(Counters):
    journey_id: str
    step: str = Field(description="The journey's send step")


class ChannelRow(Counters):
    channel: str


class LiveInsights(Contract):
    """`GET /insights/live`: counters of the last `window_minutes`, whole minutes, the current one included."""

    window_minutes: int
    since: str = Field(description="The first minute counted (UTC, ISO 8601)")
    until: str = Field(description="The last minute counted (UTC, ISO 8601), the current one")
    total: Counters
    campaigns: list[CampaignRow]
    journeys: list[JourneyRow]
    channels: list[ChannelRow]


class InsightsDataErased(CustomerDataErased):
    """The insights engine's acknowledgement of an erasure request, from this engine's source."""

    source: ClassVar[str] = SOURCE
    detail_type: ClassVar[str] = "CustomerDataErased"
