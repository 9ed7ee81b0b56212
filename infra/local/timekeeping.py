"""Everything of the local cloud that runs on its clock, started and stopped together.

`Timekeeping` owns the `LocalClock`, installs Step Functions' waits on it, drives the rule
schedules and the EventBridge Scheduler emulation from it, and serves a small control route on
127.0.0.1 so `ecrm local clock` can read and move the running cloud's clock:

    GET  /clock            {"now": ISO 8601, "offset_seconds": n}
    POST /clock/advance    {"by": "1d12h"} (or {"seconds": n}); answers once all that fell due has run
    POST /clock/move-to    {"at": ISO 8601 in the clock's future}

Its address is written to `clock.json` next to the cloud's state file.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from infra.local import stepfunctions_clock
from infra.local.clock import LocalClock, parse_duration
from infra.local.eventbridge_scheduler import SchedulerEmulation
from infra.local.scheduler import LocalScheduler

CONTROL_FILE = "clock.json"


class Timekeeping:
    def __init__(
        self,
        *,
        clock: LocalClock,
        client: Callable[[str], Any],
        rules: LocalScheduler,
        account: str,
        region: str,
        on_error: Callable[[str, Exception], None] | None = None,
    ) -> None:
        self.clock = clock
        self.rules = rules
        self.scheduler = SchedulerEmulation(
            client=client, account=account, region=region, clock=clock, on_error=on_error
        )
        sfn = client("stepfunctions")
        clock.execution_running = lambda arn: sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        clock.add_source(rules)
        clock.add_source(self.scheduler)
        self._server: ThreadingHTTPServer | None = None

    def start(self, state_dir: Path) -> str:
        stepfunctions_clock.install(self.clock)
        self.clock.start()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.clock))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True, name="clock-control").start()
        url = f"http://127.0.0.1:{self._server.server_address[1]}"
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / CONTROL_FILE).write_text(json.dumps({"clock_url": url}))
        self.control_url = url
        return url

    def stop(self, state_dir: Path) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self.clock.stop()
        (state_dir / CONTROL_FILE).unlink(missing_ok=True)


def clock_reading(clock: LocalClock) -> dict[str, Any]:
    return {"now": clock.now().isoformat(), "offset_seconds": clock.offset.total_seconds()}


def _handler(clock: LocalClock) -> type[BaseHTTPRequestHandler]:
    class ClockControl(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/clock":
                self._answer(200, clock_reading(clock))
            else:
                self._answer(404, {"message": f"no route {self.path}"})

        def do_POST(self) -> None:
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self.path.rstrip("/") == "/clock/advance":
                    by = timedelta(seconds=float(body["seconds"])) if "seconds" in body else parse_duration(body["by"])
                    clock.advance(by)
                elif self.path.rstrip("/") == "/clock/move-to":
                    clock.move_to(datetime.fromisoformat(str(body["at"]).replace("Z", "+00:00")))
                else:
                    self._answer(404, {"message": f"no route {self.path}"})
                    return
            except (KeyError, ValueError, TypeError) as exc:
                self._answer(400, {"message": str(exc) or repr(exc)})
                return
            self._answer(200, clock_reading(clock))

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return ClockControl
