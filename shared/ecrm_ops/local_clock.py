"""`ecrm local clock`: read and move the running local cloud's clock (its control route on 127.0.0.1).

ecrm local clock                 the local time and how far it runs ahead of real time
ecrm local clock advance 1d12h   move it forward (s, m, h, d); returns once what fell due has run
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any

import click

from ecrm_ops.user_errors import OperatorError

NO_CLOCK = "no local cloud is running here (or it has no clock control): start one with `ecrm local up`"
DURATION = re.compile(r"^(\d+[smhd])+$")


def _control_url() -> str:
    from infra.local.state import STATE_DIR

    try:
        return str(json.loads((STATE_DIR / "clock.json").read_text())["clock_url"])
    except (OSError, ValueError, KeyError):
        raise OperatorError(NO_CLOCK) from None


def _call(path: str, body: dict[str, Any] | None = None, timeout: float = 600) -> dict[str, Any]:
    url = _control_url() + path
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")  # noqa: S310 - 127.0.0.1
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - 127.0.0.1
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as error:
        raise OperatorError(json.loads(error.read() or b"{}").get("message", str(error))) from None
    except OSError:
        raise OperatorError(NO_CLOCK) from None


def _describe(reading: dict[str, Any]) -> str:
    seconds = int(reading["offset_seconds"])
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    ahead = "".join(f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")) if n) or "0s"
    return f"local time {reading['now']} ({ahead} ahead of real time)"


@click.group("clock", invoke_without_command=True)
@click.pass_context
def clock(ctx: click.Context) -> None:
    """Show the local cloud's clock (ADVANCE moves it)."""
    if ctx.invoked_subcommand is None:
        click.echo(_describe(_call("/clock")))


@clock.command("advance")
@click.argument("duration")
def advance(duration: str) -> None:
    """Move the clock forward by DURATION (3d, 90m, 1d12h; units s, m, h, d).

    Due schedules fire in order and Step Functions waits that end on the way complete before it returns.
    """
    if not DURATION.match(duration.strip().lower()):
        raise click.BadParameter(f"{duration!r}: a number and a unit s, m, h or d, e.g. 3d or 1d12h")
    click.echo(_describe(_call("/clock/advance", {"by": duration})))
