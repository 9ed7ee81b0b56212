"""The channel vocabulary, declared once: every engine derives what it uses from these names.

- `MessageChannel`: what a message is rendered and sent on;
- `Channel`: what a customer is reached on and consents by (`email`, ..., `webhook`, `phone`);
  the customer store's consent and preferred channels, segmentation's consent conditions;
- an engine that needs fewer or more names builds them from these (`Literal[MessageChannel, "web"]`):
  a Literal of Literals is their union, in order, and `typing.get_args` flattens it.
"""

from __future__ import annotations

from typing import Literal, get_args

MessageChannel = Literal["email", "sms", "push", "in_app"]
Channel = Literal[MessageChannel, "webhook", "phone"]

MESSAGE_CHANNELS: tuple[str, ...] = get_args(MessageChannel)
CHANNELS: tuple[str, ...] = get_args(Channel)
