"""What happened after a campaign, counted per arm for its report: broadcast's message events (sent,
delivered, opened...) and conversions (an order within the attribution window after the launch).

A campaign message's source is `campaign:<id>` and its step `r<run>.<arm>` (`runs.message_step`), so the
event alone names the counter to move. Each (message, event type) is counted once: a marker item is
written with the counter's increment in one conditional transaction, and a redelivered event finds it; a
queue batch's events share one transaction, their increments summed per arm (`record_batch`).
Opens and clicks count once per message however often the customer opens.

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

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from ecrm.broadcast.models import MessageEvent
from ecrm.campaigns.assignment import arms_of, assign
from ecrm.campaigns.store import CampaignStore, Outcome
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

    def record(self, detail_type: str, event: MessageEvent) -> bool:
        """Count the event on its arm; False when it is not a campaign's, not counted, or counted before."""
        return bool(self.record_batch([(detail_type, event)]))

    def record_batch(self, events: Sequence[tuple[str, MessageEvent]]) -> list[Outcome]:
        """Count a queue batch's message events on their arms together (`CampaignStore.record_outcomes`); answers
        what was counted now (an event not a campaign's, not counted or counted before is left out)."""
        outcomes = []
        for detail_type, event in events:
            counter = COUNTED.get(detail_type)
            where = campaign_arm(event.source_ref, event.step)
            if counter is not None and where is not None:
                outcomes.append(Outcome(where[0], where[1], event.message_id, counter))
        counted = self.store.record_outcomes(outcomes, self.clock.now()) if outcomes else []
        for outcome in counted:
            self._count(outcome.counter.title(), outcome.campaign_id, outcome.arm)
        return counted

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
