"""Broadcast's senders dying mid-batch, and every phone, push and WhatsApp provider's feedback, on the local cloud.

A sender sandbox is killed after some AWS calls of its first batch (the local cloud's crash fault: Lambda
reports `Runtime.ExitError` and the queue delivers the whole batch again), while the same request batch is
sent twice. Each message is then counted where its provider keeps it (the local SES's mailbox, End User
Messaging's texts): one each. A message the dead sandbox had claimed is settled by the provider's own event
when the provider took it, or sent once its lease and grace ran out (the clock moved) when it did not.

Feedback: End User Messaging's delivery and carrier-blocked events, WhatsApp's statuses and SNS's report of
a push token the provider refused (which names only SNS's message id) reach each message's status and the
customer's timeline; the refused token retires the device, so the next push finds no device to reach.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from ecrm.core.ids import new_id
from ecrm_ops import local_mail
from ecrm_ops.tour.context import TourContext, expect, wait_for

from infra.local.cloud import LocalCloud
from infra.local.messaging.client import LocalMessaging

GRANTED_EMAIL = {
    "channel": "email",
    "purpose": "marketing",
    "state": "granted",
    "proof": {"source": "web", "captured_at": "2026-11-20T09:00:00+00:00"},
}
CONTENT = {
    "email": {"subject": "Winter sale", "text": "Hello", "html": "<p>Hello</p>"},
    "sms": {"body": "Your order ships today."},
    "push": {"title": "Your order", "body": "It ships today."},
    "whatsapp": {"template_name": "ecrm_notice", "language": "en_US"},
}
# The sender's lease plus its evidence grace (`SendingSettings`), and a minute more.
PAST_THE_LEASE = timedelta(minutes=4)
SETTLED = {"sent", "delivered"}


def phone_number(run: str, n: int) -> str:
    return f"+1415556{(int(run[-6:], 36) * 10 + n) % 10000:04d}"


def new_customer(tour: TourContext, token: str, *, email: str, phone: str | None = None) -> str:
    identities = [{"type": "email", "value": email}, *([{"type": "phone", "value": phone}] if phone else [])]
    body = {"source": "web", "identities": identities, "consents": [GRANTED_EMAIL]}
    return str(expect(tour.call("POST", "/customers", token=token, body=body), 201, "customer").body["customer_id"])


def request(tour: TourContext, token: str, customer: str, channel: str, key: str, purpose: str) -> str:
    body = {"customer_id": customer, "purpose": purpose, "channel": channel, "content": {channel: CONTENT[channel]}}
    answer = wait_for(  # the key makes asking again safe when the gateway timed out
        lambda: (
            (found := tour.call("POST", "/messages", token=token, body=body, headers={"Idempotency-Key": key})).status
            < 500
            and found
        ),
        timeout=120,
        interval=1,
        what=f"the {channel} message accepted",
    )
    return str(expect(answer, 202, f"{channel} message").body["message_id"])


def status_of(tour: TourContext, token: str, message_id: str) -> dict[str, Any]:
    """The message's view; a gateway error (the API's sandbox timed out on a loaded machine) is asked again."""
    answer = wait_for(
        lambda: (found := tour.call("GET", f"/messages/{message_id}", token=token)).status < 500 and found,
        timeout=120,
        interval=1,
        what=f"the API's answer about {message_id}",
    )
    return dict(expect(answer, 200, "message").body)


def statuses(tour: TourContext, token: str, ids: list[str]) -> str:
    return "; ".join(f"{i}: {status_of(tour, token, i)['status']}" for i in ids)


def mailbox(cloud: LocalCloud, recipient: str) -> list[dict[str, Any]]:
    return list(local_mail.call(f"?recipient={recipient}&limit=50", endpoint=cloud.endpoint_url)["Messages"])


def texts(messaging: LocalMessaging, number: str) -> list[dict[str, Any]]:
    return [t for t in messaging.sms(number) if t.get("channel") != "VOICE"]


def api_ready(tour: TourContext, token: str) -> None:
    """The broadcast API answers (run alone, this file meets it cold, and a cold start on a loaded machine can
    outlast the function's timeout once)."""
    wait_for(
        lambda: tour.call("GET", "/messages/msg_0", token=token).status < 500,
        timeout=300,
        interval=1,
        what="the broadcast API",
    )


def has_evidence(cloud: LocalCloud, message_id: str) -> bool:
    """Whether the feedback kept the provider's word on the message while its sender held it (`EVIDENCE`)."""
    table = cloud.physical_id("AWS::DynamoDB::Table", "BroadcastTable")
    key = {"pk": {"S": f"MSG#{message_id}"}, "sk": {"S": "EVIDENCE"}}
    return "Item" in cloud.client("dynamodb").get_item(TableName=table, Key=key, ConsistentRead=True)


def settle_after_crash(
    cloud: LocalCloud, tour: TourContext, token: str, held: dict[str, Callable[[], int]]
) -> Callable[[], bool]:
    """A wait's condition: every message (id -> how many the provider keeps for its address) settled.

    The claims the dead sandbox left are waited out by moving the clock past their lease and grace, once: one
    with nothing at the provider is then sent, one the provider took is settled by its event. Time runs on for
    every message at once, so the clock moves only when each message the provider did take has its event kept
    by the feedback (`EVIDENCE`): in AWS the provider's event comes within the grace, and a clock moved before
    it would stand for an event later than the grace, the one case the design sends again (ADR 12).
    """
    moved: list[bool] = []

    def settled() -> bool:
        found = {i: status_of(tour, token, i)["status"] for i in held}
        sending = [i for i, s in found.items() if s == "sending"]
        unheard = [i for i in sending if held[i]() > 0 and not has_evidence(cloud, i)]
        if sending and not unheard and not moved and cloud.faults.hits("lambda"):
            cloud.clock.advance(PAST_THE_LEASE)
            moved.append(True)
        return all(s in SETTLED for s in found.values())

    return settled


def test_a_sender_killed_mid_batch_and_a_rerun_send_every_message_once(
    cloud: LocalCloud, tour: TourContext, staff_token: str
) -> None:
    # Given eight customers who granted email marketing and four with a phone
    api_ready(tour, staff_token)
    run = new_id("bf").lower()
    emails = [f"{run}-{n}@example.org" for n in range(8)]
    phones = [phone_number(run, n) for n in range(4)]
    customers = [
        new_customer(tour, staff_token, email=e, phone=phones[n] if n < 4 else None) for n, e in enumerate(emails)
    ]
    messaging = LocalMessaging(cloud.endpoint_url)
    # And the email and SMS senders' first batches killed after some AWS calls: mid-batch, past a provider call
    earlier = len(cloud.faults.hits("lambda"))  # the cloud's fault log keeps earlier tests' faults
    cloud.faults.load("lambda:BroadcastSendEmail=crash@after:13#1,lambda:BroadcastSendSms=crash@after:8#1")
    try:
        # When the batch is requested, then requested again (a re-run) with the same keys
        def batch() -> tuple[list[str], list[str]]:
            mails = [
                request(tour, staff_token, c, "email", f"{run}-e{n}", "marketing") for n, c in enumerate(customers)
            ]
            sms = [
                request(tour, staff_token, c, "sms", f"{run}-s{n}", "transactional")
                for n, c in enumerate(customers[:4])
            ]
            return mails, sms

        mail_ids, sms_ids = batch()
        assert batch() == (mail_ids, sms_ids)

        # Then every message settles
        held = {i: (lambda e=e: len(mailbox(cloud, e))) for e, i in zip(emails, mail_ids, strict=True)}
        held |= {i: (lambda p=p: len(texts(messaging, p))) for p, i in zip(phones, sms_ids, strict=True)}
        wait_for(
            settle_after_crash(cloud, tour, staff_token, held),
            timeout=300,
            interval=1,
            what="every email and text sent after the crash",
            state=lambda: statuses(tour, staff_token, mail_ids + sms_ids),
        )
        crashes = sorted(c.fault for c in cloud.faults.hits("lambda")[earlier:])
    finally:
        cloud.faults.clear()

    # And each sender was killed once, yet each recipient holds exactly one email and one text
    assert crashes == ["crash@after:13", "crash@after:8"]
    assert [len(mailbox(cloud, e)) for e in emails] == [1] * 8
    assert [len(texts(messaging, p)) for p in phones] == [1] * 4


def timeline_of(tour: TourContext, token: str, customer: str) -> list[dict[str, Any]]:
    page = expect(tour.call("GET", f"/customers/{customer}/timeline?limit=100", token=token), 200, "timeline").body
    return list(page["items"])


def on_timeline(tour: TourContext, token: str, customer: str, message_id: str) -> set[str]:
    """The steps the message's line on the timeline went through (its type is the highest of them)."""
    lines = [i for i in timeline_of(tour, token, customer) if message_id in json.dumps(i)]
    steps = {f"message_{step['status']}" for line in lines for step in line["properties"].get("history", [])}
    return {line["type"] for line in lines} | steps


def test_phone_push_and_whatsapp_feedback_reach_the_message_and_the_timeline(
    cloud: LocalCloud, tour: TourContext, staff_token: str
) -> None:
    api_ready(tour, staff_token)
    run = new_id("fb").lower()
    messaging = LocalMessaging(cloud.endpoint_url)
    # Given a customer whose texts are delivered, one whose carrier blocks them, and a device registered
    reached, blocked = phone_number(run, 1), phone_number(run, 2)
    customer = new_customer(tour, staff_token, email=f"{run}-a@example.org", phone=reached)
    unlucky = new_customer(tour, staff_token, email=f"{run}-b@example.org", phone=blocked)
    messaging.sms_outcome(blocked, "TEXT_BLOCKED")
    own = tour.token(customer_id=customer)
    device = expect(
        tour.call("POST", "/me/devices", token=own, body={"platform": "fcm", "token": f"fcm-{run}"}), 201, "device"
    ).body
    # And the push provider refusing the device's token from now on
    messaging.invalidate_push_token(device["endpoint_arn"])

    # When a text goes to each, a WhatsApp message and a push to the first
    ids = {
        "sms": request(tour, staff_token, customer, "sms", f"{run}-sms", "transactional"),
        "blocked": request(tour, staff_token, unlucky, "sms", f"{run}-blocked", "transactional"),
        "whatsapp": request(tour, staff_token, customer, "whatsapp", f"{run}-wa", "transactional"),
        "push": request(tour, staff_token, customer, "push", f"{run}-push", "transactional"),
    }
    expected = {"sms": "delivered", "blocked": "failed", "whatsapp": "delivered", "push": "failed"}

    # Then each message's status is what its provider reported
    wait_for(
        lambda: all(status_of(tour, staff_token, ids[k])["status"] == v for k, v in expected.items()),
        timeout=300,
        interval=1,
        what="each provider's feedback on its message",
        state=lambda: statuses(tour, staff_token, list(ids.values())),
    )
    assert status_of(tour, staff_token, ids["blocked"])["reason"] == "provider:TEXT_BLOCKED"
    assert status_of(tour, staff_token, ids["push"])["reason"] == "permanent:InvalidPlatformToken"
    # And the customers' timelines show the deliveries and the failure
    wait_for(
        lambda: (
            "message_delivered" in on_timeline(tour, staff_token, customer, ids["sms"])
            and "message_delivered" in on_timeline(tour, staff_token, customer, ids["whatsapp"])
            and "message_failed" in on_timeline(tour, staff_token, unlucky, ids["blocked"])
            and "message_failed" in on_timeline(tour, staff_token, customer, ids["push"])
        ),
        timeout=180,
        interval=1,
        what="the feedback on the customers' timelines",
    )

    # And the refused token retired the device: the next push finds no device to reach
    def retired() -> bool:
        again = request(tour, staff_token, customer, "push", new_id("push").lower(), "transactional")
        wait_for(
            lambda: status_of(tour, staff_token, again)["status"] not in {"requested", "queued", "sending"},
            timeout=120,
            what="the second push decided",
        )
        return status_of(tour, staff_token, again)["status"] == "suppressed"

    wait_for(retired, timeout=240, interval=2, what="the device retired by the push feedback")
    (endpoint,) = messaging.push(device["endpoint_arn"])
    assert (endpoint["enabled"], endpoint["tokenValid"], len(endpoint["failed"])) == (False, False, 1)
