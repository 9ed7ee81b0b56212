"""Broadcast's message events as behaviour: what a customer experienced of a message, taken from the bus.

The customer store's timeline used to republish each message event it wrote on a line as `InteractionRecorded`
for segmentation. Segmentation now reads broadcast's events itself (ADR 12, "What a message's events cost
downstream"): one event put and one delivery less per message, and no derived event that a crash between the
timeline's write and its publish could lose (the line took the event; its redelivery found it there and
published nothing). The behaviour is the one the timeline published: type `message_<step>`, the consent
channel (a voice call is `phone`), source `broadcast`, id `broadcast:<event id>`, so a segment or a report on
message behaviour reads the same rows as before.

Which events: every outcome and engagement (delivered, opened, clicked, bounced, complained, failed,
suppressed), and the `sent` of a channel whose provider reports no delivery (push, in-app, webhook), its last
word. The `sent` of email, SMS, voice and WhatsApp is a step on the way: its outcome follows and is the
behaviour. The rules route only these (infra/engines/analysis.py, from the names below); `behaviour_of` checks
again.
"""

from __future__ import annotations

from ecrm.analysis.predicate import BehaviourEvent
from ecrm.analysis.projection import behaviour_from_interaction
from ecrm.broadcast.models import (
    MessageBounced,
    MessageClicked,
    MessageComplained,
    MessageDelivered,
    MessageEvent,
    MessageFailed,
    MessageOpened,
    MessageSent,
    MessageSuppressed,
)
from ecrm.core.vocabulary import CONSENT_CHANNEL_OF, DELIVERY_CHANNELS

# The events that are behaviour whatever their channel
OUTCOME_EVENTS: tuple[type[MessageEvent], ...] = (
    MessageDelivered,
    MessageOpened,
    MessageClicked,
    MessageBounced,
    MessageComplained,
    MessageFailed,
    MessageSuppressed,
)
MESSAGE_EVENTS: tuple[type[MessageEvent], ...] = (*OUTCOME_EVENTS, MessageSent)
# The channels whose provider reports the delivery (or its failure): their `sent` is a step, not behaviour
DELIVERY_REPORTED = frozenset({"email", "sms", "voice", "whatsapp"})
SENT_IS_BEHAVIOUR_ON: tuple[str, ...] = tuple(c for c in DELIVERY_CHANNELS if c not in DELIVERY_REPORTED)


def behaviour_of(event: MessageEvent, event_id: str) -> BehaviourEvent | None:
    """The behaviour a message event is (its envelope's id names it), or None for a step on the way."""
    if isinstance(event, MessageSent) and event.channel not in SENT_IS_BEHAVIOUR_ON:
        return None
    kind = "message_" + event.detail_type.removeprefix("Message").lower()
    channel = CONSENT_CHANNEL_OF.get(event.channel) if event.channel else None
    return behaviour_from_interaction(f"broadcast:{event_id}", kind, event.occurred_at, channel, {}, "broadcast")
