"""The `ecrm` command: the operator's tool.

    ecrm local up            run the platform on the embedded local cloud until Ctrl-C
    ecrm local token         print an ID token for the local API (staff group or customer)
    ecrm local invoke FN     invoke one function of the running local cloud with an event
    ecrm local clock         show the local cloud's clock; `advance 3d` moves it
    ecrm demo [--once]       bring everything up and run the scripted tour
    ecrm import FILE         bulk-import customer records through the API, with a progress bar
    ecrm import pinpoint     an Amazon Pinpoint endpoint export and its templates (`--dry-run`: report only)
    ecrm schemas generate    write events/schemas from the event models (`check` verifies them)
    ecrm redrive QUEUE       move a dead-letter queue's records back to their source queue
    ecrm analysis ...        CLV, RFM, clusters and churn from any CSV of transactions
    ecrm personalization ... evaluate recommenders offline; train the recommender
    ecrm campaign ...        create, launch and follow campaigns (live progress), their reports

A mistake is answered in one line on stderr with a non-zero exit (2 for a wrong option, 1 for the
rest), never a traceback: see `ecrm_ops.user_errors`. `-h` is `--help` everywhere.

Part of the operator package (`ecrm_ops`), installed with the project and never shipped to Lambda.
Operator tooling (rich, moto, the CDK app) is imported inside the commands, so `ecrm --help` stays fast.
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any

import click

from ecrm_ops.csv_input import check_encoding
from ecrm_ops.local_messaging import COMMANDS as LOCAL_MESSAGING_COMMANDS
from ecrm_ops.user_errors import DEBUG_ENV, OperatorError, guarded

NO_LOCAL_CLOUD = "no local cloud is running here: start one with `ecrm local up`"


class GuardedGroup(click.Group):
    """The `ecrm` group: every command runs inside `user_errors.guarded`."""

    def invoke(self, ctx: click.Context) -> Any:
        with guarded(bool(ctx.params.get("debug"))):
            return super().invoke(ctx)


@click.group(cls=GuardedGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ecrm")
@click.option(
    "--debug",
    is_flag=True,
    help=f"Show the traceback of an internal error (or set {DEBUG_ENV}=1).",
)
def main(debug: bool) -> None:
    """eCRM platform: local cloud, demo, schemas, operations."""
    # The CDK's jsii runtime warns about Node 20 on every start; the CLI has nothing to do about it.
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


@main.group()
def local() -> None:
    """The embedded local cloud (moto on 127.0.0.1, no AWS account, no Docker)."""


PORT = click.IntRange(0, 65535)


def _check_fault_spec(ctx: click.Context, param: click.Parameter, spec: str) -> str:
    from ecrm_ops.local_cloud import check_fault_spec

    return check_fault_spec(ctx, param, spec)


FAULTS_OPTION = click.option(
    "--faults",
    default="",
    metavar="SPEC",
    callback=lambda ctx, param, spec: _check_fault_spec(ctx, param, spec),
    help="Inject faults, comma-separated: SERVICE:OPERATION=FAULT[@RATE|#N] with FAULT throttle, error (500), "
    "unavailable (503), timeout[:SECONDS] or drop; lambda:FUNCTION=crash[@after:CALLS][@RATE|#N]; seed=N. "
    "Example: sesv2:SendEmail=throttle@0.33,sqs:DeleteMessageBatch=error#1,seed=7. "
    "What they hit is logged in .local-cloud/faults.jsonl (README: Local cloud > Faults).",
)


@local.command("up")
@click.option(
    "--port",
    type=PORT,
    help="Port of the local REST API (default 4510, or any free one when 4510 is taken; 0: any free).",
)
@click.option("--verbose", is_flag=True, help="Echo every function's log lines.")
@FAULTS_OPTION
def local_up(port: int | None, verbose: bool, faults: str) -> None:
    """Run the platform locally and serve until stopped (beside any other local cloud: its own port and state)."""
    from ecrm_ops.local_cloud import choose_api_port, choose_state_dir, run_until_interrupted, start_cloud

    api_port, port_note = choose_api_port(port)
    state_dir, state_note = choose_state_dir()
    for note in (port_note, state_note):
        if note:
            click.echo(note, err=True)
    cloud = start_cloud(api_port=api_port, verbose=verbose, faults=faults, state_dir=state_dir)
    run_until_interrupted(cloud)


@local.command("token")
@click.option(
    "--group", type=click.Choice(["admin", "marketer", "analyst", "agent"]), help="A staff user in this group."
)
@click.option("--customer", "customer_id", help="A customer user bound to this customer id.")
@click.option("--email", help="The user's email (default derived from the group or customer).")
def local_token(group: str | None, customer_id: str | None, email: str | None) -> None:
    """Print an ID token for the running local cloud's API."""
    from ecrm_ops.local_cloud import issue_token

    if bool(group) == bool(customer_id):
        raise click.UsageError("give exactly one of --group or --customer")
    try:
        click.echo(issue_token(group=group, customer_id=customer_id, email=email))
    except FileNotFoundError:
        raise OperatorError(NO_LOCAL_CLOUD) from None


@local.command("invoke")
@click.argument("function")
@click.option(
    "--event",
    "event_file",
    type=click.File("r", encoding="utf-8-sig"),
    default="-",
    show_default=True,
    help="JSON event file (for example one of events/samples), or - for stdin.",
)
def local_invoke(function: str, event_file: IO[str]) -> None:
    """Invoke one function of the running local cloud (FUNCTION: any part of its name)."""
    import json

    from ecrm_ops.local_cloud import invoke_function

    name = getattr(event_file, "name", "-")
    where = "stdin" if not isinstance(name, str) or name in ("-", "<stdin>") else name
    if where == "stdin" and event_file.isatty():
        raise click.UsageError("give the event: --event FILE, or pipe it in (echo '{}' | ecrm local invoke ...)")
    text = event_file.read()
    if not text.strip():
        raise OperatorError(f"the event from {where} is empty: give a JSON event (`{{}}` for an empty one)")
    try:
        event = json.loads(text)
    except json.JSONDecodeError as error:
        raise OperatorError(
            f"the event from {where} is not JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    try:
        name, failed, payload = invoke_function(function, event)
    except FileNotFoundError:
        raise OperatorError(NO_LOCAL_CLOUD) from None
    except LookupError as exc:
        raise OperatorError(str(exc)) from None
    click.echo(json.dumps(payload, indent=2))
    if failed:
        raise OperatorError(f"{name} failed (its log: .local-cloud/logs/)")


@main.command()
@click.option("--once", is_flag=True, help="Run the scripted tour and exit (non-zero if any step fails).")
@click.option("--port", type=PORT, help="Port of the local REST API (default 4510; with --once any free port).")
@FAULTS_OPTION
def demo(once: bool, port: int | None, faults: str) -> None:
    """Bring the platform up locally, print how to call it, run the tour (under faults, if asked)."""
    from ecrm_ops.local_cloud import choose_api_port, choose_state_dir
    from ecrm_ops.tour.run import run_demo

    api_port, port_note = choose_api_port(0 if once and port is None else port)
    state_dir, state_note = choose_state_dir()
    for note in (port_note, state_note):
        if note:
            click.echo(note, err=True)
    sys.exit(run_demo(once=once, api_port=api_port, state_dir=state_dir, faults=faults))


class ImportGroup(click.Group):
    """`ecrm import FILE ...` imports customer records; `ecrm import pinpoint ...` a Pinpoint project.

    A first argument that names no subcommand is the FILE of the customer import, so `ecrm import FILE`
    keeps working beside the subcommands.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["file", *args]
        return super().parse_args(ctx, args)


@main.group("import", cls=ImportGroup)
def import_group() -> None:
    """Import customer records from a file (`ecrm import FILE`), or from Amazon Pinpoint (`ecrm import pinpoint`)."""


@import_group.command("file")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--source", required=True, help="The source system of the records (web, erp, shop, ...).")
@click.option(
    "--mapping",
    "mapping_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="JSON: {column: target} or an import request {source, format, mapping, default_phone_region}.",
)
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), help="Default: from the file name.")
@click.option("--region", "default_phone_region", help="Region of national phone numbers (ISO 3166, e.g. DE).")
@click.option("--api-url", envvar="ECRM_API_URL", help="Default: the running local cloud.")
@click.option("--token", envvar="ECRM_TOKEN", help="A staff ID token (admin or marketer). Default: a local admin.")
@click.option("--timeout", default=1800, show_default=True, help="Seconds to wait for the import to finish.")
@click.option(
    "--encoding",
    callback=check_encoding,
    help="The file's text encoding when it is not UTF-8 (cp1252, latin-1, ...): converted before the upload.",
)
def import_file(
    file: str,
    source: str,
    mapping_file: str,
    fmt: str | None,
    default_phone_region: str | None,
    api_url: str | None,
    token: str | None,
    timeout: int,
    encoding: str | None,
) -> None:
    """Import customer records from FILE (CSV or JSON Lines), with a progress bar."""
    from ecrm_ops.customers.importer import ImportFailed, run_import

    try:
        status = run_import(
            file,
            source=source,
            mapping_file=mapping_file,
            fmt=fmt,
            default_phone_region=default_phone_region,
            api_url=api_url,
            token=token,
            timeout=timeout,
            encoding=encoding,
        )
    except ImportFailed as exc:
        raise OperatorError(str(exc)) from None
    except FileNotFoundError:
        raise OperatorError(f"{NO_LOCAL_CLOUD}, or give --api-url and --token") from None
    click.echo(status.summary())


@main.group()
def schemas() -> None:
    """JSON Schemas of the domain events (events/schemas)."""


@schemas.command("generate")
def schemas_generate() -> None:
    """Write events/schemas from the pydantic event models."""
    from ecrm_ops.schemas import write_schemas

    for path in write_schemas():
        click.echo(f"wrote {path}")


@schemas.command("check")
def schemas_check() -> None:
    """Fail if events/schemas is stale."""
    from ecrm_ops.schemas import stale_schemas

    stale = stale_schemas()
    if stale:
        raise click.ClickException("stale event schemas (run `make schemas`): " + ", ".join(stale))
    click.echo("event schemas are up to date")


@main.command()
@click.argument("queue")
@click.option(
    "--aws",
    "on_aws",
    is_flag=True,
    help="Redrive in your AWS account (your credentials, profile and region) instead of the local cloud.",
)
@click.option("--endpoint-url", help="Redrive through this SQS endpoint instead of the local cloud.")
@click.option("--region", help="With --aws or --endpoint-url: the region (default: your AWS configuration's).")
@click.option("--max-messages", default=0, type=click.IntRange(min=0), help="Stop after this many (0: all).")
def redrive(queue: str, on_aws: bool, endpoint_url: str | None, region: str | None, max_messages: int) -> None:
    """Move QUEUE's dead letters back to the queue that feeds it (QUEUE may be the DLQ or its source).

    On the running local cloud unless --aws or --endpoint-url says otherwise: it never falls back to AWS.
    """
    from ecrm_ops.local_cloud import RedriveRefused, redrive_dead_letters, sqs_client

    if on_aws and endpoint_url:
        raise click.UsageError("give --aws or --endpoint-url, not both")
    if region and not (on_aws or endpoint_url):
        raise click.UsageError("--region applies to --aws or --endpoint-url; the local cloud has its own")
    try:
        sqs, where = sqs_client(on_aws=on_aws, endpoint_url=endpoint_url, region=region)
    except FileNotFoundError:
        raise OperatorError(
            f"{NO_LOCAL_CLOUD}; to redrive a deployed stack, say so with --aws (or --endpoint-url URL)"
        ) from None
    started = time.monotonic()
    try:
        moved = redrive_dead_letters(
            queue,
            sqs=sqs,
            max_messages=max_messages,
            progress=lambda n: click.echo(f"\rmoved {n}", nl=False),
        )
    except RedriveRefused as refused:
        raise OperatorError(f"{refused} ({where})") from None
    click.echo(f"\nmoved {moved} record(s) in {time.monotonic() - started:.1f}s ({where})")


def _add_engine_commands() -> None:
    """The engines' command groups (`ecrm analysis`, `ecrm personalization`), each listing its own commands."""
    from ecrm_ops.analysis.commands import analysis
    from ecrm_ops.campaign_cli import campaign
    from ecrm_ops.personalization.commands import personalization
    from ecrm_ops.pinpoint.command import pinpoint

    import_group.add_command(pinpoint)

    main.add_command(analysis)
    main.add_command(personalization)
    main.add_command(campaign)
    from ecrm_ops.local_clock import clock

    local.add_command(clock)


_add_engine_commands()
for _command in LOCAL_MESSAGING_COMMANDS:  # ecrm local sms|push|whatsapp
    local.add_command(_command)
local.add_command(__import__("ecrm_ops.local_mail", fromlist=["mail"]).mail)  # ecrm local mail

if __name__ == "__main__":
    main()
