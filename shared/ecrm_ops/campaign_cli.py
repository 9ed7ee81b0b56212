"""`ecrm campaign ...`: define, launch and follow campaigns through the API, as a marketer would.

    ecrm campaign create FILE          define a campaign from a JSON body (`POST /campaigns`)
    ecrm campaign list                 campaigns, newest first
    ecrm campaign launch ID [--watch]  start it (or hand it to its schedule); --watch follows the run
    ecrm campaign status ID [--watch]  its run's progress per arm, once or until the run completes
    ecrm campaign report ID [--json]   rates per arm and each variant's lift against the holdout

The commands only read and call the campaigns API (`functions/campaigns/api.py`): watching polls
`GET /campaigns/{id}/report`, so Ctrl-C stops the watching and never the campaign (`pause` and
`cancel` are the API's). On a terminal the progress table is redrawn in place; piped, one line is
printed per change, which a log or a CI job can keep.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

import click

from ecrm_ops.http import HttpResult, http
from ecrm_ops.user_errors import OperatorError

CAMPAIGN_ID = r"^cmp_[0-9A-Za-z]{1,40}$"  # `ecrm.campaigns.models.CAMPAIGN_ID_PATTERN`
PROGRESS_COUNTS = ("targeted", "requested", "sent", "delivered", "suppressed", "deferred", "failed")
REPORT_COUNTS = ("targeted", "requested", "sent", "delivered", "bounced", "opened", "clicked", "converted")
OUTCOMES = ("sent", "suppressed", "deferred", "failed")  # a requested message has one of these once decided
STOPPED = frozenset({"completed", "cancelled", "paused"})
# Once the run stopped, how many unchanged reports in a row end the watch while messages are still undecided
# (a deferral waits for its customer's quiet hours to end, which can be hours).
QUIET_POLLS = 5
HttpCall = Callable[..., HttpResult]
GATEWAY_ERRORS = frozenset({502, 503, 504})
GATEWAY_RETRY_WAITS = (1.0, 2.0, 4.0)


@dataclass(frozen=True)
class Transport:
    """How the commands reach the API and wait between two reads; tests hand their own in as the click
    context's object."""

    call: HttpCall = http
    sleep: Callable[[float], None] = time.sleep


@dataclass
class CampaignApi:
    api_url: str
    token: str
    call: HttpCall = http
    sleep: Callable[[float], None] = time.sleep

    def request(self, method: str, path: str, body: Any = None, *, expect: int = 200) -> Any:
        """The answer's body; a read is asked again after a gateway error (a function's sandbox that timed out
        starting, say), a write is not (it may have been done)."""
        url = f"{self.api_url.rstrip('/')}{path}"
        answer = self.call(method, url, token=self.token, body=body)
        for wait in GATEWAY_RETRY_WAITS if method == "GET" else ():
            if answer.status not in GATEWAY_ERRORS:
                break
            self.sleep(wait)
            answer = self.call(method, url, token=self.token, body=body)
        if answer.status == expect:
            return answer.body
        detail = _problem(answer.body)
        if answer.status in (401, 403):
            raise OperatorError(
                f"the API refused the token ({answer.status}: {detail}): give a staff token "
                "(admin or marketer; analysts may read) with --token or ECRM_TOKEN"
            )
        if answer.status in (404, 409, 422):
            raise OperatorError(detail)
        raise OperatorError(f"{method} {path} -> {answer.status}: {detail}")

    def report(self, campaign_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/campaigns/{campaign_id}/report"))


def _problem(body: Any) -> str:
    """A problem+json answer in one line: its detail (which names each field of a validation problem)."""
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or body)
    return str(body)


# -- what is printed ------------------------------------------------------------------------------------------
def arm_line(arm: Mapping[str, Any]) -> str:
    if arm["arm"] == "holdout":
        return f"holdout: {arm['targeted']} targeted"
    return f"{arm['arm']}: " + ", ".join(f"{arm.get(name, 0)} {name}" for name in PROGRESS_COUNTS)


def progress_line(report: Mapping[str, Any], elapsed: float) -> str:
    arms = " | ".join(arm_line(a) for a in report["arms"])
    return f"[{elapsed:6.1f}s] {report['status']:<9} {arms}"


def progress_rows(report: Mapping[str, Any]) -> list[list[str]]:
    rows = [[str(a["arm"]), *(str(a.get(name, 0)) for name in PROGRESS_COUNTS)] for a in report["arms"]]
    totals = [sum(int(a.get(name, 0)) for a in report["arms"]) for name in PROGRESS_COUNTS]
    return [*rows, ["all", *(str(t) for t in totals)]]


def progress_table(report: Mapping[str, Any], elapsed: float) -> Any:
    from rich.table import Table

    table = Table(title=f"{report['campaign_id']}  {report['status']}  {elapsed:.1f}s", title_justify="left")
    table.add_column("arm")
    for name in PROGRESS_COUNTS:
        table.add_column(name, justify="right")
    for row in progress_rows(report):
        table.add_row(*row)
    table.caption = "Ctrl-C stops watching; the campaign goes on"
    return table


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]


def _percent(value: float) -> str:
    return f"{value * 100:.2f}%"


def report_lines(report: Mapping[str, Any]) -> list[str]:
    winner = f", winner {report['winner']}" if report.get("winner") else ""
    lines = [f"campaign {report['campaign_id']}: {report['status']}{winner}", ""]
    header = ["arm", *REPORT_COUNTS, "revenue"]
    rows = [
        [str(a["arm"]), *(str(a.get(name, 0)) for name in REPORT_COUNTS), f"{a.get('revenue_minor', 0) / 100:.2f}"]
        for a in report["arms"]
    ]
    lines += _columns([header, *rows])
    rated = [a for a in report["arms"] if a.get("rates")]
    if rated:
        lines += ["", "rates:"]
        for arm in rated:
            lines.append(f"  {arm['arm']}: " + ", ".join(f"{k} {_percent(v)}" for k, v in arm["rates"].items()))
    if not report.get("lift"):
        lines += ["", "lift: no holdout to compare with"]
        return lines
    confidence = report["lift"][0]["confidence"]
    lines += ["", f"lift against the holdout ({report['lift'][0]['metric']}, {confidence:.0%} interval):"]
    for lift in report["lift"]:
        verdict = "significant" if lift["significant"] else "not significant"
        lines.append(
            f"  {lift['arm']}: {_percent(lift['treated_rate'])} vs {_percent(lift['control_rate'])}, "
            f"{lift['difference'] * 100:+.2f} pts [{lift['low'] * 100:+.2f}, {lift['high'] * 100:+.2f}], "
            f"p = {lift['p_value']:.3g}, {verdict}"
        )
    return lines


def list_lines(page: Mapping[str, Any]) -> list[str]:
    if not page["items"]:
        return ["no campaigns"]
    rows = [["id", "status", "run", "created", "name"]]
    rows += [
        [c["campaign_id"], c["status"], str(c.get("run", 0)), str(c["created_at"])[:19], c["name"]]
        for c in page["items"]
    ]
    lines = _columns(rows)
    if page.get("next"):
        lines.append(f"more: ecrm campaign list --after {page['next']}")
    return lines


# -- watching -------------------------------------------------------------------------------------------------
def settled(report: Mapping[str, Any]) -> bool:
    """Every message handed to broadcast has an outcome (sent, suppressed, deferred or failed)."""
    return all(sum(int(a.get(name, 0)) for name in OUTCOMES) >= int(a.get("requested", 0)) for a in report["arms"])


@dataclass
class RunWatch:
    """Decides when the watch ends: the run stopped and its messages are decided (or stopped changing)."""

    seen_running: bool = False
    unchanged: int = 0
    last: Any = field(default=None)

    def done(self, report: Mapping[str, Any]) -> bool:
        status = report["status"]
        self.seen_running = self.seen_running or status == "running"
        self.unchanged = self.unchanged + 1 if report == self.last else 0
        self.last = report
        stopped = status in STOPPED or (status == "scheduled" and self.seen_running)  # a recurring run ended
        if not stopped:
            return False
        return status != "completed" or settled(report) or self.unchanged >= QUIET_POLLS


def reports(
    api: CampaignApi, campaign_id: str, *, interval: float, sleep: Callable[[float], None]
) -> Iterator[dict[str, Any]]:
    """The campaign's report, read every `interval` seconds, until the run is done."""
    watch = RunWatch()
    while True:
        report = api.report(campaign_id)
        yield report
        if watch.done(report):
            return
        sleep(interval)


def watch_run(
    api: CampaignApi,
    campaign_id: str,
    *,
    interval: float,
    out: IO[str],
    tty: bool,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any] | None:
    """Follow the run until it is done; the last report, or None when Ctrl-C stopped the watching."""
    started = clock()
    last: dict[str, Any] | None = None
    try:
        if tty:
            from rich.console import Console
            from rich.live import Live

            with Live(console=Console(file=out), auto_refresh=False) as live:
                for last in reports(api, campaign_id, interval=interval, sleep=sleep):
                    live.update(progress_table(last, clock() - started), refresh=True)
        else:
            printed = None
            for last in reports(api, campaign_id, interval=interval, sleep=sleep):
                if last != printed:
                    out.write(progress_line(last, clock() - started) + "\n")
                    out.flush()
                    printed = last
    except KeyboardInterrupt:
        out.write(
            f"\nstopped watching; {campaign_id} goes on (`ecrm campaign status {campaign_id} --watch` to follow it)\n"
        )
        return None
    return last


# -- the commands ---------------------------------------------------------------------------------------------
def _check_campaign_id(ctx: click.Context, param: click.Parameter, value: str) -> str:
    import re

    if not re.match(CAMPAIGN_ID, value):
        raise click.BadParameter(f"{value!r} is not a campaign id (cmp_ followed by letters and digits)")
    return value


def campaign_argument(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("campaign_id", metavar="ID", callback=_check_campaign_id)(command)


def api_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option("--token", envvar="ECRM_TOKEN", help="A staff ID token. Default: a local admin.")(command)
    return click.option("--api-url", envvar="ECRM_API_URL", help="Default: the running local cloud.")(command)


def watch_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option(
        "--interval",
        default=2.0,
        show_default=True,
        type=click.FloatRange(min=0.1),
        help="Seconds between two reads of the progress while watching.",
    )(command)
    return click.option("--watch", is_flag=True, help="Follow the run until it completes (Ctrl-C stops watching).")(
        command
    )


def transport() -> Transport:
    return click.get_current_context().find_object(Transport) or Transport()


def connect(api_url: str | None, token: str | None) -> CampaignApi:
    """The API given, or the running local cloud's with a local admin's token."""
    call, sleep = transport().call, transport().sleep
    if api_url and token:
        return CampaignApi(api_url, token, call, sleep)
    from ecrm_ops.local_cloud import issue_token
    from infra.local.state import CloudState

    try:
        state = CloudState.load()
    except FileNotFoundError:
        raise OperatorError(
            "no local cloud is running here: start one with `ecrm local up`, or give --api-url and --token"
        ) from None
    return CampaignApi(api_url or state.api_url, token or issue_token(group="admin", state=state), call, sleep)


def _follow(api: CampaignApi, campaign_id: str, interval: float) -> None:
    out = sys.stdout
    last = watch_run(api, campaign_id, interval=interval, out=out, tty=out.isatty(), sleep=transport().sleep)
    if last is not None:
        click.echo(_ending(last))


def _ending(report: Mapping[str, Any]) -> str:
    requested = sum(int(a.get("requested", 0)) for a in report["arms"])
    if report["status"] == "completed" and not settled(report):
        return f"run completed: {requested} handed to broadcast; some still undecided (deferred to later)"
    return f"run {report['status']}: {requested} handed to broadcast"


@click.group("campaign")
def campaign() -> None:
    """Campaigns through the API: create, list, launch, follow a run, read its report."""


@campaign.command("create")
@click.argument("body_file", metavar="FILE", type=click.File("r", encoding="utf-8-sig"))
@api_options
def create_command(body_file: IO[str], api_url: str | None, token: str | None) -> None:
    """Define a campaign from FILE, a JSON body of POST /campaigns (- for stdin); prints its id."""
    try:
        body = json.load(body_file)
    except json.JSONDecodeError as error:
        name = getattr(body_file, "name", "-")
        where = "stdin" if not isinstance(name, str) or name in ("-", "<stdin>") else name
        raise OperatorError(f"{where}: not JSON ({error.msg} at line {error.lineno})") from None
    created = connect(api_url, token).request("POST", "/campaigns", body, expect=201)
    click.echo(created["campaign_id"])


@campaign.command("list")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100), help="How many, newest first.")
@click.option("--after", help="The page after this one (printed under a full page).")
@click.option("--json", "as_json", is_flag=True, help="The API's answer as JSON.")
@api_options
def list_command(limit: int, after: str | None, as_json: bool, api_url: str | None, token: str | None) -> None:
    """Campaigns, newest first: id, status, runs, created, name."""
    from urllib.parse import urlencode

    query = urlencode({"limit": limit, **({"after": after} if after else {})})
    page = connect(api_url, token).request("GET", f"/campaigns?{query}")
    click.echo(json.dumps(page, indent=2) if as_json else "\n".join(list_lines(page)))


@campaign.command("launch")
@campaign_argument
@watch_options
@api_options
def launch_command(campaign_id: str, watch: bool, interval: float, api_url: str | None, token: str | None) -> None:
    """Launch campaign ID now, or on its schedule; --watch follows the run until it completes."""
    api = connect(api_url, token)
    launched = api.request("POST", f"/campaigns/{campaign_id}/launch")
    when = ""
    if launched["status"] == "scheduled":
        when = f", on its {launched['schedule']['kind']} schedule"
    click.echo(f"{campaign_id}: {launched['status']}{when} (run {launched.get('run', 0)})")
    if watch:
        _follow(api, campaign_id, interval)


@campaign.command("status")
@campaign_argument
@watch_options
@api_options
def status_command(campaign_id: str, watch: bool, interval: float, api_url: str | None, token: str | None) -> None:
    """The progress of campaign ID's run per arm: targeted, requested, sent, delivered, suppressed, deferred."""
    api = connect(api_url, token)
    if watch:
        _follow(api, campaign_id, interval)
        return
    report = api.report(campaign_id)
    click.echo(f"campaign {campaign_id}: {report['status']}")
    click.echo("\n".join(_columns([["arm", *PROGRESS_COUNTS], *progress_rows(report)])))


@campaign.command("report")
@campaign_argument
@click.option("--json", "as_json", is_flag=True, help="The report as the API answers it (JSON).")
@api_options
def report_command(campaign_id: str, as_json: bool, api_url: str | None, token: str | None) -> None:
    """Campaign ID's report: counts and rates per arm, each variant's lift against the holdout."""
    report = connect(api_url, token).report(campaign_id)
    click.echo(json.dumps(report, indent=2) if as_json else "\n".join(report_lines(report)))
