"""Two hot paths of moto made proportional to the work, used only by the embedded local cloud.

moto 5.2.5, under the local cloud's steady polling of a dozen queues:
- SQS computes *every* queue attribute, the three approximate counts included (three passes over
  all the queue's messages, each message reading the clock twice), to send one message, to check
  each message it receives against the retention period, and up to five times per
  `GetQueueAttributes`: a queue of n messages costs O(n) per message in and out, so a backlog of a
  thousand events (a customer import feeding three engines) stalls every queue of the server,
  whose GIL they share. Here the retention period is read from the queue itself, and the counts
  are taken in one pass with one reading of the clock.
- EventBridge applies each target's input transformation (the default one when the target has
  none) by parsing its JSONPath expressions afresh for every event and target, rebuilding the
  parser's tables each time. Here parsed expressions are kept (they are immutable; `find` does
  not change them).
Semantics are unchanged: the same messages expire at the same time, the same paths select the
same values.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from moto.core.utils import camelcase_to_underscores, unix_time, unix_time_millis
from moto.sqs.models import Queue, SQSBackend

_installed = False
MOTO_QUEUE_ATTRIBUTES: property = Queue.__dict__["attributes"]  # moto's own, kept to compare against


def is_message_valid_based_on_retention_period(self: SQSBackend, queue_name: str, message: Any) -> bool:
    retention_period = int(self.get_queue(queue_name).message_retention_period)
    return bool(retention_period + message.sent_timestamp / 1000 > unix_time())


COUNTS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessagesNotVisible")


def queue_attributes(self: Queue) -> dict[str, Any]:
    """`Queue.attributes`, as moto computes it, with the three counts from one pass over the messages."""
    now = unix_time_millis()
    available = delayed = not_visible = 0
    for message in self._messages:
        is_delayed = now < message.delayed_until
        is_visible = now > message.visible_at
        delayed += is_delayed
        not_visible += not is_visible
        available += is_visible and not is_delayed
    counts = dict(zip(COUNTS, (available, delayed, not_visible), strict=True))
    names = [*self.BASE_ATTRIBUTES]
    if self.fifo_queue:
        names += self.FIFO_ATTRIBUTES
    if self.kms_master_key_id:  # type: ignore[attr-defined]
        names += self.KMS_ATTRIBUTES
    result: dict[str, Any] = {
        name: counts[name] if name in counts else getattr(self, camelcase_to_underscores(name)) for name in names
    }
    if self.policy:
        result["Policy"] = self.policy
    if self.redrive_policy:
        result["RedrivePolicy"] = json.dumps(self.redrive_policy)
    return {key: str(value).lower() if isinstance(value, bool) else value for key, value in result.items()}


def install() -> None:
    global _installed
    if _installed:
        return
    import jsonpath_ng.ext

    SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        is_message_valid_based_on_retention_period
    )
    Queue.attributes = property(queue_attributes)  # type: ignore[assignment,method-assign]
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=1024)(jsonpath_ng.ext.parse)  # type: ignore[attr-defined]
    _installed = True
