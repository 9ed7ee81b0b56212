"""Every broadcast channel on the local cloud: one transactional message each on email, sms, voice, push,
whatsapp, in_app and webhook reaches `sent` (or `delivered`) and is found where its provider keeps it: the
SES mailbox, End User Messaging's texts and calls, the device's SNS endpoint (registered with POST
/me/devices), WhatsApp's messages, the customer's inbox (then marked read) and a receiver on 127.0.0.1 that
accepts only a delivery its endpoint's secret signs."""

from __future__ import annotations

import json

from ecrm_ops.tour import broadcast
from ecrm_ops.tour.context import TourContext


def test_one_message_on_every_channel_is_held_by_its_provider(tour: TourContext) -> None:
    found = broadcast.every_channel(tour)
    ids = found["ids"]
    assert set(ids) == {"email", "sms", "voice", "push", "whatsapp", "in_app", "webhook"}
    assert [len(found[c]) for c in ("email", "sms", "voice", "push", "whatsapp", "in_app")] == [1] * 6
    assert json.loads(found["webhook"]) == {"event": "order_shipped"}
    assert found["webhook_refused"] == 0
    assert found["unread_after"] == 0
