"""The local mailbox from outside SES: what a recipient does with a message, and a control route.

A test (in the moto server's process) calls `simulate_open`, `simulate_click`, `simulate_bounce`,
`simulate_complaint` and `configure_send_quota` directly; `ecrm local mail` reaches the running
cloud through routes under `/moto-api/local/mail` of its moto server (127.0.0.1 only):

    GET  /moto-api/local/mail[?recipient=&configuration_set=&limit=]   recent messages, newest last
    GET  /moto-api/local/mail/MESSAGE_ID                               one message with its MIME
    POST /moto-api/local/mail/MESSAGE_ID/open     {"recipient"}        an open, as SES tracks it
    POST /moto-api/local/mail/MESSAGE_ID/click    {"recipient", "link"}
    POST /moto-api/local/mail/MESSAGE_ID/bounce   {"recipient", "bounce_type", "sub_type"}
    POST /moto-api/local/mail/MESSAGE_ID/complaint {"recipient"}
    POST /moto-api/local/mail/quota               {"Max24HourSend", "MaxSendRate"}  (-1: unlimited)

An open or a click is published only when the message's configuration set has an event destination
matching OPEN or CLICK (SES tracks them then); SES can only track them in a message with an HTML part.
A bounce or complaint of a delivered message adds the address to the suppression list when the
reasons in force say so (simulator addresses never join it).
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from infra.local import ses_events, ses_mime
from infra.local.ses import SentMail, bare_address, is_simulator, mailbox, sent_mail

ROUTE = "/moto-api/local/mail"
_MESSAGE_ROUTE = re.compile(
    r"^/moto-api/local/mail/(?P<id>[^/]+)(?:/(?P<action>open|click|bounce|complaint|delay|unsubscribe))?$"
)


class MailError(ValueError):
    """A simulated action the message does not allow (unknown id, not delivered, no HTML, no link)."""


def _find(account: str, region: str, message_id: str) -> SentMail:
    found = sent_mail(account, region, message_id=message_id)
    if not found:
        raise MailError(f"no message {message_id} in the local mailbox")
    return found[0]


def _recipient(mail: SentMail, recipient: str | None) -> str:
    delivered = [r for r, outcome in mail.outcome.items() if outcome in {"Delivery", "Complaint"}]
    if recipient is None:
        if not delivered:
            raise MailError(f"{mail.message_id} was delivered to no one ({mail.outcome})")
        return delivered[0]
    matches = [r for r in delivered if bare_address(r) == bare_address(recipient)]
    if not matches:
        raise MailError(f"{mail.message_id} was not delivered to {recipient} ({mail.outcome})")
    return matches[0]


def _publish(mail: SentMail, matching_type: str, body: dict[str, Any]) -> int:
    box = mailbox(mail.account, mail.region)
    destinations = list(box.destinations.get(mail.configuration_set, {}).values())
    published = ses_events.publish(destinations, matching_type, mail, body)
    if published:
        mail.events.append(ses_events.EVENT_TYPES[matching_type][2])
    return published


def simulate_open(account: str, region: str, message_id: str, *, recipient: str | None = None) -> int:
    """The recipient opens the message; returns how many destinations got `Email Opened` (0: not tracked)."""
    mail = _find(account, region, message_id)
    _recipient(mail, recipient)
    if ses_mime.html_part(ses_mime.parse(mail.mime)) is None:
        raise MailError(f"{message_id} has no HTML part: SES tracks opens with an image in the HTML")
    return _publish(mail, "OPEN", ses_events.opened(moment=ses_events.now()))


def simulate_click(
    account: str, region: str, message_id: str, *, link: str | None = None, recipient: str | None = None
) -> int:
    """The recipient clicks `link` (default: the first link of the HTML part)."""
    mail = _find(account, region, message_id)
    _recipient(mail, recipient)
    links = ses_mime.links(ses_mime.parse(mail.mime))
    if link is None:
        if not links:
            raise MailError(f"{message_id} has no link in an HTML part: give the link")
        link, tags = links[0]
    else:
        tags = next((t for href, t in links if href == link), {})
    return _publish(mail, "CLICK", ses_events.clicked(link, tags, moment=ses_events.now()))


def simulate_bounce(
    account: str,
    region: str,
    message_id: str,
    *,
    recipient: str | None = None,
    bounce_type: str = "Permanent",
    sub_type: str = "General",
) -> int:
    """The recipient's server bounces a delivered message later (a hard bounce unless told otherwise)."""
    mail = _find(account, region, message_id)
    address = _recipient(mail, recipient)
    mail.outcome[address] = "Bounce"
    dsn = {"action": "failed", "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}
    recipients = [{"emailAddress": bare_address(address), **dsn}]
    moment = ses_events.now()
    published = _publish(
        mail, "BOUNCE", ses_events.bounce(recipients, bounce_type=bounce_type, sub_type=sub_type, moment=moment)
    )
    if bounce_type == "Permanent":
        _suppress_if_in_force(mail, address, "BOUNCE")
    return published


def simulate_complaint(account: str, region: str, message_id: str, *, recipient: str | None = None) -> int:
    """The recipient marks a delivered message as spam."""
    mail = _find(account, region, message_id)
    address = _recipient(mail, recipient)
    mail.outcome[address] = "Complaint"
    published = _publish(mail, "COMPLAINT", ses_events.complaint([bare_address(address)], moment=ses_events.now()))
    _suppress_if_in_force(mail, address, "COMPLAINT")
    return published


def simulate_delivery_delay(
    account: str,
    region: str,
    message_id: str,
    *,
    recipient: str | None = None,
    delay_type: str = "MailboxFull",
) -> int:
    """The recipient's server defers the message (SES keeps trying until its expiration time)."""
    if delay_type not in ses_events.DELAY_STATUS:
        raise MailError(f"delay type {delay_type!r}: one of {', '.join(ses_events.DELAY_STATUS)}")
    mail = _find(account, region, message_id)
    address = _recipient(mail, recipient)
    moment = ses_events.now()
    body = ses_events.delivery_delay(
        [bare_address(address)], delay_type=delay_type, moment=moment, expires=mail.sent_at + timedelta(hours=14)
    )
    return _publish(mail, "DELIVERY_DELAY", body)


def simulate_subscription(
    account: str,
    region: str,
    message_id: str,
    *,
    recipient: str | None = None,
    unsubscribe_all: bool = False,
) -> int:
    """The recipient unsubscribes through the message's one-click `List-Unsubscribe` (sent with
    `ListManagementOptions`): from its topic, or from the whole contact list with `unsubscribe_all`."""
    mail = _find(account, region, message_id)
    _recipient(mail, recipient)
    header = ses_mime.parse(mail.mime).get("List-Unsubscribe", "")
    found = re.search(r"[?&]list=([^&>]+)(?:&topic=([^&>]+))?", header)
    if not found:
        raise MailError(f"{message_id} was not sent with ListManagementOptions: it has no SES unsubscribe link")
    contact_list, topic = found.group(1), found.group(2)
    body = ses_events.subscription(
        contact_list,
        topic=topic,
        unsubscribe_all=unsubscribe_all or topic is None,
        moment=ses_events.now(),
        source="UnsubscribeHeader",
    )
    return _publish(mail, "SUBSCRIPTION", body)


def _suppress_if_in_force(mail: SentMail, address: str, reason: str) -> None:
    if is_simulator(address):
        return
    from moto.ses.models import ses_backends

    box = mailbox(mail.account, mail.region)
    configuration_set = ses_backends[mail.account][mail.region].config_sets.get(mail.configuration_set)
    with box.lock:
        if reason in box.reasons_in_force(configuration_set):
            box.suppress(address, reason)


def configure_send_quota(account: str, region: str, *, max_24_hour_send: float, max_send_rate: float) -> None:
    """The account's sending quota (-1: unlimited, the local default)."""
    box = mailbox(account, region)
    with box.lock:
        box.quota.max_24_hour_send = float(max_24_hour_send)
        box.quota.max_send_rate = float(max_send_rate)
        box._tokens, box._tokens_at = 0.0, None


# -- the control route ------------------------------------------------------------------------------
def install_routes() -> None:
    """Add the routes to moto's `/moto-api/` (before the server serves its first request)."""
    from moto.moto_api._internal import urls

    urls.url_paths.setdefault("{0}" + ROUTE + "$", handle)
    urls.url_paths.setdefault("{0}" + ROUTE + "/(?P<path>.+)$", handle)


def handle(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    from infra.local.template import ACCOUNT_ID, REGION

    url = urlsplit(full_url)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    account, region = query.get("account", ACCOUNT_ID), query.get("region", REGION)
    try:
        status, body = _route(request, url.path, query, account, region)
    except MailError as error:
        status, body = 404 if "no message" in str(error) else 400, {"message": str(error)}
    except (ValueError, KeyError, TypeError) as error:
        status, body = 400, {"message": f"bad request: {error}"}
    return status, {"Content-Type": "application/json"}, json.dumps(body)


def _route(request: Any, path: str, query: dict[str, str], account: str, region: str) -> tuple[int, Any]:
    method = request.method
    data = request.get_data() if hasattr(request, "get_data") else getattr(request, "data", b"")
    body = json.loads(data or b"{}")
    if path.rstrip("/") == ROUTE and method == "GET":
        found = sent_mail(
            account, region, recipient=query.get("recipient"), configuration_set=query.get("configuration_set")
        )
        limit = int(query.get("limit", "50"))
        return 200, {"Messages": [m.summary() for m in found[-limit:]]}
    if path == ROUTE + "/quota" and method == "POST":
        configure_send_quota(account, region, max_24_hour_send=body["Max24HourSend"], max_send_rate=body["MaxSendRate"])
        return 200, {}
    match = _MESSAGE_ROUTE.match(path)
    if match is None:
        return 404, {"message": f"no route {method} {path}"}
    message_id, action = match.group("id"), match.group("action")
    if action is None and method == "GET":
        mail = _find(account, region, message_id)
        return 200, {**mail.summary(), "Mime": mail.mime.decode("utf-8", "replace")}
    if method != "POST":
        return 405, {"message": f"{method} {path}: use POST"}
    recipient = body.get("recipient")
    if action == "open":
        published = simulate_open(account, region, message_id, recipient=recipient)
    elif action == "click":
        published = simulate_click(account, region, message_id, link=body.get("link"), recipient=recipient)
    elif action == "bounce":
        published = simulate_bounce(
            account,
            region,
            message_id,
            recipient=recipient,
            bounce_type=body.get("bounce_type", "Permanent"),
            sub_type=body.get("sub_type", "General"),
        )
    elif action == "delay":
        published = simulate_delivery_delay(
            account, region, message_id, recipient=recipient, delay_type=body.get("delay_type", "MailboxFull")
        )
    elif action == "unsubscribe":
        published = simulate_subscription(
            account, region, message_id, recipient=recipient, unsubscribe_all=bool(body.get("unsubscribe_all"))
        )
    else:
        published = simulate_complaint(account, region, message_id, recipient=recipient)
    return 200, {"Published": published}
