"""The broadcast engine's message events on the customer's timeline (ADR 12: "not sent" is visible there too).

Each consumed event becomes one interaction whose id is derived from the event's id, so a
redelivered event finds its interaction recorded and adds nothing. The events are read by the
fields every message event carries (ADR 12), tolerant of the fields the timeline does not show:
the customer store follows what broadcast says without importing its code or being redeployed
when a message event gains a field.

Not consumed: `MessageRequested` and `MessageDeferred` (steps on the way to an outcome, not
something the customer experienced); the outcome that follows them is recorded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, ValidationError

from ecrm.core.contract import Contract
from ecrm.core.errors import InvalidInput
from ecrm.core.vocabulary import CONSENT_CHANNEL_OF
from ecrm.customers.event_timeline import EventTimeline
from ecrm.customers.models import InteractionIn
from ecrm.customers.service import CustomerService

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


class MessageEventData(Contract):
    """The `data` of a broadcast event, as far as the timeline reads it."""

    model_config = ConfigDict(extra="ignore")

    customer_id: str
    channel: str | None = None
    occurred_at: datetime | None = None


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


class MessageTimeline(EventTimeline):
    def __init__(self, service: CustomerService) -> None:
        super().__init__(service, interaction_for)
