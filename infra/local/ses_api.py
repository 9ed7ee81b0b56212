"""The SES v2 operations moto lacks or gets wrong, installed on moto's `sesv2` handler (see `infra.local.ses`)."""

from __future__ import annotations

import base64
import json
import threading
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any
from urllib.parse import unquote

from infra.local import ses_events, ses_mime
from infra.local.ses import (
    EICAR,
    MAX_RECIPIENTS,
    SIMULATOR_DOMAIN,
    SUPPRESSED_DIAGNOSTIC,
    BadRequestException,
    MessageRejected,
    NotFoundException,
    SendingPausedException,
    SentMail,
    bare_address,
    mailbox,
    simulator_box,
)

_installed = False
_install_lock = threading.Lock()
# Which of the replaced operations moto itself defined (a test checks it against moto's version).
MOTO_HAD: dict[str, bool] = {}
EVENT_BUS_ARN_PREFIX = "arn:aws:events:"
_SET = "/v2/email/configuration-sets/(?P<ConfigurationSetName>[^/]+)"
ROUTES = (
    "/v2/email/outbound-bulk-emails$",
    f"{_SET}/event-destinations$",
    f"{_SET}/event-destinations/(?P<EventDestinationName>[^/]+)$",
    f"{_SET}/suppression-options$",
    "/v2/email/templates$",
    "/v2/email/templates/(?P<TemplateName>[^/]+)$",
    "/v2/email/templates/(?P<TemplateName>[^/]+)/render$",
    "/v2/email/suppression/addresses$",
    "/v2/email/suppression/addresses/(?P<EmailAddress>[^/]+)$",
    "/v2/email/account$",
    "/v2/email/account/suppression$",
)


# -- sending ----------------------------------------------------------------------------------------
def send(
    core: Any, params: dict[str, Any], content: dict[str, Any], destination: dict[str, Any], *, operation: str
) -> SentMail:
    """Accept one message as SES does, keep its MIME and publish what becomes of each recipient."""
    box = mailbox(core.account_id, core.region_name)
    set_name = params.get("ConfigurationSetName") or ""
    from_address = params.get("FromEmailAddress") or ""
    raw: bytes | None = None
    if "Raw" in content:
        raw = _blob(content["Raw"]["Data"])
        parsed = ses_mime.parse(raw)
        from_address = from_address or str(parsed.get("From") or "")
    if not from_address:
        raise BadRequestException("Missing required parameter: FromEmailAddress")
    identity = _verified_identity(core, from_address)
    if not set_name and identity is not None:
        set_name = getattr(core.email_identities.get(identity), "configuration_set_name", None) or ""
    configuration_set = None
    if set_name:
        configuration_set = core.config_sets.get(set_name)
        if configuration_set is None:
            raise NotFoundException(f"Configuration set <{set_name}> does not exist.")
        if configuration_set.enabled.get("SendingEnabled") is False:
            raise SendingPausedException(f"Sending is paused for the configuration set {set_name}.")
    to, cc, bcc = (list(destination.get(k) or []) for k in ("ToAddresses", "CcAddresses", "BccAddresses"))
    recipients = to + cc + bcc if (to or cc or bcc) else ses_mime.recipients(ses_mime.parse(raw)) if raw else []
    if not recipients:
        raise BadRequestException("Missing final '@domain'")  # SES's answer to a send without recipients
    if len(recipients) > MAX_RECIPIENTS:
        raise MessageRejected(f"Recipient count exceeds {MAX_RECIPIENTS}.")
    if identity is None:
        raise MessageRejected(
            "Email address is not verified. The following identities failed the check in region "
            f"{core.region_name.upper()}: {parseaddr(from_address)[1] or from_address}"
        )
    with box.lock:
        box.take_quota(recipients)
    sent_at = ses_events.now()
    message_id = ses_events.message_id(sent_at)
    domain = f"{core.region_name}.amazonses.com"
    failure: str | None = None
    template_name: str | None = None
    if raw is not None:
        mime = raw
    else:
        try:
            subject, text, html_body, headers, attachments, template_name = _content(core, content)
        except ses_mime.RenderingError as error:
            failure, template_name = str(error), _template_name(content)
            subject, text, html_body, headers, attachments = "", None, None, [], []
        try:
            message = ses_mime.build_message(
                from_address=from_address,
                to=to,
                cc=cc,
                reply_to=list(params.get("ReplyToAddresses") or []),
                subject=subject,
                text=text,
                html_body=html_body,
                headers=headers,
                attachments=attachments,
                message_id=message_id,
                domain=domain,
                sent_at=sent_at,
            )
        except ValueError as error:
            raise BadRequestException(str(error)) from None
        _list_management(core, message, params.get("ListManagementOptions"), recipients, domain)
        mime = message.as_bytes()
    parsed = ses_mime.parse(mime)
    mail = SentMail(
        message_id=message_id,
        account=core.account_id,
        region=core.region_name,
        operation=operation,
        source=from_address,
        source_arn=f"arn:aws:ses:{core.region_name}:{core.account_id}:identity/{identity}",
        from_domain=parseaddr(from_address)[1].rpartition("@")[2],
        configuration_set=set_name,
        destination=recipients,
        tags=list(params.get("EmailTags") or []),
        headers=ses_mime.event_headers(parsed),
        common_headers=ses_mime.common_headers(parsed, message_id),
        mime=mime,
        sent_at=sent_at,
        subject=str(parsed.get("Subject") or ""),
        template=template_name,
    )
    with box.lock:
        box.keep(mail)
    _keep_in_moto(core, mail, bcc)
    destinations = list(box.destinations.get(set_name, {}).values())
    if failure is not None:
        _publish(mail, destinations, "RENDERING_FAILURE", ses_events.rendering_failure(template_name or "", failure))
        mail.outcome = dict.fromkeys(recipients, "Rendering Failure")
        return mail
    _publish(mail, destinations, "SEND", {})
    if EICAR in mime:
        _publish(mail, destinations, "REJECT", {"reason": "Bad content"})
        mail.outcome = dict.fromkeys(recipients, "Reject")
        return mail
    _deliver(box, core, mail, destinations, configuration_set)
    return mail


def _deliver(box: Any, core: Any, mail: SentMail, destinations: list[dict[str, Any]], configuration_set: Any) -> None:
    suppressed = [r for r in mail.destination if box.is_suppressed(r, configuration_set)]
    bounced = [r for r in mail.destination if r not in suppressed and simulator_box(r) in {"bounce", "suppressionlist"}]
    moment = ses_events.now()
    for recipient in mail.destination:
        if recipient in suppressed or recipient in bounced:
            continue
        mail.outcome[recipient] = "Delivery"
        _publish(mail, destinations, "DELIVERY", ses_events.delivery([recipient], sent_at=mail.sent_at, moment=moment))
        if simulator_box(recipient) == "complaint":
            mail.outcome[recipient] = "Complaint"
            _publish(mail, destinations, "COMPLAINT", ses_events.complaint([recipient], moment=moment))
        elif simulator_box(recipient) == "ooto":
            _auto_reply(box, core, mail, recipient)
    if suppressed:
        mail.outcome.update(dict.fromkeys(suppressed, "Bounce"))
        recipients = [{"emailAddress": bare_address(r), "diagnosticCode": SUPPRESSED_DIAGNOSTIC} for r in suppressed]
        body = ses_events.bounce(
            recipients, bounce_type="Permanent", sub_type="OnAccountSuppressionList", moment=moment, dsn=False
        )
        _publish(mail, destinations, "BOUNCE", body)
    for sub_type, box_name in (("General", "bounce"), ("Suppressed", "suppressionlist")):
        group = [r for r in bounced if simulator_box(r) == box_name]
        if group:
            mail.outcome.update(dict.fromkeys(group, "Bounce"))
            recipients = [
                {
                    "emailAddress": bare_address(r),
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
                for r in group
            ]
            body = ses_events.bounce(recipients, bounce_type="Permanent", sub_type=sub_type, moment=moment)
            _publish(mail, destinations, "BOUNCE", body)


def _publish(mail: SentMail, destinations: list[dict[str, Any]], matching_type: str, body: dict[str, Any]) -> None:
    mail.events.append(ses_events.EVENT_TYPES[matching_type][2])
    ses_events.publish(destinations, matching_type, mail, body)


def _auto_reply(box: Any, core: Any, mail: SentMail, recipient: str) -> None:
    """The simulator's RFC 3834 automatic reply, sent back to the Return-Path (else the sender)."""
    original = ses_mime.parse(mail.mime)
    reply_to = str(original.get("Return-Path") or mail.source)
    moment = ses_events.now()
    message = EmailMessage()
    message["From"] = bare_address(recipient)
    message["To"] = reply_to
    message["Subject"] = f"Auto: {mail.subject}"
    message["Date"] = format_datetime(moment)
    message["Auto-Submitted"] = "auto-replied"
    message["In-Reply-To"] = f"<{mail.message_id}@{core.region_name}.amazonses.com>"
    message.set_content("I am out of the office (Amazon SES mailbox simulator, local cloud).")
    reply_id = ses_events.message_id(moment)
    parsed = ses_mime.parse(message.as_bytes())
    box.keep(
        SentMail(
            message_id=reply_id,
            account=mail.account,
            region=mail.region,
            operation="AutoReply",
            source=bare_address(recipient),
            source_arn=f"arn:aws:ses:{mail.region}:{mail.account}:identity/{SIMULATOR_DOMAIN}",
            from_domain=SIMULATOR_DOMAIN,
            configuration_set="",
            destination=[reply_to],
            tags=[],
            headers=ses_mime.event_headers(parsed),
            common_headers=ses_mime.common_headers(parsed, reply_id),
            mime=message.as_bytes(),
            sent_at=moment,
            subject=str(message["Subject"]),
            outcome={reply_to: "Delivery"},
        )
    )


def _content(
    core: Any, content: dict[str, Any]
) -> tuple[str, str | None, str | None, list[Any], list[Any], str | None]:
    """(subject, text, html, headers, attachments, template name) of Simple or Template content."""
    if "Simple" in content:
        simple = content["Simple"]
        body = simple.get("Body") or {}
        return (
            simple["Subject"]["Data"],
            (body.get("Text") or {}).get("Data"),
            (body.get("Html") or {}).get("Data"),
            list(simple.get("Headers") or []),
            list(simple.get("Attachments") or []),
            None,
        )
    if "Template" not in content:
        raise BadRequestException("Content must hold one of Simple, Raw or Template")
    template = content["Template"]
    name = _template_name(content)
    if "TemplateContent" in template:
        parts = template["TemplateContent"]
    else:
        stored = core.templates.get(name)
        if stored is None:
            raise NotFoundException(f"Template {name} does not exist.")
        parts = _v2_template(stored)["TemplateContent"]
    try:
        data = json.loads(template.get("TemplateData") or "{}")
    except json.JSONDecodeError:
        raise BadRequestException("Template data is not valid JSON.") from None
    rendered = {k: ses_mime.render(v, data) if v is not None else None for k, v in parts.items()}
    return (
        rendered.get("Subject") or "",
        rendered.get("Text"),
        rendered.get("Html"),
        list(template.get("Headers") or []),
        list(template.get("Attachments") or []),
        name,
    )


def _template_name(content: dict[str, Any]) -> str | None:
    template = content.get("Template") or {}
    return template.get("TemplateName") or (template.get("TemplateArn") or "").rpartition("/")[2] or None


def _list_management(core: Any, message: EmailMessage, options: Any, recipients: list[str], domain: str) -> None:
    """SES's one-click unsubscribe headers for a contact list (and its `{{amazonSESUnsubscribeUrl}}`)."""
    if not options:
        return
    name = options["ContactListName"]
    if name not in core.contacts_lists:
        raise NotFoundException(f"List with name: {name} doesn't exist.")
    topic = f"&topic={options['TopicName']}" if options.get("TopicName") else ""
    url = f"https://unsubscribe.{domain}/unsubscribe?list={name}{topic}&contact={bare_address(recipients[0])}"
    message["List-Unsubscribe"] = f"<{url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for part in message.walk():
        if part.get_content_maintype() == "text" and not part.is_attachment():
            text = part.get_content()
            if "{{amazonSESUnsubscribeUrl}}" in text:
                part.set_content(text.replace("{{amazonSESUnsubscribeUrl}}", url), subtype=part.get_content_subtype())


def _verified_identity(core: Any, address: str) -> str | None:
    bare = parseaddr(address)[1].lower()
    if bare in core.email_identities:
        return bare
    domain = bare.rpartition("@")[2]
    return domain if domain in core.email_identities else None


def _keep_in_moto(core: Any, mail: SentMail, bcc: list[str]) -> None:
    """moto's own record of sends (`/moto-api/data.json`, key `ses`) keeps showing every message."""
    from moto.ses.models import RawMessage

    core.sent_messages.append(
        RawMessage(mail.message_id, mail.source, list(mail.destination), mail.mime.decode("utf-8", "replace"))
    )
    core.sent_message_count += len(mail.destination)


def _blob(value: Any) -> bytes:
    return base64.b64decode(value) if isinstance(value, str) else bytes(value)


def _v2_template(stored: dict[str, Any]) -> dict[str, Any]:
    content = {"Subject": stored.get("subject_part"), "Text": stored.get("text_part"), "Html": stored.get("html_part")}
    return {
        "TemplateName": stored["template_name"],
        "TemplateContent": {k: v for k, v in content.items() if v is not None},
    }


def validated_destination(destination: dict[str, Any]) -> dict[str, Any]:
    """An event destination as SES accepts it: EventBridge only to the default bus."""
    bus = (destination.get("EventBridgeDestination") or {}).get("EventBusArn")
    if bus is not None and not (str(bus).startswith(EVENT_BUS_ARN_PREFIX) and str(bus).endswith(":event-bus/default")):
        raise BadRequestException(
            f"EventBridge destination {bus} is not the default event bus: only the default bus is supported."
        )
    unknown = set(destination.get("MatchingEventTypes") or []) - set(ses_events.EVENT_TYPES)
    if unknown:
        raise BadRequestException(f"Unknown MatchingEventTypes: {sorted(unknown)}")
    return destination


def path_param(response: Any, name: str) -> str:
    return unquote(str(response._get_param(name)))


def install() -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        from moto.sesv2.responses import SESV2Response

        from infra.local import ses_operations

        ses_operations.keep_moto_operations()
        MOTO_HAD.update({name: name in SESV2Response.__dict__ for name in ses_operations.OPERATIONS})
        for name, operation in ses_operations.OPERATIONS.items():
            setattr(SESV2Response, name, operation)
        from moto.sesv2 import urls

        for path in ROUTES:  # moto's catch-all `/v2/.*` does not reach these
            urls.url_paths.setdefault("{0}" + path, SESV2Response.dispatch)
        _installed = True
