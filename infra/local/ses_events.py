"""SES's email sending events, in SES's own shapes, and their delivery to event destinations.

The record is the one SES publishes through a configuration set's event destination (`eventType`,
`mail`, and one object named for the type: `send`, `delivery`, `bounce`, ...), as the SES developer
guide's examples show and `events/samples/ses/` keeps them. An EventBridge destination puts it on the
default bus as the `detail` of an event with `source` `aws.ses`, the configuration set's ARN in
`resources` and one detail-type per event type; an SNS destination publishes the record itself.
CloudWatch and Firehose destinations are accepted and not served.

`now()` is the one clock of the local SES: every timestamp and the send quota read it, so a movable
local clock can replace it.

SES publishes a send's events after its API call has answered, asynchronously: a caller writing down what it
sent (a sender settling its message) normally does so before the `Send` and `Delivery` events reach anyone.
The local SES does the same: a record is made, timestamped and counted when the event happens, and handed
to its destinations by one publisher thread, in order, `PUBLISH_AFTER_S` later. Published inside the call, the
events reached the broadcast engine's feedback before the sender had written its own `sent`, on every
email, which no deployment sees. `flush()` waits until every event made so far is published.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from infra.local import emulated_time

logger = logging.getLogger(__name__)

# MatchingEventTypes -> (eventType, the record's object, EventBridge detail-type)
EVENT_TYPES: dict[str, tuple[str, str, str]] = {
    "SEND": ("Send", "send", "Email Sent"),
    "REJECT": ("Reject", "reject", "Email Rejected"),
    "BOUNCE": ("Bounce", "bounce", "Email Bounced"),
    "COMPLAINT": ("Complaint", "complaint", "Email Complaint Received"),
    "DELIVERY": ("Delivery", "delivery", "Email Delivered"),
    "OPEN": ("Open", "open", "Email Opened"),
    "CLICK": ("Click", "click", "Email Clicked"),
    "RENDERING_FAILURE": ("Rendering Failure", "failure", "Email Rendering Failed"),
    "DELIVERY_DELAY": ("DeliveryDelay", "deliveryDelay", "Email Delivery Delayed"),
    "SUBSCRIPTION": ("Subscription", "subscription", "Email Subscribed"),
}
LOCAL_IP = "127.0.0.1"  # the local cloud only listens there: the caller's and the recipient's address
REPORTING_MTA = "a0-0.smtp-out.local.amazonses.com"
CALLER_IDENTITY = "local"
USER_AGENT = "Mozilla/5.0 (local cloud mailbox)"


def now() -> datetime:
    """The local SES's time (aware UTC): the local cloud's clock (`infra.local.emulated_time`)."""
    return emulated_time.now()


def iso_ms(moment: datetime) -> str:
    """SES's timestamps: `2016-10-19T23:20:52.240Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def message_id(moment: datetime) -> str:
    """An id shaped as SES's: `0100019a5c3e7b21-6f1d2c3b-4a5e-4f60-9b7c-8d9e0f1a2b3c-000000`."""
    return f"{int(moment.timestamp() * 1000):016x}-{uuid.uuid4()}-000000"


def feedback_id(moment: datetime) -> str:
    return message_id(moment)


def mail_object(mail: Any, *, delivered: bool) -> dict[str, Any]:
    """`mail` of a record; `mail` is a `infra.local.ses.SentMail`. `ses:outgoing-ip` once it left SES."""
    tags: dict[str, list[str]] = {
        "ses:operation": [mail.operation],
        "ses:configuration-set": [mail.configuration_set],
        "ses:source-ip": [LOCAL_IP],
        "ses:from-domain": [mail.from_domain],
        "ses:caller-identity": [CALLER_IDENTITY],
    }
    if delivered:
        tags["ses:outgoing-ip"] = [LOCAL_IP]
    for tag in mail.tags:
        tags.setdefault(tag["Name"], []).append(tag["Value"])
    return {
        "timestamp": iso_ms(mail.sent_at),
        "source": mail.source,
        "sourceArn": mail.source_arn,
        "sendingAccountId": mail.account,
        "messageId": mail.message_id,
        "destination": list(mail.destination),
        "headersTruncated": False,
        "headers": mail.headers,
        "commonHeaders": mail.common_headers,
        "tags": tags,
    }


def record(matching_type: str, mail: Any, body: dict[str, Any]) -> dict[str, Any]:
    """The event record SES publishes (the EventBridge event's `detail`)."""
    event_type, key, _ = EVENT_TYPES[matching_type]
    delivered = matching_type not in {"SEND", "REJECT", "RENDERING_FAILURE"}
    return {"eventType": event_type, "mail": mail_object(mail, delivered=delivered), key: body}


def eventbridge_event(matching_type: str, detail: dict[str, Any], *, mail: Any, moment: datetime) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": EVENT_TYPES[matching_type][2],
        "source": "aws.ses",
        "account": mail.account,
        "time": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": mail.region,
        "resources": [f"arn:aws:ses:{mail.region}:{mail.account}:configuration-set/{mail.configuration_set}"],
        "detail": detail,
    }


# -- the objects of each event type ------------------------------------------------------------------
def delivery(recipients: list[str], *, sent_at: datetime, moment: datetime) -> dict[str, Any]:
    return {
        "timestamp": iso_ms(moment),
        "processingTimeMillis": max(0, int((moment - sent_at).total_seconds() * 1000)),
        "recipients": recipients,
        "smtpResponse": "250 2.6.0 Message received",
        "remoteMtaIp": LOCAL_IP,
        "reportingMTA": REPORTING_MTA,
    }


def bounce(
    recipients: list[dict[str, str]], *, bounce_type: str, sub_type: str, moment: datetime, dsn: bool = True
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "bounceType": bounce_type,
        "bounceSubType": sub_type,
        "bouncedRecipients": recipients,
        "timestamp": iso_ms(moment),
        "feedbackId": feedback_id(moment),
    }
    if dsn:
        body["remoteMtaIp"] = LOCAL_IP
        body["reportingMTA"] = f"dsn; {REPORTING_MTA}"
    return body


def complaint(recipients: list[str], *, moment: datetime, sub_type: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "feedbackId": feedback_id(moment),
        "complaintSubType": sub_type,
        "complainedRecipients": [{"emailAddress": r} for r in recipients],
        "timestamp": iso_ms(moment),
    }
    if sub_type is None:  # a feedback report came with it
        body.update(
            {
                "userAgent": "Amazon SES Mailbox Simulator",
                "complaintFeedbackType": "abuse",
                "arrivalDate": iso_ms(moment),
            }
        )
    return body


def opened(*, moment: datetime, user_agent: str = USER_AGENT) -> dict[str, Any]:
    return {"timestamp": iso_ms(moment), "userAgent": user_agent, "ipAddress": LOCAL_IP}


def clicked(
    link: str, link_tags: dict[str, list[str]], *, moment: datetime, user_agent: str = USER_AGENT
) -> dict[str, Any]:
    body: dict[str, Any] = {"timestamp": iso_ms(moment), "ipAddress": LOCAL_IP, "userAgent": user_agent, "link": link}
    if link_tags:
        body["linkTags"] = link_tags
    return body


DELAY_STATUS = {  # delayType -> (status, diagnostic code) of a delayed recipient
    "MailboxFull": ("4.2.2", "smtp; 452 4.2.2 Mailbox full"),
    "TransientCommunicationFailure": ("4.4.1", "smtp; 421 4.4.1 Connection timed out"),
    "RecipientServerError": ("4.3.0", "smtp; 451 4.3.0 Temporary server error"),
    "SpamDetected": ("4.7.1", "smtp; 450 4.7.1 Message deferred as possible spam"),
    "IPFailure": ("4.7.0", "smtp; 421 4.7.0 IP not authorized, try again later"),
    "InternalFailure": ("4.0.0", "smtp; 451 4.0.0 Internal failure"),
    "Undetermined": ("4.0.0", "smtp; 450 4.0.0 Delivery deferred"),
    "SendingDeferral": ("4.0.0", "smtp; 450 4.0.0 Sending deferred by SES"),
}


def delivery_delay(recipients: list[str], *, delay_type: str, moment: datetime, expires: datetime) -> dict[str, Any]:
    """SES's `deliveryDelay` object: SES keeps retrying until `expirationTime`."""
    status, diagnostic = DELAY_STATUS[delay_type]
    return {
        "timestamp": iso_ms(moment),
        "delayType": delay_type,
        "expirationTime": iso_ms(expires),
        "delayedRecipients": [{"emailAddress": r, "status": status, "diagnosticCode": diagnostic} for r in recipients],
        "reportingMTA": REPORTING_MTA,
    }


def subscription(
    contact_list: str, *, topic: str | None, unsubscribe_all: bool, moment: datetime, source: str
) -> dict[str, Any]:
    """SES's `subscription` object: a recipient's preferences changed through SES's subscription management."""
    topics = [{"topicName": topic, "subscriptionStatus": "OptOut"}] if topic and not unsubscribe_all else []
    before = [{"topicName": topic, "subscriptionStatus": "OptIn"}] if topic and not unsubscribe_all else []
    return {
        "contactList": contact_list,
        "timestamp": iso_ms(moment),
        "source": source,
        "newTopicPreferences": {"unsubscribeAll": unsubscribe_all, "topicSubscriptionStatus": topics},
        "oldTopicPreferences": {"unsubscribeAll": False, "topicSubscriptionStatus": before},
    }


def rendering_failure(template_name: str, error: str) -> dict[str, Any]:
    return {"templateName": template_name, "errorMessage": error}


# -- destinations ------------------------------------------------------------------------------------
PUBLISH_AFTER_S = 0.5


class _Publisher:
    """One daemon thread handing records to their destinations in the order they were made, each no sooner than
    `PUBLISH_AFTER_S` after it was made."""

    def __init__(self) -> None:
        self.pending: queue.Queue[tuple[float, Callable[[], None]]] = queue.Queue()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def submit(self, publication: Callable[[], None]) -> None:
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="local-ses-events", daemon=True)
                self.thread.start()
        self.pending.put((time.monotonic() + PUBLISH_AFTER_S, publication))

    def _run(self) -> None:
        while True:
            due, publication = self.pending.get()
            try:
                time.sleep(max(0.0, due - time.monotonic()))
                publication()
            except Exception:  # a destination's failure is logged where it happens; the publisher goes on
                logger.exception("SES event publication failed")
            finally:
                self.pending.task_done()


_publisher = _Publisher()


def flush() -> None:
    """Return once every event made so far has reached its destinations."""
    _publisher.pending.join()


def publish(destinations: list[dict[str, Any]], matching_type: str, mail: Any, body: dict[str, Any]) -> int:
    """Make the record now and hand it to every enabled destination of the configuration set that matches the
    type, after the call has answered (`PUBLISH_AFTER_S`); answers how many destinations it goes to."""
    moment = now()
    detail = record(matching_type, mail, body)
    matching = [d for d in destinations if d.get("Enabled", True) and matching_type in d.get("MatchingEventTypes", [])]

    def publication() -> None:
        for destination in matching:
            try:
                _send(destination, matching_type, detail, mail=mail, moment=moment)
            except Exception:  # SES never fails a send because an event could not be published
                logger.exception(
                    "SES event %s for %s: destination %s failed", matching_type, mail.message_id, destination
                )

    if matching:
        _publisher.submit(publication)
    return sum(1 for d in matching if "EventBridgeDestination" in d or "SnsDestination" in d)


def _send(
    destination: dict[str, Any], matching_type: str, detail: dict[str, Any], *, mail: Any, moment: datetime
) -> int:
    if "EventBridgeDestination" in destination:
        from infra.local.s3_notifications import deliver

        deliver(eventbridge_event(matching_type, detail, mail=mail, moment=moment))
        return 1
    if "SnsDestination" in destination:
        from moto.sns.models import sns_backends

        topic = destination["SnsDestination"]["TopicArn"]
        _, _, _, region, account, _ = topic.split(":", 5)
        sns_backends[account][region].publish(json.dumps(detail), arn=topic)
        return 1
    return 0
