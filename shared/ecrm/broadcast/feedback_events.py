"""What providers tell us after a send, read into one shape: `ProviderFeedback` (pure: no AWS SDK).

`parse_feedback(body)` reads one SQS record's JSON body of the feedback queue:

- an EventBridge event: SES (`source` `aws.ses`, the SES event record in `detail`), End User Messaging
  SMS/voice (`aws.sms-voice`, the delivery event in `detail`) or Social (`aws.social-messaging`, the
  WhatsApp envelope in `detail`);
- an SNS notification (`Type` `Notification`, `Message` a JSON text), or the same message delivered raw:
  an SES event record (an SNS event destination), an End User Messaging SMS/voice event, an inbound
  two-way SMS, an SNS mobile push application event (DeliveryFailure, EndpointUpdated/Created/Deleted),
  or a WhatsApp event (AWS's envelope around Meta's webhook entry: statuses or inbound messages).

A failure's `detail["code"]` names it in one word (`TEXT_INVALID`, `InvalidPlatformToken`, Meta's
error code, `rejected`, `rendering_failure`). Our message id is read where each provider carries it:
SES message tags (`message_id`), End User Messaging `context.message_id`, WhatsApp
`biz_opaque_callback_data`; push and inbound feedback name the provider's ids only (the feedback service finds
a push's message through the provider id its sender recorded). An informational
event (a ringing phone, a deleted WhatsApp status) is an empty list; a body of no known shape raises
`UnknownFeedback` (the core dead-letters it, nothing is guessed).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

FeedbackKind = Literal[
    "sent",
    "delivered",
    "bounced",
    "complained",
    "opened",
    "clicked",
    "failed",
    "delayed",
    "opted_out",
    "opted_in",
    "help",
    "endpoint_disabled",
    "inbound",
]

# Keywords of a reply (its first word), as carriers and AWS's opt-out handling read them.
OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "ARRET", "OPT-OUT", "OPTOUT", "REMOVE", "TD"}
)
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_KEYWORDS = frozenset({"HELP", "INFO", "AIDE"})

# End User Messaging SMS/voice/MMS statuses (`eventType` after its channel prefix).
_PHONE_STATUS: dict[str, FeedbackKind | None] = {
    "SENT": "sent",
    "PENDING": "sent",
    "QUEUED": "sent",
    "SUCCESSFUL": "sent",
    "INITIATED": "sent",
    "DELIVERED": "delivered",
    "ANSWERED": "delivered",
    "RINGING": None,
    "COMPLETED": None,  # after ANSWERED
    "UNKNOWN": None,  # no final status from the carrier within 72 hours: the message stays sent
}
_PHONE_PERMANENT = frozenset({"INVALID"})  # the number does not exist: suppress it
# WhatsApp (Meta) error codes that will fail again for this recipient.
_WHATSAPP_PERMANENT = frozenset({131026, 131050, 131021, 131030})
_WHATSAPP_STATUS: dict[str, FeedbackKind | None] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "opened",
    "failed": "failed",
    "deleted": None,
}
_FRACTION = re.compile(r"(\.\d{6})\d+")


class UnknownFeedback(ValueError):
    """A body of no shape this parser knows (or missing what its shape requires)."""


@dataclass(frozen=True)
class ProviderFeedback:
    kind: FeedbackKind
    channel: str
    message_id: str | None
    address: str | None
    occurred_at: datetime
    permanent: bool = False
    provider_message_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


def parse_feedback(body: Mapping[str, Any]) -> list[ProviderFeedback]:
    if not isinstance(body, Mapping):
        raise UnknownFeedback("a feedback body is a JSON object")
    try:
        if body.get("Type") == "Notification" and isinstance(body.get("Message"), str):
            return _payload(_json(body["Message"]), _time(body.get("Timestamp")))
        if "detail" in body and "source" in body:
            return _eventbridge(body)
        return _payload(body, None)
    except UnknownFeedback:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise UnknownFeedback(f"malformed provider feedback: {type(exc).__name__}: {exc}") from None


def _json(text: str) -> Mapping[str, Any]:
    value = json.loads(text)
    if not isinstance(value, Mapping):
        raise UnknownFeedback("the message is not a JSON object")
    return value


def _time(value: Any) -> datetime | None:
    """ISO 8601 (`Z`, up to nanoseconds), Unix milliseconds or seconds as text: aware UTC; None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        number = float(value)
        return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, UTC)
    parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", str(value)).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _at(*candidates: Any) -> datetime:
    for candidate in candidates:
        moment = candidate if isinstance(candidate, datetime) else _time(candidate)
        if moment is not None:
            return moment
    raise UnknownFeedback("the event has no time")


def _eventbridge(event: Mapping[str, Any]) -> list[ProviderFeedback]:
    source, detail, at = event["source"], event["detail"], _time(event.get("time"))
    if source == "aws.ses":
        return _ses(detail, at)
    if source == "aws.sms-voice":
        return _phone_event(detail, at)
    if source == "aws.social-messaging" and "whatsAppWebhookEntry" in detail:
        return _whatsapp(detail, at)
    raise UnknownFeedback(f"no feedback is read from EventBridge source {source!r}")


def _payload(payload: Mapping[str, Any], at: datetime | None) -> list[ProviderFeedback]:
    event_type = str(payload.get("eventType") or "")
    if event_type and "mail" in payload:
        return _ses(payload, at)
    if event_type.startswith(("TEXT_", "VOICE_", "MEDIA_")):
        return _phone_event(payload, at)
    if "originationNumber" in payload and "messageBody" in payload:
        return _inbound_sms(payload, at)
    if payload.get("EventType") in {"DeliveryFailure", "EndpointUpdated", "EndpointCreated", "EndpointDeleted"}:
        return _push(payload, at)
    if "whatsAppWebhookEntry" in payload:
        return _whatsapp(payload, at)
    raise UnknownFeedback("a message of no known provider shape")


# -- SES ---------------------------------------------------------------------------------------------------
def _ses(record: Mapping[str, Any], at: datetime | None) -> list[ProviderFeedback]:
    mail, event_type = record["mail"], str(record["eventType"])
    ours = (mail.get("tags") or {}).get("message_id") or [None]
    message_id = ours[0] if isinstance(ours, list) else ours
    destination: list[str | None] = list(mail.get("destination") or []) or [None]

    def one(kind: FeedbackKind, address: str | None, body: Mapping[str, Any], **extra: Any) -> ProviderFeedback:
        when = _at(body.get("timestamp"), mail.get("timestamp"), at)
        return ProviderFeedback(
            kind, "email", message_id, address, when, provider_message_id=mail.get("messageId"), **extra
        )

    if event_type == "Send":
        return [one("sent", a, mail) for a in destination]
    if event_type == "Delivery":
        return [one("delivered", a, record["delivery"]) for a in record["delivery"].get("recipients") or destination]
    if event_type == "Bounce":
        bounce = record["bounce"]
        kind_of = {"bounce_type": bounce.get("bounceType"), "bounce_sub_type": bounce.get("bounceSubType")}
        return [
            one(
                "bounced",
                r["emailAddress"],
                bounce,
                permanent=bounce.get("bounceType") == "Permanent",
                detail=_clean(
                    kind_of
                    | {"status": r.get("status"), "action": r.get("action"), "diagnostic_code": r.get("diagnosticCode")}
                ),
            )
            for r in bounce.get("bouncedRecipients", [])
        ]
    if event_type == "Complaint":
        complaint = record["complaint"]
        detail = _clean(
            {
                "feedback_type": complaint.get("complaintFeedbackType"),
                "sub_type": complaint.get("complaintSubType"),
                "user_agent": complaint.get("userAgent"),
            }
        )
        return [
            one("complained", r["emailAddress"], complaint, detail=detail)
            for r in complaint.get("complainedRecipients", [])
        ]
    if event_type in {"Open", "Click"}:
        body = record[event_type.lower()]
        detail = _clean(
            {
                "ip_address": body.get("ipAddress"),
                "user_agent": body.get("userAgent"),
                "link": body.get("link"),
                "link_tags": body.get("linkTags"),
            }
        )
        return [one("opened" if event_type == "Open" else "clicked", a, body, detail=detail) for a in destination]
    if event_type == "Reject":
        return [
            one("failed", a, {}, permanent=True, detail={"code": "rejected", "reason": record["reject"].get("reason")})
            for a in destination
        ]
    if event_type == "Rendering Failure":
        failure = record["failure"]
        detail = _clean(
            {"code": "rendering_failure", "template": failure.get("templateName"), "error": failure.get("errorMessage")}
        )
        return [one("failed", a, {}, permanent=True, detail=detail) for a in destination]
    if event_type == "DeliveryDelay":
        delay = record["deliveryDelay"]
        return [
            one(
                "delayed",
                r["emailAddress"],
                delay,
                detail=_clean(
                    {
                        "delay_type": delay.get("delayType"),
                        "expiration_time": delay.get("expirationTime"),
                        "status": r.get("status"),
                        "diagnostic_code": r.get("diagnosticCode"),
                    }
                ),
            )
            for r in delay.get("delayedRecipients", [])
        ]
    if event_type == "Subscription":
        return _ses_subscription(record["subscription"], destination, one)
    raise UnknownFeedback(f"SES event type {event_type!r}")


def _ses_subscription(
    subscription: Mapping[str, Any], destination: list[str | None], one: Callable[..., ProviderFeedback]
) -> list[ProviderFeedback]:
    """SES subscription management changed a contact's topics: an opt-out (all, or topics) or an opt-in."""
    new = subscription.get("newTopicPreferences") or {}
    statuses = new.get("topicSubscriptionStatus") or []
    out = [t["topicName"] for t in statuses if t.get("subscriptionStatus") == "OptOut"]
    back = [t["topicName"] for t in statuses if t.get("subscriptionStatus") == "OptIn"]
    detail = _clean({"contact_list": subscription.get("contactList"), "source": subscription.get("source")})
    found: list[ProviderFeedback] = []
    for address in destination:
        if new.get("unsubscribeAll") or out:
            found.append(
                one(
                    "opted_out",
                    address,
                    subscription,
                    detail=detail | {"topics": out, "all": bool(new.get("unsubscribeAll"))},
                )
            )
        elif back:
            found.append(one("opted_in", address, subscription, detail=detail | {"topics": back}))
    return found


# -- End User Messaging SMS and voice ------------------------------------------------------------------------
def _phone_event(event: Mapping[str, Any], at: datetime | None) -> list[ProviderFeedback]:
    prefix, _, status = str(event["eventType"]).partition("_")
    if prefix not in {"TEXT", "VOICE", "MEDIA"}:
        raise UnknownFeedback(f"End User Messaging event type {event['eventType']!r}")
    kind = _PHONE_STATUS.get(status, "failed")
    if kind is None:
        return []
    context = event.get("context") or {}
    detail = _clean(
        {
            "code": event["eventType"] if kind == "failed" else None,
            "event_type": event["eventType"],
            "status": event.get("messageStatus"),
            "description": event.get("messageStatusDescription"),
            "country": event.get("isoCountryCode"),
            "parts": event.get("totalMessageParts"),
            "origination": event.get("originationPhoneNumber"),
        }
    )
    return [
        ProviderFeedback(
            kind,
            "voice" if prefix == "VOICE" else "sms",
            context.get("message_id"),
            event.get("destinationPhoneNumber"),
            _at(event.get("eventTimestamp"), at),
            permanent=kind == "failed" and status in _PHONE_PERMANENT,
            provider_message_id=event.get("messageId"),
            detail=detail,
        )
    ]


def keyword_kind(text: str, keyword: str | None = None) -> FeedbackKind:
    """What a reply asks for, read from its first word (or the keyword the provider matched)."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")  # ARRÊT -> ARRET
    words = [re.sub(r"[^A-Z-]", "", w) for w in plain.upper().split()[:1]]
    for candidate in [*words, (keyword or "").upper()]:
        if candidate in OPT_OUT_KEYWORDS:
            return "opted_out"
        if candidate in OPT_IN_KEYWORDS:
            return "opted_in"
        if candidate in HELP_KEYWORDS:
            return "help"
    return "inbound"


def _inbound_sms(inbound: Mapping[str, Any], at: datetime | None) -> list[ProviderFeedback]:
    body = str(inbound["messageBody"])
    detail = _clean(
        {
            "body": body,
            "keyword": inbound.get("messageKeyword"),
            "to": inbound.get("destinationNumber"),
            "in_reply_to": inbound.get("previousPublishedMessageId"),
        }
    )
    when = at or _time(inbound.get("timestamp"))
    if when is None:
        raise UnknownFeedback("an inbound SMS outside an SNS envelope needs a time")
    kind = keyword_kind(body, inbound.get("messageKeyword"))
    return [
        ProviderFeedback(
            kind,
            "sms",
            None,
            inbound["originationNumber"],
            when,
            provider_message_id=inbound.get("inboundMessageId"),
            detail=detail,
        )
    ]


# -- SNS mobile push --------------------------------------------------------------------------------------------
def _push(event: Mapping[str, Any], at: datetime | None) -> list[ProviderFeedback]:
    kind_name, endpoint, when = event["EventType"], event["EndpointArn"], _at(event.get("Time"), at)
    if kind_name == "DeliveryFailure":
        failure = str(event.get("FailureType") or "")
        detail = _clean(
            {
                "code": failure or None,
                "failure_type": failure,
                "failure_message": event.get("FailureMessage"),
                "application": event.get("Resource"),
                "attempts": event.get("DeliveryAttempts"),
            }
        )
        permanent = failure in {"InvalidPlatformToken", "EndpointDisabled"}
        return [
            ProviderFeedback(
                "failed",
                "push",
                None,
                endpoint,
                when,
                permanent=permanent,
                provider_message_id=event.get("MessageId"),
                detail=detail,
            )
        ]
    disabled = kind_name == "EndpointDeleted" or str(event.get("Enabled", "")).lower() == "false"
    if kind_name == "EndpointCreated" or not disabled:
        return []
    return [
        ProviderFeedback(
            "endpoint_disabled",
            "push",
            None,
            endpoint,
            when,
            permanent=True,
            detail={"event": kind_name, "application": event.get("Resource")},
        )
    ]


# -- WhatsApp (End User Messaging Social) ---------------------------------------------------------------------
def _whatsapp(envelope: Mapping[str, Any], at: datetime | None) -> list[ProviderFeedback]:
    entry = _json(envelope["whatsAppWebhookEntry"])
    fallback = _time(envelope.get("message_timestamp")) or at
    found: list[ProviderFeedback] = []
    for change in entry["changes"]:
        value = change["value"]
        for status in value.get("statuses") or []:
            kind = _WHATSAPP_STATUS.get(str(status["status"]))
            if kind is None:
                continue
            codes = {int(e["code"]) for e in status.get("errors") or [] if "code" in e}
            detail = _clean(
                {
                    "wamid": status.get("id"),
                    "status": status["status"],
                    "errors": sorted(codes) or None,
                    "code": str(min(codes)) if codes else None,
                }
            )
            found.append(
                ProviderFeedback(
                    kind,
                    "whatsapp",
                    status.get("biz_opaque_callback_data"),
                    "+" + str(status["recipient_id"]).lstrip("+"),
                    _at(status.get("timestamp"), fallback),
                    permanent=bool(codes & _WHATSAPP_PERMANENT),
                    provider_message_id=envelope.get("messageId"),
                    detail=detail,
                )
            )
        for message in value.get("messages") or []:
            text = _whatsapp_text(message)
            detail = _clean({"wamid": message.get("id"), "type": message.get("type"), "body": text})
            found.append(
                ProviderFeedback(
                    keyword_kind(text),
                    "whatsapp",
                    None,
                    "+" + str(message["from"]).lstrip("+"),
                    _at(message.get("timestamp"), fallback),
                    provider_message_id=message.get("id"),
                    detail=detail,
                )
            )
    return found


def _whatsapp_text(message: Mapping[str, Any]) -> str:
    """The words of an inbound message: a text's body, a quick-reply button's text (e.g. "Stop promotions")."""
    if message.get("type") == "text":
        return str(message["text"]["body"])
    if message.get("type") == "button":
        return str(message["button"].get("text") or message["button"].get("payload") or "")
    return ""


def _clean(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
