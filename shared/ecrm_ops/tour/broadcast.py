"""The tour's broadcast steps: one message on every channel, each read back where its provider holds it.

A customer with an email address and a phone registers a device (POST /me/devices) and a webhook endpoint
is registered for them, pointing at a receiver on 127.0.0.1 that checks each delivery's signature. One
transactional message per channel (email, sms, voice, push, whatsapp, in_app, webhook) must reach `sent`
or `delivered` and be found with the local cloud's providers: SES's mailbox, End User Messaging's texts
and calls, the SNS endpoint, WhatsApp's messages, the customer's inbox (then marked read), the receiver.
Three more show the policy's other outcomes: a marketing email to a customer who gave no consent
(suppressed), one inside the customer's quiet hours (deferred) and one to SES's bounce simulator (bounced).
The step answers the counts of each status per channel.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ecrm.broadcast.tokens import verify_webhook_signature
from ecrm.core.ids import new_id

from ecrm_ops import local_mail
from ecrm_ops.tour.context import Step, TourContext, expect, wait_for

CHANNEL_CONTENT: dict[str, dict[str, Any]] = {
    "email": {"subject": "Your order", "text": "It ships today.", "html": "<p>It ships today.</p>"},
    "sms": {"body": "Your order ships today."},
    "voice": {"text": "Your order ships today."},
    "push": {"title": "Your order", "body": "It ships today."},
    "whatsapp": {"template_name": "ecrm_notice", "language": "en_US"},
    "in_app": {"title": "Your order", "body": "It ships today."},
    "webhook": {"payload": {"event": "order_shipped"}},
}
DONE = {"sent", "delivered"}
STATUSES = ("sent", "delivered", "suppressed", "deferred", "bounced")


class WebhookReceiver:
    """An HTTP receiver on 127.0.0.1 keeping the deliveries whose signature the endpoint's secret verifies.

    A signature's timestamp is the sender's clock: on the local cloud that is its clock, which other steps and
    tests move ahead, so the receiver checks freshness against the same clock (`now`)."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self.now = now
        self.secret = ""
        self.verified: dict[str, Any] = {}
        self.refused = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                signature = self.headers.get("X-Ecrm-Signature", "")
                ok = verify_webhook_signature(receiver.secret, signature, body, now=receiver.now(), tolerance_s=300)
                if ok:
                    receiver.verified[self.headers.get("X-Ecrm-Message-Id", "")] = body
                else:
                    receiver.refused += 1
                self.send_response(200 if ok else 401)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    @contextmanager
    def running(self) -> Iterator[WebhookReceiver]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


def new_customer(ctx: TourContext, token: str, *, email: str, phone: str | None = None, **extra: Any) -> str:
    identities = [{"type": "email", "value": email}, *([{"type": "phone", "value": phone}] if phone else [])]
    body: dict[str, Any] = {"source": "web", "identities": identities, **extra}
    return str(expect(ctx.call("POST", "/customers", token=token, body=body), 201, "customer").body["customer_id"])


def request_message(
    ctx: TourContext, token: str, customer: str, channel: str, *, purpose: str = "transactional"
) -> str:
    body = {
        "customer_id": customer,
        "purpose": purpose,
        "channel": channel,
        "content": {channel: CHANNEL_CONTENT[channel]},
    }
    key = new_id("tour").lower()
    answer = expect(
        ctx.call("POST", "/messages", token=token, body=body, headers={"Idempotency-Key": key}), 202, channel
    )
    return str(answer.body["message_id"])


def status_of(ctx: TourContext, token: str, message_id: str) -> dict[str, Any]:
    return dict(expect(ctx.call("GET", f"/messages/{message_id}", token=token), 200, "message").body)


def statuses(ctx: TourContext, token: str, ids: dict[str, str]) -> str:
    """Each awaited message's status and the policy's reason, for a wait that ran out."""
    found = []
    for name, message_id in ids.items():
        message = status_of(ctx, token, message_id)
        found.append(f"{name}: {message['status']}" + (f" ({message['reason']})" if message.get("reason") else ""))
    return "; ".join(found)


def every_channel(ctx: TourContext) -> dict[str, Any]:
    """Send on every channel and check each provider holds it; answers what the checks found."""
    from infra.local.messaging.client import LocalMessaging

    staff, admin = ctx.token(group="marketer"), ctx.token(group="admin")
    run = new_id("bc").lower()
    email, phone = f"{run}@example.org", f"+1415555{int(run[-6:], 36) % 10000:04d}"
    customer = new_customer(ctx, staff, email=email, phone=phone)
    own = ctx.token(customer_id=customer)
    device = expect(
        ctx.call("POST", "/me/devices", token=own, body={"platform": "fcm", "token": f"fcm-{run}"}), 201, "device"
    ).body
    found: dict[str, Any] = {}
    with WebhookReceiver(ctx.cloud.clock.now).running() as receiver:
        registered = ctx.call(
            "POST", "/webhooks/endpoints", token=admin, body={"url": receiver.url, "customer_id": customer}
        )
        receiver.secret = expect(registered, 201, "webhook endpoint").body["secret"]
        ids = {channel: request_message(ctx, staff, customer, channel) for channel in CHANNEL_CONTENT}
        wait_for(
            lambda: all(status_of(ctx, staff, i)["status"] in DONE for i in ids.values()),
            timeout=240,
            interval=1,
            what="a message sent on every channel",
            state=lambda: statuses(ctx, staff, ids),
        )
        wait_for(lambda: ids["webhook"] in receiver.verified, timeout=10, what="the signed webhook delivery")
        found["webhook"] = receiver.verified[ids["webhook"]]
        found["webhook_refused"] = receiver.refused
    messaging = LocalMessaging(ctx.cloud.endpoint_url)
    mailbox = local_mail.call(f"?recipient={email}&limit=10", endpoint=ctx.cloud.endpoint_url)["Messages"]
    found["email"] = mailbox
    texts = messaging.sms(phone)
    found["sms"] = [t for t in texts if t.get("channel") != "VOICE"]
    found["voice"] = [t for t in texts if t.get("channel") == "VOICE"]
    found["push"] = [m for e in messaging.push(device["endpoint_arn"]) for m in e.get("messages", [])]
    found["whatsapp"] = messaging.whatsapp(phone)
    inbox = expect(ctx.call("GET", "/me/inbox", token=own), 200, "inbox").body
    found["in_app"] = [i for i in inbox["items"] if i["message_id"] == ids["in_app"]]
    expect(ctx.call("POST", f"/me/inbox/{ids['in_app']}/read", token=own), 200, "inbox item read")
    found["unread_after"] = expect(ctx.call("GET", "/me/inbox", token=own), 200, "inbox").body["unread"]
    found["ids"] = ids
    for channel in CHANNEL_CONTENT:
        if not found[channel]:
            raise AssertionError(f"the {channel} provider holds nothing for the message sent on {channel}")
    return found


def other_outcomes(ctx: TourContext) -> dict[str, str]:
    """A message suppressed for lack of consent, one deferred by quiet hours, one bounced; their ids by outcome."""
    staff = ctx.token(group="marketer")
    run = new_id("bo").lower()
    no_consent = new_customer(ctx, staff, email=f"{run}-nc@example.org")
    local_hour = ctx.cloud.clock.now().hour
    quiet = {"start": f"{(local_hour - 1) % 24:02d}:00", "end": f"{(local_hour + 2) % 24:02d}:00"}
    granted = [
        {
            "channel": "email",
            "purpose": "marketing",
            "state": "granted",
            "proof": {"source": "web", "captured_at": "2026-11-20T09:00:00+00:00"},
        }
    ]
    sleeping = new_customer(ctx, staff, email=f"{run}-q@example.org", consents=granted)
    expect(
        ctx.call(
            "PATCH",
            f"/customers/{sleeping}",
            token=staff,
            body={"preferences": {"time_zone": "UTC", "quiet_hours": quiet}},
        ),
        200,
        "quiet hours",
    )
    bouncing = new_customer(ctx, staff, email=f"bounce+{run}@simulator.amazonses.com")
    ids = {
        "suppressed": request_message(ctx, staff, no_consent, "email", purpose="marketing"),
        "deferred": request_message(ctx, staff, sleeping, "email", purpose="marketing"),
        "bounced": request_message(ctx, staff, bouncing, "email"),
    }
    wait_for(
        lambda: all(status_of(ctx, staff, i)["status"] == outcome for outcome, i in ids.items()),
        timeout=240,
        interval=1,
        what="a message suppressed, one deferred and one bounced",
        state=lambda: statuses(ctx, staff, ids),
    )
    return ids


def counts(ctx: TourContext, requested: dict[str, str]) -> dict[str, Counter[str]]:
    """Statuses per channel of the messages (id -> channel requested: a message suppressed before the
    policy chose a channel counts on the one it was requested on)."""
    staff = ctx.token(group="marketer")
    by_channel: dict[str, Counter[str]] = {}
    for message_id, channel in requested.items():
        view = status_of(ctx, staff, message_id)
        by_channel.setdefault(view["channel"] or channel, Counter())[view["status"]] += 1
    return by_channel


def line_of(by_channel: dict[str, Counter[str]]) -> str:
    parts = []
    for channel in sorted(by_channel):
        tally = by_channel[channel]
        parts.append(f"{channel} " + "/".join(str(tally.get(s, 0)) for s in STATUSES))
    return f"{' '.join(STATUSES).replace(' ', '/')} per channel: " + ", ".join(parts)


def every_channel_step(ctx: TourContext) -> str:
    found = every_channel(ctx)
    requested = {message_id: channel for channel, message_id in found["ids"].items()}
    ctx.facts["broadcast_messages"] = requested
    return f"every channel reached its provider; {line_of(counts(ctx, requested))}"


def outcomes_step(ctx: TourContext) -> str:
    requested = dict(ctx.facts.get("broadcast_messages", {}))
    requested |= {message_id: "email" for message_id in other_outcomes(ctx).values()}
    return line_of(counts(ctx, requested))


STEPS = [
    Step("Broadcast: one message on every channel, each held by its provider", every_channel_step),
    Step(
        "Broadcast: what the policy did, per channel (one unconsented, one in quiet hours, one bounced)", outcomes_step
    ),
]
