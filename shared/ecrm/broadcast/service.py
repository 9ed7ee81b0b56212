"""Use cases of the API: request a message, read messages, the suppression list, inboxes, devices, webhooks.

A request is idempotent by its key (ADR 12): the same key with the same body answers with the message
already requested, the same key with another body is a 422 and changes nothing. The message and its
`MessageRequested` are saved in one transaction (the outbox), so a request accepted is never lost.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from ecrm.broadcast.keys import fingerprint_of, message_id_for, normalise_address
from ecrm.broadcast.models import (
    Device,
    DeviceIn,
    HistoryEntry,
    Inbox,
    InboxItem,
    Message,
    MessageAccepted,
    MessagePage,
    MessageRequest,
    MessageRequested,
    MessageView,
    SuppressionPage,
    WebhookEndpointCreated,
    WebhookEndpointIn,
    template_ref_of,
)
from ecrm.broadcast.rendering import check_templates
from ecrm.broadcast.store import BroadcastStore
from ecrm.broadcast.templates import TemplateSource, resolve_content
from ecrm.core.clock import Clock
from ecrm.core.errors import EcrmError, InvalidInput, NotFound
from ecrm.core.ids import new_id

# Registers a device token with the push provider and answers the endpoint's address (an SNS endpoint ARN).
RegisterDevice = Callable[[str, str, str], str]  # (platform, token, customer id) -> endpoint ARN


# What a message's content and data may weigh, as JSON: the message is one DynamoDB item (400 KB, with its
# history) and its rendered body one SQS message (256 KB).
MAX_MESSAGE_BYTES = 200_000
REQUEST_WORKERS = 8  # requests of a batch accepted at once (`request_all`)


class MessageTooLarge(EcrmError):
    status = 413
    code = "message-too-large"
    title = "Message too large"


class KeyReused(EcrmError):
    status = 422
    code = "idempotency-key-reused"
    title = "Idempotency key reused"


class MessageService:
    def __init__(
        self,
        store: BroadcastStore,
        clock: Clock,
        *,
        register_device: RegisterDevice | None = None,
        allow_loopback_http: bool = False,
        templates: TemplateSource | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.register_device = register_device
        # Personalization's stored templates, asked when a message names one (resolved once, then pinned).
        self.templates = templates
        # Plain http to 127.0.0.1 accepted for webhook endpoints (local runs), as the webhook adapter allows.
        self.allow_loopback_http = allow_loopback_http

    # -- messages --------------------------------------------------------------------------------------
    def request(
        self, body: MessageRequest, *, idempotency_key: str | None, correlation_id: str | None
    ) -> MessageAccepted:
        """Accept a message for the policy; a replay of the same key and body answers the same message.

        The fingerprint is the body as asked (a template named without a version included as such), so a
        retry matches after a new version was saved; the stored message keeps the version resolved first.
        """
        check_templates({c: p for c, p in body.content.items() if template_ref_of(p) is None})
        source = body.source or f"api:{idempotency_key or correlation_id or new_id('req_')}"
        message_id = message_id_for(source, body.customer_id, body.step)
        fingerprint = fingerprint_of(body.model_dump(mode="json", exclude={"source", "step"}))
        existing = self.store.get_message(message_id)
        if existing is None:
            content, pinned = resolve_content(body.content, self.templates)
            weight = len(json.dumps([content, body.data], separators=(",", ":"), default=str).encode())
            if weight > MAX_MESSAGE_BYTES:
                raise MessageTooLarge(
                    f"the message's content and data take {weight} bytes; at most {MAX_MESSAGE_BYTES}",
                    max_bytes=MAX_MESSAGE_BYTES,
                )
            now = self.clock.now()
            message = Message(
                message_id=message_id,
                customer_id=body.customer_id,
                purpose=body.purpose,
                topic=body.topic,
                source=source,
                step=body.step,
                requested_channel=body.channel,
                status="requested",
                content=content,
                data=body.data,
                tracking=body.tracking,
                templates=pinned,
                fingerprint=fingerprint,
                requested_at=now,
                updated_at=now,
                history=[HistoryEntry(at=now, status="requested")],
            )
            if self.store.create_message(message, [requested_event(message)], correlation_id=correlation_id):
                return MessageAccepted(message_id=message_id, status="requested")
            existing = self.store.get_message(message_id)  # a concurrent request with the same key won
            if existing is None:  # its message is not written yet, or it was another body's and never will be
                raise KeyReused(
                    f"message {message_id} is being requested with this key and another body; use a new key",
                    message_id=message_id,
                )
        if existing.fingerprint != fingerprint:
            raise KeyReused(
                f"message {message_id} was requested with this key and another body; use a new key",
                message_id=message_id,
            )
        return MessageAccepted(message_id=message_id, status=existing.status)

    def request_all(self, bodies: Sequence[MessageRequest]) -> list[MessageAccepted]:
        """Accept a batch of requests (a campaign chunk's hundred), in order, several at a time.

        Each request is its read and three writes (`BroadcastStore.create_message`), about 40 ms of round trips
        on AWS: one after the other, a batch of 100 took four seconds; `REQUEST_WORKERS` at once take about
        half a second. Each is the same `request` as alone (its own key, its own idempotency), so a retried
        batch answers the same messages; the first request that fails fails the batch, which is retried whole.
        """
        if len(bodies) <= 1:
            return [self.request(b, idempotency_key=None, correlation_id=None) for b in bodies]
        with ThreadPoolExecutor(max_workers=min(REQUEST_WORKERS, len(bodies))) as pool:
            return list(pool.map(lambda b: self.request(b, idempotency_key=None, correlation_id=None), bodies))

    def get(self, message_id: str) -> MessageView:
        message = self.store.get_message(message_id)
        if message is None:
            raise NotFound(f"no message {message_id}")
        return MessageView.of(message)

    def of_customer(self, customer_id: str, *, limit: int, cursor: str | None) -> MessagePage:
        ids, next_cursor = self.store.customer_messages(customer_id, limit=limit, cursor=cursor)
        found = self.store.get_messages(ids)
        return MessagePage(items=[MessageView.of(found[i]) for i in ids if i in found], next=next_cursor)

    # -- suppression list -----------------------------------------------------------------------------
    def suppressions(self, *, limit: int, cursor: str | None) -> SuppressionPage:
        items, next_cursor = self.store.suppressions(limit=limit, cursor=cursor)
        return SuppressionPage(items=items, next=next_cursor)

    def unsuppress(self, address: str) -> None:
        if not self.store.unsuppress(address):
            raise NotFound(f"{normalise_address(address)} is not on the suppression list")

    # -- inbox ----------------------------------------------------------------------------------------------
    def inbox(self, customer_id: str) -> Inbox:
        items = self.store.inbox(customer_id)
        return Inbox(items=items, unread=sum(1 for i in items if i.read_at is None))

    def mark_read(self, customer_id: str, item_id: str) -> InboxItem:
        item = self.store.mark_read(customer_id, item_id, self.clock.now())
        if item is None:
            raise NotFound(f"no inbox item {item_id}")
        return item

    # -- devices --------------------------------------------------------------------------------------------
    def add_device(self, customer_id: str, body: DeviceIn) -> Device:
        if self.register_device is None:
            raise NotFound("push is not configured in this deployment")
        endpoint_arn = self.register_device(body.platform, body.token, customer_id)
        existing = next((d for d in self.store.devices(customer_id) if d.endpoint_arn == endpoint_arn), None)
        device = Device(
            device_id=existing.device_id if existing else new_id("dev_"),
            platform=body.platform,
            endpoint_arn=endpoint_arn,
            registered_at=self.clock.now(),
        )
        self.store.put_device(customer_id, device)
        return device

    def remove_device(self, customer_id: str, device_id: str) -> None:
        if self.store.delete_device(customer_id, device_id) is None:
            raise NotFound(f"no device {device_id}")

    # -- webhook endpoints ---------------------------------------------------------------------------------
    def add_endpoint(self, body: WebhookEndpointIn) -> WebhookEndpointCreated:
        if body.url.startswith("http://") and not self.allow_loopback_http:
            raise InvalidInput("a webhook URL must be https", field="url")
        if body.url.startswith("https://"):
            refused = refused_webhook_host(body.url, allow_loopback=self.allow_loopback_http)
            if refused:
                raise InvalidInput(f"a webhook URL may not point at {refused}", field="url")
        endpoint_id = new_id("whe_")
        secret = secrets.token_urlsafe(32)
        self.store.put_endpoint(endpoint_id, url=body.url, secret=secret, customer_id=body.customer_id)
        return WebhookEndpointCreated(
            endpoint_id=endpoint_id, url=body.url, customer_id=body.customer_id, secret=secret
        )


# Names that reach the machine itself or a cloud's instance metadata, whatever a resolver answers for them.
_INTERNAL_NAMES = ("localhost", "metadata.google.internal", "instance-data", "metadata")
_INTERNAL_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain")


def refused_webhook_host(url: str, *, allow_loopback: bool = False) -> str:
    """Why a webhook URL's host is refused ('' when it is not): the endpoint is called from inside our network,
    so it may not name a loopback, private, link-local (169.254.169.254, the instance metadata) or reserved
    address, in any spelling an HTTP client accepts (decimal, hex, octal, IPv4 inside IPv6), nor such a name.
    """
    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return "a host that cannot be read"
    if not host:
        return "no host"
    if host in _INTERNAL_NAMES or host.endswith(_INTERNAL_SUFFIXES):
        return f"an internal name ({host})"
    address = _ip_of(host)
    if address is None:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if allow_loopback and address == ipaddress.IPv4Address("127.0.0.1"):
        return ""
    if not address.is_global or address.is_multicast:
        return f"a private, loopback, link-local or reserved address ({address})"
    return ""


def _ip_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host.replace(".", "").replace("x", "").isalnum() and all(c in "0123456789abcdefx." for c in host):
        try:  # what inet_aton (and so an HTTP client) reads as an address: 2852039166, 0xa9fea9fe, 0251.0376...
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def requested_event(message: Message) -> MessageRequested:
    return MessageRequested(**event_fields(message, message.requested_at))


def event_fields(message: Message, at: datetime, **extra: Any) -> dict[str, Any]:
    """The data every message event carries (ADR 12)."""
    return {
        "message_id": message.message_id,
        "customer_id": message.customer_id,
        "channel": message.channel,
        "purpose": message.purpose,
        "topic": message.topic,
        "source": message.source,
        "step": message.step,
        "status": message.status,
        "reason": message.reason,
        "occurred_at": at,
        "requested_at": message.requested_at,
        **extra,
    }
