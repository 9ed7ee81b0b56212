"""This engine's part of an erasure request (GDPR Art. 17), then its acknowledgement.

Deleted: everything under the customer's partition (the message index, the sends the frequency caps count,
the in-app inbox, devices and their push endpoints' index, webhook endpoints the customer registered, the
customer's outbox item), the messages' outbox items (kept by messages written before their events rode in
the message item) and contents, and the owner records that map an address to them.

Kept without identity, as bookkeeping: each message's record (its id is a hash of source, customer and step,
so it names nobody), with its status, channel, source, step and history, because campaign reports and
provider feedback that arrives late find messages by id. The customer id becomes `erased`; the address,
content, data and provider detail are dropped. A message not yet sent is ended as `failed` (reason
`erased`), so no sender or deferral release sends it afterwards; one sent keeps its status.

Kept until their TTL: the records that map a push's SNS message id to our message id (`PROVIDER#<id>`).
They hold nothing personal (a provider's id and a message id that is a hash naming nobody) and exist so
the provider's late feedback finds the detached message, as above.

Kept, hashed: the suppressions of the customer's addresses. A suppression exists to outlive the
relationship (a hard bounce or a complaint must not be mailed again if the address comes back), so the
entry moves from the address to its SHA-256 (`sha256:<hex>`, the hash events already carry) and loses the
customer id; the send-time check looks up both forms.

Not done here: the SNS platform endpoints of the deleted devices stay with the provider until it reports
them disabled (their token is the provider's, not an identity this engine holds).
"""

from __future__ import annotations

from ecrm.broadcast.models import FINAL_STATUSES, SENT_OR_LATER, BroadcastDataErased, HistoryEntry, Message
from ecrm.broadcast.store import CONTENT, BroadcastStore, StaleMessage, message_pk
from ecrm.core.clock import Clock
from ecrm.core.erasure import CustomerErasureRequested
from ecrm.core.errors import ServiceUnavailable
from ecrm.core.outbox import OUTBOX_SORT_KEY

ENGINE = "broadcast"
ERASED_CUSTOMER = "erased"
ATTEMPTS = 5


class BroadcastErasure:
    def __init__(self, store: BroadcastStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def erase(self, request: CustomerErasureRequested) -> BroadcastDataErased:
        """Erase every id of the request; safe to run again (a redelivery finds nothing left under the ids)."""
        for customer_id in dict.fromkeys([request.customer_id, *request.customer_ids]):
            self._erase_customer(customer_id)
        return BroadcastDataErased(request_id=request.request_id, engine=ENGINE, erased_at=self.clock.now())

    def _erase_customer(self, customer_id: str) -> None:
        items = self.store.customer_items(customer_id)
        message_ids = [i["message_id"] for i in items if i["sk"].startswith("MSG#")]
        addresses: set[str] = set()
        for message_id in message_ids:
            address = self._detach(message_id)
            if address:
                addresses.add(address)
        for entry in self.store.suppressions_of(customer_id, addresses):
            self.store.hash_suppression(entry)
        for address in addresses:
            self.store.forget_owner(address, customer_id)
        keys = [(i["pk"], i["sk"]) for i in items]
        keys += [(f"PUSHEP#{d.endpoint_arn}", "DEVICE") for d in self.store.devices(customer_id)]
        keys += [(f"WEBHOOK#{i['endpoint_id']}", "ENDPOINT") for i in items if i["sk"].startswith("WEBHOOK#")]
        keys += [(message_pk(m), OUTBOX_SORT_KEY) for m in message_ids]  # written by messages before ADR 11's change
        # A creation whose client never retried leaves its content (the customer's data) and no message.
        keys += [(message_pk(m), CONTENT) for m in message_ids]
        # The partition goes last: a retry after a failure above still finds the messages through it.
        self.store.delete_items(keys)

    def _detach(self, message_id: str) -> str | None:
        """Strip the message of its customer; returns the address it had (None once detached)."""
        for _ in range(ATTEMPTS):
            message = self.store.get_message(message_id)
            if message is None or message.customer_id == ERASED_CUSTOMER:
                return None
            try:
                content = [] if message._inline_content else [self.store.forget_content(message_id)]
                self.store.save_transition(
                    self._detached(message), (), correlation_id=None, now=self.clock.now(), extra=content
                )
            except StaleMessage:
                continue
            return message.address
        raise ServiceUnavailable(f"message {message_id} kept changing during the erasure; the queue retries")

    def _detached(self, message: Message) -> Message:
        now = self.clock.now()
        history = [HistoryEntry(at=h.at, status=h.status, reason=h.reason) for h in message.history]
        ending = message.status not in FINAL_STATUSES | SENT_OR_LATER
        if ending:
            history.append(HistoryEntry(at=now, status="failed", reason="erased"))
        return message.model_copy(
            update={
                "customer_id": ERASED_CUSTOMER,
                "address": None,
                "content": {},
                "data": {},
                "status": "failed" if ending else message.status,
                "reason": "erased" if ending else message.reason,
                "lease_until": None,
                "deferred_until": None,
                "updated_at": now,
                "history": history,
            }
        )
