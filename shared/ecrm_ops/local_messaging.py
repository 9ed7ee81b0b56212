"""`ecrm local sms|push|whatsapp`: what the running local cloud sent, and replies from phones.

    ecrm local sms [--number +33...]                     texts and calls sent (SNS and End User Messaging)
    ecrm local sms reply --from +33... --to +1... STOP   a reply, delivered as AWS delivers inbound SMS
    ecrm local push [--endpoint ARN]                     platform endpoints and the pushes each received
    ecrm local push invalidate ARN                       the provider refuses the endpoint's token from now on
    ecrm local whatsapp [--number +33...]                WhatsApp messages sent

They read the running cloud's messaging inspector (`infra.local.messaging`) over HTTP.
"""

from __future__ import annotations

import json
from typing import Any

import click

from ecrm_ops.user_errors import OperatorError

NO_LOCAL_CLOUD = "no local cloud is running here: start one with `ecrm local up`"


def _messaging() -> Any:
    from infra.local.messaging.client import LocalMessaging
    from infra.local.state import STATE_FILE, CloudState

    if not STATE_FILE.exists():
        raise OperatorError(NO_LOCAL_CLOUD)
    state = CloudState.load()
    return LocalMessaging(state.endpoint_url, region=state.region)


def _call(action: Any) -> Any:
    from infra.local.messaging.client import MessagingError

    try:
        return action()
    except MessagingError as exc:
        raise OperatorError(str(exc)) from None
    except OSError as exc:
        raise OperatorError(f"the local cloud does not answer ({exc}): {NO_LOCAL_CLOUD}") from None


@click.group("sms", invoke_without_command=True)
@click.option("--number", help="Only texts and calls to (or replies from) this E.164 number.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.pass_context
def sms(ctx: click.Context, number: str | None, as_json: bool) -> None:
    """Texts and calls the local cloud sent (SNS publishes and End User Messaging SMS/voice)."""
    if ctx.invoked_subcommand is not None:
        return
    messaging = _messaging()
    sent = _call(lambda: messaging.sms(number))
    inbound = _call(lambda: messaging.sms_inbound(number))
    if as_json:
        click.echo(json.dumps({"messages": sent, "inbound": inbound}, indent=2))
        return
    if not sent and not inbound:
        click.echo("no SMS or voice message" + (f" for {number}" if number else ""))
    for message in sent:
        kind = "voice" if message.get("channel") == "VOICE" else "sms"
        origin = message.get("originationIdentity") or "(SNS)"
        click.echo(f"{kind:5} {origin} -> {message['destinationPhoneNumber']}  {message['messageId']}")
        click.echo(f"      {message.get('messageBody') or ''}")
    for reply in inbound:
        done = " (opted out)" if reply.get("optedOut") else ""
        click.echo(f"reply {reply['originationNumber']} -> {reply['destinationNumber']}{done}")
        click.echo(f"      {reply['messageBody']}")


@sms.command("reply")
@click.option("--from", "sender", required=True, help="The customer's phone (E.164).")
@click.option("--to", "to", required=True, help="The origination number it replies to (RequestPhoneNumber's).")
@click.argument("body")
def sms_reply(sender: str, to: str, body: str) -> None:
    """Deliver BODY from a phone, as AWS End User Messaging SMS delivers inbound SMS (STOP, HELP, ...)."""
    messaging = _messaging()
    result = _call(lambda: messaging.reply_sms(sender=sender, to=to, body=body))
    click.echo(f"delivered {result['inboundMessageId']} to the two-way channel of {to}")
    if result.get("optedOut"):
        click.echo(f"{sender} is now on the opt-out list of {to}")
    if result.get("autoReply"):
        click.echo(f"answered with the keyword's message ({result['autoReply']})")


@click.group("push", invoke_without_command=True)
@click.option("--endpoint", help="Only this platform endpoint (ARN).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.pass_context
def push(ctx: click.Context, endpoint: str | None, as_json: bool) -> None:
    """SNS platform endpoints (APNs, FCM) and the pushes each received."""
    if ctx.invoked_subcommand is not None:
        return
    messaging = _messaging()
    endpoints = _call(lambda: messaging.push(endpoint))
    if as_json:
        click.echo(json.dumps(endpoints, indent=2))
        return
    if not endpoints:
        click.echo("no platform endpoint")
    for found in endpoints:
        state = "enabled" if found["enabled"] else "disabled"
        token = "" if found["tokenValid"] else ", token refused by the provider"
        click.echo(f"{found['endpointArn']}  ({found['platform']}, {state}{token})")
        for message in found["messages"]:
            click.echo(f"  {message['messageId']}  {message['payload']}")
        for message in found["failed"]:
            click.echo(f"  {message['messageId']}  not delivered: the token is invalid")


@push.command("invalidate")
@click.argument("endpoint_arn")
def push_invalidate(endpoint_arn: str) -> None:
    """The provider refuses ENDPOINT_ARN's token from now on (the next publish disables the endpoint)."""
    messaging = _messaging()
    _call(lambda: messaging.invalidate_push_token(endpoint_arn))
    click.echo(f"the provider now refuses the token of {endpoint_arn}")


@click.command("whatsapp")
@click.option("--number", help="Only messages to (or from) this E.164 number.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
def whatsapp(number: str | None, as_json: bool) -> None:
    """WhatsApp messages sent through AWS End User Messaging Social."""
    messaging = _messaging()
    sent = _call(lambda: messaging.whatsapp(number))
    if as_json:
        click.echo(json.dumps(sent, indent=2))
        return
    if not sent:
        click.echo("no WhatsApp message" + (f" for {number}" if number else ""))
    for message in sent:
        click.echo(f"{message['from']} -> {message['to']}  {message['type']}  {message['messageId']}")
        click.echo(f"  {json.dumps(message['message'])}")


COMMANDS = (sms, push, whatsapp)
