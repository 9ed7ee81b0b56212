"""Broadcast's message events counted per campaign arm, for the report (sent, delivered, opened...).

A campaign message's source is `campaign:<id>` and its step `r<run>.<arm>` (`runs.message_step`), so the
event alone names the counter to move. Each (message, event type) is counted once: a marker item is
written with the counter's increment in one conditional transaction, and a redelivered event finds it.
Opens and clicks count once per message however often the customer opens.
"""

from __future__ import annotations

from ecrm.broadcast.models import MessageEvent
from ecrm.campaigns.store import CampaignStore
from ecrm.core.clock import Clock

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
    def __init__(self, store: CampaignStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def record(self, detail_type: str, event: MessageEvent) -> bool:
        """Count the event on its arm; False when it is not a campaign's, not counted, or counted before."""
        counter = COUNTED.get(detail_type)
        where = campaign_arm(event.source_ref, event.step)
        if counter is None or where is None:
            return False
        campaign_id, arm = where
        return self.store.record_outcome(campaign_id, arm, event.message_id, counter, self.clock.now())
