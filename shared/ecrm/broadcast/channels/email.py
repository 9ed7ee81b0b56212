"""Email through SES v2 as Raw MIME, so that every header is ours (RFC 8058 one-click unsubscribe).

The message is multipart/alternative (text/plain then text/html) built with the standard `email`
package and the SMTP policy (CRLF, RFC 2047 for a non-ASCII subject). Marketing mail carries
`List-Unsubscribe: <https URL>` (RFC 2369; plus a mailto when configured) and
`List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058), and the preference-centre and
unsubscribe links in both parts; a marketing message without them is refused (never sent without a
way out). Transactional mail carries none of them.

Tracking: SES v2's per-message switch, `ConfigurationOverrides.Tracking` (open and click tracking
ENABLED or DISABLED for this message whatever the account and configuration set say), follows
`message.tracking`. With tracking off every link also carries `ses:no-track` (SES leaves such a link
as it is), and the footer's unsubscribe and preference links always do: they are never rewritten.
An untracked configuration set, when configured, carries the messages with tracking off (its own
event destinations, e.g. without OPEN and CLICK).
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, getaddresses
from html.parser import HTMLParser
from typing import Any

from ecrm.broadcast.channels.base import (
    ChannelError,
    OutboundMessage,
    SendResult,
    aws_error,
    content_text,
    provider_tags,
    require,
    transient,
)
from ecrm.core.clock import Clock

_ANCHOR = re.compile(r"<a(?=[\s>])(?![^>]*\bses:no-track\b)", re.IGNORECASE)
_EMAIL = re.compile(r"[^@\s<>,;\"()]+@[^@\s<>,;\"()]+\.[^@\s<>,;\"()]+")
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)

# SES v2 SendEmail errors (the service model's list), and why each is what it is.
_THROTTLED = {
    "TooManyRequestsException",  # the account's maximum send rate: wait and retry
    "LimitExceededException",  # on SendEmail, the rolling 24-hour quota: capacity frees up as the window moves
    "SendingPausedException",  # sending paused for the account or configuration set (the guard, an operator): temporary
    "Throttling",
    "ThrottlingException",
}
_PERMANENT = {
    "MessageRejected",  # SES refuses this content (e.g. a virus): the same message will be refused again
    "BadRequestException",  # the request as built is invalid: a retry sends the same request
}
# Not permanent on purpose: `AccountSuspendedException`, `MailFromDomainNotVerifiedException` and a missing
# configuration set (`NotFoundException`) are our account's state, not the recipient's. Failing the message
# would lose it for our own fault; retried then dead-lettered, it is redriven once an operator fixes the cause.


class _TextOf(HTMLParser):
    """The visible text of an HTML body, links as `text (url)`: for a text part the template did not give."""

    _BLOCKS = frozenset({"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "table", "ul", "ol"})
    _HIDDEN = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str | None] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._skip += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")
        elif tag == "a":
            self.links.append(dict(attrs).get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN and self._skip:
            self._skip -= 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")
        elif tag == "a" and self.links:
            href = self.links.pop()
            if href and href.startswith(("http://", "https://", "mailto:")):
                self.parts.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def text_from_html(html: str) -> str:
    parser = _TextOf()
    parser.feed(html)
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line).strip()


def untracked_links(html: str) -> str:
    """Every anchor marked `ses:no-track` (SES then leaves the link as it is)."""
    return _ANCHOR.sub("<a ses:no-track", html)


def _marketing_footer(message: OutboundMessage) -> tuple[str, str]:
    """(text, html) of the footer every marketing message carries: preference centre and unsubscribe."""
    preferences, unsubscribe = message.preferences_url, message.unsubscribe_url
    assert preferences
    assert unsubscribe
    manage = str(message.content.get("preferences_label") or "Manage your preferences")
    leave = str(message.content.get("unsubscribe_label") or "Unsubscribe")
    text = f"\n\n--\n{manage}: {preferences}\n{leave}: {unsubscribe}\n"
    html = (
        '<div class="ecrm-footer">'
        f'<a ses:no-track href="{html_lib.escape(preferences)}">{html_lib.escape(manage)}</a> | '
        f'<a ses:no-track href="{html_lib.escape(unsubscribe)}">{html_lib.escape(leave)}</a></div>'
    )
    return text, html


def _with_footer(html: str, footer: str) -> str:
    ends = [m.start() for m in _BODY_END.finditer(html)]
    if not ends:
        return html + footer
    return html[: ends[-1]] + footer + html[ends[-1] :]


def sender_domain(sender: str) -> str:
    [(_, address)] = getaddresses([sender]) or [("", "")]
    return address.rpartition("@")[2] or "localhost"


def ascii_sender(sender: str) -> str:
    """The sender as SES's FromEmailAddress takes it: a non-ASCII display name in RFC 2047 encoded words."""
    [(name, address)] = getaddresses([sender]) or [("", sender)]
    return formataddr((name, address), charset="utf-8") if name else address


def build_mime(
    message: OutboundMessage, *, sender: str, sent_at: Any, unsubscribe_mailto: str | None = None
) -> EmailMessage:
    """The MIME message for `message` (see the module docstring); raises a permanent ChannelError when unsendable."""
    subject = content_text(message, "subject")
    html = content_text(message, "html", required=False)
    text = content_text(message, "text", required=False)
    require(bool(html or text), "email content has neither html nor text", code="missing_content")
    require(bool(_EMAIL.fullmatch(message.address)), "not an email address", code="invalid_address")
    mime = EmailMessage(policy=SMTP)
    mime["From"] = sender
    mime["To"] = message.address
    mime["Subject"] = subject
    mime["Date"] = format_datetime(sent_at)
    mime["Message-ID"] = f"<{message.message_id}@{sender_domain(sender)}>"
    mime["X-Ecrm-Message-Id"] = message.message_id
    if text is None:
        text = text_from_html(html or "")
    if message.is_marketing:
        unsubscribe = message.unsubscribe_url or ""
        require(
            unsubscribe.startswith("https://"), "marketing email needs an https unsubscribe URL", code="no_unsubscribe"
        )
        require(bool(message.preferences_url), "marketing email needs a preference-centre link", code="no_preferences")
        footer_text, footer_html = _marketing_footer(message)
        text += footer_text
        if html is not None:
            html = _with_footer(html, footer_html)
        targets = [f"<{unsubscribe}>"]
        if unsubscribe_mailto:
            targets.append(f"<mailto:{unsubscribe_mailto}?subject=unsubscribe>")
        mime["List-Unsubscribe"] = ", ".join(targets)
        mime["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if html is not None and not message.tracking:
        html = untracked_links(html)
    # Quoted-printable keeps the message 7-bit clean (any relay, any line length) and readable.
    mime.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    if html is not None:
        mime.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    return mime


def classify(exc: Exception) -> ChannelError:
    found = aws_error(exc)
    if found is None:
        return transient(exc, "email")
    code, text, _ = found
    if code in _THROTTLED:
        return ChannelError(f"SES: {text or code}", permanent=False, throttled=True, code=code)
    if code in _PERMANENT:
        return ChannelError(f"SES: {text or code}", permanent=True, code=code)
    return ChannelError(f"SES: {text or code}", permanent=False, code=code)


class EmailAdapter:
    channel = "email"

    def __init__(
        self,
        client: Callable[[], Any],
        *,
        sender: str,
        configuration_set: str | None,
        clock: Clock,
        unsubscribe_mailto: str | None = None,
        untracked_configuration_set: str | None = None,
    ) -> None:
        self._client = client
        self.sender = sender
        self.configuration_set = configuration_set
        self.unsubscribe_mailto = unsubscribe_mailto
        self.untracked_configuration_set = untracked_configuration_set
        self.clock = clock

    def send(self, message: OutboundMessage) -> SendResult:
        mime = build_mime(
            message, sender=self.sender, sent_at=self.clock.now(), unsubscribe_mailto=self.unsubscribe_mailto
        )
        configuration_set = self.configuration_set
        if not message.tracking and self.untracked_configuration_set:
            configuration_set = self.untracked_configuration_set
        tracking = "ENABLED" if message.tracking else "DISABLED"
        request: dict[str, Any] = {
            "FromEmailAddress": ascii_sender(self.sender),
            "Destination": {"ToAddresses": [message.address]},
            "Content": {"Raw": {"Data": mime.as_bytes()}},
            "EmailTags": [{"Name": k, "Value": v} for k, v in provider_tags(message).items()],
            "ConfigurationOverrides": {"Tracking": {"OpenTrackingEnabled": tracking, "ClickTrackingEnabled": tracking}},
        }
        if configuration_set:
            request["ConfigurationSetName"] = configuration_set
        try:
            response = self._client().send_email(**request)
        except Exception as exc:  # every provider failure is classified, none escapes unnamed
            raise classify(exc) from exc
        detail = {"configuration_set": configuration_set or "", "tracking": "on" if message.tracking else "off"}
        return SendResult(provider_message_id=response.get("MessageId"), detail=detail)
