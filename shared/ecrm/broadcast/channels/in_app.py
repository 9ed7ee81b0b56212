"""The in-app inbox: the message is stored for the customer by the core's store (the `Inbox` port).

Delivery is the write itself, idempotent by message id, so a retried send stores nothing twice.
"""

from __future__ import annotations

from ecrm.broadcast.channels.base import ChannelError, Inbox, OutboundMessage, SendResult, content_text, require

_URL_KEYS = ("image_url", "cta_url")


class InAppAdapter:
    channel = "in_app"

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    def send(self, message: OutboundMessage) -> SendResult:
        require(message.address == message.customer_id, "an in-app message is addressed to its customer")
        content_text(message, "title")
        content_text(message, "body")
        for key in _URL_KEYS:
            url = content_text(message, key, required=False)
            require(url is None or url.startswith("https://"), f"in-app {key} must be an https URL")
        require(
            (message.content.get("cta_label") is None) == (message.content.get("cta_url") is None),
            "an in-app call to action needs both its label and its URL",
        )
        try:
            item_id = self.inbox.deliver(message)
        except ChannelError:
            raise
        except Exception as exc:  # a store fault is transient: the core retries the send
            raise ChannelError(f"inbox: {type(exc).__name__}: {exc}", permanent=False) from exc
        return SendResult(provider_message_id=item_id, detail={"inbox_item_id": item_id})
