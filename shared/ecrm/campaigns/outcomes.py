"""What happened after a campaign, counted per arm for its report: broadcast's message events (sent,
delivered, opened...) and conversions (an order within the attribution window after the launch).

Broadcast counts its message events once, where it writes them, and publishes a window's counts per minute,
channel, source and step as one `MessageOutcomesCounted` (ADR 12, "Outcomes counted at the source"). A campaign
message's source is `campaign:<id>` and its step `r<run>.<arm>` (`runs.message_step`), so a count alone names
the arm to move. Each window is counted once per campaign: a marker item is written with the arms' increments
in one conditional transaction, and a redelivered event finds it (`record_counts`). Opens and clicks count once
per message however often the customer opens.

A conversion is a recipient's first order within `ATTRIBUTION_WINDOW` of a campaign's launch, counted on
the recipient's arm, the holdout included (that is what lift compares). The arm is the one the run recorded
for the recipient when it handed their chunk to broadcast (`store.record_recipients`): a segment audience's
members are known only then, and an auto-winner's rest count on the winner they were sent. A campaign run
before those records existed falls back to the hash (`assignment`) for a listed customer. Later orders of
the same customer count once (`revenue_minor` adds each order's total).

Each count is also a CloudWatch metric (`metric`, embedded metric format in the cloud) named after its
counter (Sent, Delivered, ..., Converted) with the dimensions `campaign_id` and `variant`: bounded by the
campaigns and their arms, never by a customer. Only what was counted is emitted, so a redelivered event
moves neither the report nor the metric.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from ecrm.broadcast.models import MessageOutcomesCounted
from ecrm.campaigns.assignment import arms_of, assign
from ecrm.campaigns.store import CampaignStore
from ecrm.core.clock import Clock

ATTRIBUTION_WINDOW = timedelta(days=7)

Metric = Callable[[str, float, Mapping[str, str]], None]

COUNTED = {
    "MessageSent": "sent",
    "MessageDelivered": "delivered",
    "MessageBounced": "bounced",
    "MessageComplained": "complained",
    "MessageOpened": "opened",
    "MessageClicked": "clicked",
    "MessageSuppressed": "suppressed",
    "MessageDeferred": "deferred",
    "MessageFailed": "failed",
}


def campaign_arm(source: str, step: str) -> tuple[str, str] | None:
    """(campaign id, arm) of a campaign message, None for any other source."""
    kind, _, campaign_id = source.partition(":")
    run, _, arm = step.partition(".")
    if kind != "campaign" or not run.startswith("r") or not arm:
        return None
    return campaign_id, arm


class CampaignOutcomes:
    def __init__(self, store: CampaignStore, clock: Clock, *, metric: Metric | None = None) -> None:
        self.store = store
        self.clock = clock
        self.metric = metric or (lambda name, value, dimensions: None)

    def _count(self, name: str, campaign_id: str, arm: str) -> None:
        self.metric(name, 1, {"campaign_id": campaign_id, "variant": arm})

    def record_counts(self, event_id: str, counted: MessageOutcomesCounted) -> list[str]:
        """Add a window of broadcast's counts to the arms of the campaigns it names, each campaign once; answers
        the campaigns counted now (one counted before, by a redelivered event, is left out).

        A campaign's counts are of messages, not events: a second link clicked in one message is not a second
        clicking recipient."""
        campaigns: dict[str, dict[str, dict[str, int]]] = {}
        for count in counted.counts:
            counter = COUNTED.get(count.event)
            where = campaign_arm(count.source, count.step)
            if counter is None or where is None or not count.messages:
                continue
            arm = campaigns.setdefault(where[0], {}).setdefault(where[1], {})
            arm[counter] = arm.get(counter, 0) + count.messages
        now = self.clock.now()
        recorded = []
        for campaign_id, arms in sorted(campaigns.items()):
            if self.store.record_counts(event_id, campaign_id, arms, now):
                recorded.append(campaign_id)
                for arm_name, counts in sorted(arms.items()):
                    for counter, n in sorted(counts.items()):
                        self.metric(counter.title(), n, {"campaign_id": campaign_id, "variant": arm_name})
        return recorded

    def convert(self, customer_id: str, order_id: str, total_minor: int, placed_at: datetime) -> list[str]:
        """Attribute an order to every campaign launched within the window whose audience holds the customer."""
        counted = []
        after: str | None = None
        while True:
            page, after = self.store.campaigns(100, after)
            for campaign in page:
                launched = campaign.launched_at
                if launched is None or not launched <= placed_at <= launched + ATTRIBUTION_WINDOW:
                    continue
                arm = self.store.recipient_arm(campaign.campaign_id, customer_id)
                if arm is None:
                    if customer_id not in campaign.audience.customer_ids:
                        continue
                    arm = assign(campaign.campaign_id, customer_id, arms_of(campaign))
                recorded = self.store.record_conversion(campaign.campaign_id, arm, customer_id, order_id, total_minor)
                if recorded:
                    counted.append(f"{campaign.campaign_id}:{arm}")
                if recorded == "converted":
                    self._count("Converted", campaign.campaign_id, arm)
            # the list is newest first: once a page starts before the window, older pages are too
            if after is None or (page and page[-1].created_at < placed_at - ATTRIBUTION_WINDOW):
                return counted
