"""The MIME an SES v2 send delivers, for the local cloud's mailbox (`infra.local.ses`).

SES builds a real message from `Simple` and `Template` content (custom `Headers` included) and
sends `Raw` content as given; this module does the same with `email.message.EmailMessage`, renders
SES templates (Handlebars: `{{var}}`, `{{a.b}}`, `{{#if}}...{{else}}...{{/if}}`,
`{{#each list}}...{{this}}...{{/each}}`), and reads back what SES's events report about a message
(`headers`, `commonHeaders`) and the links a click can follow.
"""

from __future__ import annotations

import base64
import email
import email.policy
import html
import re
from email.message import EmailMessage, Message
from email.utils import format_datetime, getaddresses
from typing import Any

# Headers SES does not let a caller set in `Simple`/`Template` content (it sets them itself).
RESERVED_HEADERS = {
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "reply-to",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "date",
    "message-id",
    "return-path",
}
_TAG = re.compile(r"{{\s*([#/]?)\s*([\w.@-]+|else|this)\s*([\w.@-]*)\s*}}")
_LINK = re.compile(r"""<a\b[^>]*?\bhref\s*=\s*["']([^"']+)["'][^>]*>""", re.IGNORECASE)
_LINK_TAGS = re.compile(r"""\bses:tags\s*=\s*["']([^"']*)["']""", re.IGNORECASE)


class RenderingError(ValueError):
    """Template data that does not fit the template: SES publishes a Rendering Failure, sends nothing."""


def render(template: str, data: dict[str, Any]) -> str:
    """SES's Handlebars subset; a variable missing from `data` is a rendering failure, as in SES."""
    return _render(template, data)


def _render(template: str, scope: Any) -> str:
    out: list[str] = []
    position = 0
    while (match := _TAG.search(template, position)) is not None:
        out.append(template[position : match.start()])
        kind, name, argument = match.groups()
        position = match.end()
        if kind == "/":
            raise RenderingError(f"Unexpected {{{{/{name}}}}} in the template")
        if kind == "#" and name in {"if", "unless", "each"}:
            body, position = _block(template, position, name)
            truthy, falsy = _split_else(body)
            value = _lookup(scope, argument)
            if name == "each":
                items = value if isinstance(value, list) else []
                out.extend(render(truthy, item if isinstance(item, dict) else {"this": item}) for item in items)
                if not items and falsy:
                    out.append(render(falsy, scope))
            else:
                chosen = truthy if bool(value) != (name == "unless") else falsy
                out.append(render(chosen, scope) if chosen else "")
            continue
        value = scope.get("this") if name == "this" and isinstance(scope, dict) else _lookup(scope, name)
        if value is None:
            raise RenderingError(f"Attribute '{name}' is not present in the rendering data.")
        out.append(str(value))
    out.append(template[position:])
    return "".join(out)


def _block(template: str, start: int, name: str) -> tuple[str, int]:
    """The body of a block opened before `start`, with nesting; returns (body, end)."""
    depth, position = 1, start
    while (match := _TAG.search(template, position)) is not None:
        kind, tag = match.group(1), match.group(2)
        if tag == name and kind == "#":
            depth += 1
        elif tag == name and kind == "/":
            depth -= 1
            if depth == 0:
                return template[start : match.start()], match.end()
        position = match.end()
    raise RenderingError(f"Missing {{{{/{name}}}}} in the template")


def _split_else(body: str) -> tuple[str, str]:
    depth = 0
    for match in _TAG.finditer(body):
        kind, tag = match.group(1), match.group(2)
        if kind == "#":
            depth += 1
        elif kind == "/":
            depth -= 1
        elif tag == "else" and depth == 0:
            return body[: match.start()], body[match.end() :]
    return body, ""


def _lookup(scope: Any, dotted: str) -> Any:
    value = scope
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def build_message(
    *,
    from_address: str,
    to: list[str],
    cc: list[str],
    reply_to: list[str],
    subject: str,
    text: str | None,
    html_body: str | None,
    headers: list[dict[str, str]],
    attachments: list[dict[str, Any]] | None = None,
    message_id: str,
    domain: str,
    sent_at: Any,
) -> EmailMessage:
    """The MIME SES delivers for Simple and Template content (Bcc recipients are not in it)."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = from_address
    if to:
        message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    if reply_to:
        message["Reply-To"] = ", ".join(reply_to)
    message["Subject"] = subject
    message["Date"] = format_datetime(sent_at)
    message["Message-ID"] = f"<{message_id}@{domain}>"
    for header in headers:
        if header["Name"].lower() in RESERVED_HEADERS:
            raise ValueError(f"The header {header['Name']} cannot be set in Simple or Template content")
        message[header["Name"]] = header["Value"]
    if text is not None:
        message.set_content(text)
    if html_body is not None:
        if text is None:
            message.set_content(html_body, subtype="html")
        else:
            message.add_alternative(html_body, subtype="html")
    if text is None and html_body is None:
        message.set_content("")
    for attachment in attachments or []:
        maintype, _, subtype = str(attachment.get("ContentType") or "application/octet-stream").partition("/")
        raw = attachment["RawContent"]
        message.add_attachment(
            base64.b64decode(raw) if isinstance(raw, str) else bytes(raw),
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=attachment.get("FileName"),
            disposition=str(attachment.get("ContentDisposition") or "attachment").lower(),
            cid=f"<{attachment['ContentId']}>" if attachment.get("ContentId") else None,
        )
    return message


def parse(mime: bytes) -> Message:
    return email.message_from_bytes(mime, policy=email.policy.default)


def event_headers(message: Message) -> list[dict[str, str]]:
    """`mail.headers` of an SES event: the message's own top-level headers (Bcc never shows)."""
    return [{"name": name, "value": str(value)} for name, value in message.items() if name.lower() != "bcc"]


def common_headers(message: Message, message_id: str) -> dict[str, Any]:
    """`mail.commonHeaders` of an SES event."""
    common: dict[str, Any] = {}
    for header, key in (("From", "from"), ("Reply-To", "replyTo"), ("To", "to"), ("Cc", "cc"), ("Bcc", "bcc")):
        values = message.get_all(header)
        if values:
            common[key] = [_address_text(name, address) for name, address in getaddresses([str(v) for v in values])]
    if message.get("Date"):
        common["date"] = str(message["Date"])
    common["messageId"] = message_id
    if message.get("Subject") is not None:
        common["subject"] = str(message["Subject"])
    return common


def _address_text(name: str, address: str) -> str:
    return f"{name} <{address}>" if name else address


def recipients(message: Message) -> list[str]:
    """To, Cc and Bcc of a Raw message, as SES reads them when `Destination` is not given."""
    values = [str(v) for header in ("To", "Cc", "Bcc") for v in message.get_all(header) or []]
    return [address for _, address in getaddresses(values) if address]


def without_bcc(mime: bytes) -> bytes:
    """What recipients receive: SES never delivers the Bcc header."""
    message = parse(mime)
    if message.get("Bcc") is None:
        return mime
    del message["Bcc"]
    return message.as_bytes()


def html_part(message: Message) -> str | None:
    part = message.get_body(preferencelist=("html",)) if hasattr(message, "get_body") else None
    return part.get_content() if part is not None else None


def links(message: Message) -> list[tuple[str, dict[str, list[str]]]]:
    """The links of the HTML part SES would rewrite for click tracking, with their `ses:tags`."""
    body = html_part(message) or ""
    found: list[tuple[str, dict[str, list[str]]]] = []
    for match in _LINK.finditer(body):
        href = html.unescape(match.group(1))
        if not href.lower().startswith(("http://", "https://")):
            continue
        tags: dict[str, list[str]] = {}
        tag_text = _LINK_TAGS.search(match.group(0))
        for pair in tag_text.group(1).split(";") if tag_text else []:
            key, _, value = pair.strip().partition(":")
            if key:
                tags.setdefault(key.strip(), []).append(value.strip())
        found.append((href, tags))
    return found
