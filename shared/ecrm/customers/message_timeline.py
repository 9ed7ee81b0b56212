"""The broadcast engine's message events on the customer's timeline (ADR 12: "not sent" is visible there too).

A message is one line whose status moves as its events arrive (sent, delivered, opened, clicked; or suppressed,
bounced, complained, failed), with the history of its steps: what a support agent reads, at one write per event
(`message_lines`). A redelivered event finds its id on the line and changes nothing. An event published before
message events named their request time (no `requested_at`), and an unsubscription, are one interaction each, as
before, its id derived from the event's id.

A message's line publishes nothing: segmentation takes a message's behaviour from broadcast's events itself
(`ecrm.analysis.message_behaviour`). The timeline used to republish each as `InteractionRecorded` after writing
the line, which cost an event and a delivery per message, and a crash between the write and the publish lost
the event for good (the redelivery found the event on the line and published nothing). An event recorded as an
interaction of its own (below) is published through the customer store's outbox, as every interaction is.

The events are read by the fields every message event carries (ADR 12), tolerant of the fields the timeline does
not show: the customer store follows what broadcast says without importing its code or being redeployed when a
message event gains a field.

Not consumed: `MessageRequested` and `MessageDeferred` (steps on the way to an outcome, not
something the customer experienced); the outcome that follows them is recorded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, ValidationError

from ecrm.core.contract import Contract
from ecrm.core.errors import InvalidInput, NotFound
from ecrm.core.vocabulary import CONSENT_CHANNEL_OF
from ecrm.customers.event_timeline import EventTimeline
from ecrm.customers.message_lines import LineKey, MessageLineStore, apply_with_retries
from ecrm.customers.models import Interaction, InteractionIn
from ecrm.customers.service import CustomerService
from ecrm.customers.store import customer_pk

BROADCAST_SOURCE = "ecrm.broadcast"
# detail-type -> the interaction type it becomes on the timeline
INTERACTION_TYPES = {
    "MessageSent": "message_sent",
    "MessageDelivered": "message_delivered",
    "MessageBounced": "message_bounced",
    "MessageComplained": "message_complained",
    "MessageOpened": "message_opened",
    "MessageClicked": "message_clicked",
    "MessageSuppressed": "message_suppressed",
    "MessageFailed": "message_failed",
    "CustomerUnsubscribed": "unsubscribed",
}
# What the timeline shows of an event, when the event carries it.
SHOWN = ("message_id", "channel", "purpose", "topic", "source", "step", "status", "reason", "link", "method")
# A line shows its highest step: engagement above delivery, an outcome that ends the message above both.
LINE_RANK = {
    "message_sent": 1,
    "message_delivered": 2,
    "message_opened": 3,
    "message_clicked": 4,
    "message_suppressed": 5,
    "message_failed": 5,
    "message_bounced": 5,
    "message_complained": 6,
}


class MessageEventData(Contract):
    """The `data` of a broadcast event, as far as the timeline reads it."""

    model_config = ConfigDict(extra="ignore")

    customer_id: str
    message_id: str | None = None
    channel: str | None = None
    occurred_at: datetime | None = None
    requested_at: datetime | None = None


class EventMetadataView(Contract):
    """An envelope's `metadata` as the timeline consumers read it (other engines' events, loosely)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    correlation_id: str | None = None
    occurred_at: datetime


def interaction_for(detail_type: str, detail: dict[str, Any]) -> tuple[str, InteractionIn]:
    """The customer and the interaction an event becomes; `InvalidInput` for an event of another shape."""
    interaction_type = INTERACTION_TYPES.get(detail_type)
    if interaction_type is None:
        raise InvalidInput(f"{detail_type} is not recorded on the timeline")
    try:
        metadata = EventMetadataView.model_validate(detail.get("metadata"))
        data = MessageEventData.model_validate(detail.get("data"))
    except ValidationError as error:
        raise InvalidInput(f"a {detail_type} event of an unexpected shape: {error.errors()[0]['msg']}") from None
    raw = detail["data"]
    properties = {name: raw[name] for name in SHOWN if raw.get(name) is not None}
    interaction = InteractionIn(
        type=interaction_type,
        occurred_at=data.occurred_at or metadata.occurred_at,
        source="broadcast",
        # A voice call is consented to, and shown, as "phone"; the delivery channel stays in the properties.
        channel=CONSENT_CHANNEL_OF.get(data.channel) if data.channel else None,
        interaction_id=f"broadcast:{metadata.id}",
        properties=properties,
    )
    return data.customer_id, interaction


def merged_line(
    current: Interaction | None, event: InteractionIn, key: LineKey, customer_id: str, now: datetime
) -> Interaction:
    """The message's line with one more event: its step in the history, the line at its highest step."""
    step = {"status": event.type.removeprefix("message_"), "at": event.occurred_at.isoformat()}
    step |= {name: event.properties[name] for name in ("reason", "link") if name in event.properties}
    history = [*(current.properties.get("history", []) if current else []), step]
    history.sort(key=lambda entry: (entry["at"], LINE_RANK.get(f"message_{entry['status']}", 0)))
    shown: Interaction | InteractionIn = event
    if current is not None and LINE_RANK[event.type] < LINE_RANK.get(current.type, 0):
        shown = current
    return Interaction(
        interaction_id=key.interaction_id,
        customer_id=customer_id,
        type=shown.type,
        occurred_at=key.requested_at,
        recorded_at=now,
        source="broadcast",
        channel=shown.channel,
        properties={name: value for name, value in shown.properties.items() if name != "history"}
        | {"history": history},
    )


class MessageTimeline(EventTimeline):
    def __init__(self, service: CustomerService, lines: MessageLineStore | None = None) -> None:
        super().__init__(service, interaction_for)
        self.lines = lines or MessageLineStore(service.store.client, service.store.table)

    def record(self, detail_type: str, detail: dict[str, Any]) -> bool:
        """True when the event changed the timeline now; False when it already had, or its customer is gone."""
        customer_id, interaction = interaction_for(detail_type, detail)
        data = MessageEventData.model_validate(detail["data"])
        if data.message_id is None or data.requested_at is None or interaction.type not in LINE_RANK:
            return super().record(detail_type, detail)
        try:
            self.service.get(customer_id)  # an erased customer gets no line back
        except NotFound:
            return False
        # The line stays under the customer the message names: a merged customer's partition is read with the
        # survivor's, so a merge between two events of a message does not split its line.
        key = LineKey(customer_pk(customer_id), data.requested_at, data.message_id)
        event_id = str(detail["metadata"]["id"])
        now = self.service.clock.now()
        return apply_with_retries(
            self.lines, key, event_id, lambda current: merged_line(current, interaction, key, customer_id, now)
        )
