"""`ecrm local mail`: the running local cloud's mailbox (what SES sent), and a recipient's actions on it.

It talks to the control route the local SES adds to the cloud's moto server on 127.0.0.1
(`/moto-api/local/mail`, see `infra.local.ses_mail`), found through the cloud's state file.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode

import click

from ecrm_ops.user_errors import OperatorError

NO_LOCAL_CLOUD = "no local cloud is running here: start one with `ecrm local up`"


def _endpoint() -> str:
    try:
        from infra.local.state import CloudState

        return CloudState.load().endpoint_url
    except (FileNotFoundError, ImportError):
        raise OperatorError(NO_LOCAL_CLOUD) from None


def call(path: str, body: dict[str, Any] | None = None, *, endpoint: str | None = None) -> Any:
    """One request to the mailbox route; a refusal becomes the route's own message."""
    url = f"{endpoint or _endpoint()}/moto-api/local/mail{path}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")  # noqa: S310
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the local cloud on 127.0.0.1
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        message = json.loads(error.read() or b"{}").get("message", str(error))
        raise OperatorError(message) from None
    except urllib.error.URLError:
        raise OperatorError(f"the local cloud does not answer at {url}: {NO_LOCAL_CLOUD}") from None


def _published(count: int, what: str) -> str:
    if count:
        return f"{what} published to {count} event destination(s)"
    return f"{what} not published: the message's configuration set has no destination tracking it"


@click.group("mail", invoke_without_command=True)
@click.option("--to", "recipient", help="Only messages to this address.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1), help="How many, newest last.")
@click.pass_context
def mail(ctx: click.Context, recipient: str | None, limit: int) -> None:
    """The local cloud's sent email: list it (id, to, subject, time), show it, open or click it."""
    if ctx.invoked_subcommand is not None:
        return
    query = {"limit": str(limit), **({"recipient": recipient} if recipient else {})}
    messages = call("?" + urlencode(query))["Messages"]
    if not messages:
        click.echo("no email sent yet")
    for message in messages:
        to = ", ".join(message["To"])
        click.echo(f"{message['MessageId']}  {message['Timestamp']}  {to}  {message['Subject']}")


@mail.command("show")
@click.argument("message_id")
def show(message_id: str) -> None:
    """Print a message's MIME as SES delivered it."""
    click.echo(call(f"/{quote(message_id)}")["Mime"], nl=False)


@mail.command("open")
@click.argument("message_id")
@click.option("--recipient", help="Which recipient opens it (default: the first it was delivered to).")
def open_message(message_id: str, recipient: str | None) -> None:
    """A recipient opens MESSAGE_ID: `Email Opened` if its configuration set tracks opens."""
    result = call(f"/{quote(message_id)}/open", {"recipient": recipient} if recipient else {})
    click.echo(_published(result["Published"], "Email Opened"))


@mail.command("click")
@click.argument("message_id")
@click.option("--link", help="The URL clicked (default: the first link of the message's HTML).")
@click.option("--recipient", help="Which recipient clicks (default: the first it was delivered to).")
def click_link(message_id: str, link: str | None, recipient: str | None) -> None:
    """A recipient clicks a link of MESSAGE_ID: `Email Clicked` if its configuration set tracks clicks."""
    body = {k: v for k, v in (("link", link), ("recipient", recipient)) if v}
    result = call(f"/{quote(message_id)}/click", body)
    click.echo(_published(result["Published"], "Email Clicked"))


@mail.command("delay")
@click.argument("message_id")
@click.option("--type", "delay_type", default="MailboxFull", show_default=True, help="SES's delayType.")
@click.option("--recipient", help="Whose server defers it (default: the first it was delivered to).")
def delay(message_id: str, delay_type: str, recipient: str | None) -> None:
    """The recipient's server defers MESSAGE_ID: `Email Delivery Delayed` if its configuration set tracks delays."""
    body = {"delay_type": delay_type, **({"recipient": recipient} if recipient else {})}
    result = call(f"/{quote(message_id)}/delay", body)
    click.echo(_published(result["Published"], "Email Delivery Delayed"))


@mail.command("unsubscribe")
@click.argument("message_id")
@click.option("--all", "unsubscribe_all", is_flag=True, help="From the whole contact list, not only the topic.")
@click.option("--recipient", help="Who unsubscribes (default: the first it was delivered to).")
def unsubscribe(message_id: str, unsubscribe_all: bool, recipient: str | None) -> None:
    """The recipient uses MESSAGE_ID's one-click unsubscribe: `Email Subscribed` if its configuration set tracks it."""
    body = {"unsubscribe_all": unsubscribe_all, **({"recipient": recipient} if recipient else {})}
    result = call(f"/{quote(message_id)}/unsubscribe", body)
    click.echo(_published(result["Published"], "Email Subscribed"))


@mail.command("quota")
@click.option("--max-24h", "max_24h", required=True, type=float, help="Max24HourSend (-1: unlimited).")
@click.option("--rate", required=True, type=float, help="MaxSendRate, messages per second (-1: unlimited).")
def quota(max_24h: float, rate: float) -> None:
    """Set the local account's SES send quota (GetAccount's SendQuota), honoured by every send."""
    call("/quota", {"Max24HourSend": max_24h, "MaxSendRate": rate})
    click.echo(f"send quota: {max_24h:g} per 24 hours, {rate:g} per second")
