"""Running our Lambda handlers locally: one worker process per function, started on first use.

Each worker gets the function's environment from the template (intrinsics resolved), pointed at
the local cloud's endpoint; nothing of this process's environment leaks in. Each invocation
carries how far the local clock runs ahead of real time, which the worker hands to `ecrm.core.clock`. Invocations of one
function are serialized (one warm sandbox per function, like a reserved concurrency of one).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from infra.settings import REPO_ROOT

WORKER = Path(__file__).with_name("worker.py")
LAYER_DIR = REPO_ROOT / "shared"


@dataclass
class LocalFunction:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    module: str
    environment: dict[str, str]
    timeout_s: int = 30
    memory_mb: int = 128


class InvocationError(Exception):
    def __init__(self, function: str, error: dict[str, Any]) -> None:
        super().__init__(f"{function}: {error.get('errorType')}: {error.get('errorMessage')}")
        self.function = function
        self.error = error


@dataclass
class _Worker:
    process: subprocess.Popen[str]
    responses: IO[str]


class FunctionRuntime:
    def __init__(
        self,
        endpoint_url: str,
        region: str,
        log_dir: Path,
        echo: Callable[[str, str], None] | None = None,
        max_concurrency: int = 4,
        skew: Callable[[], timedelta] = lambda: timedelta(0),
    ) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.log_dir = log_dir
        self.echo = echo
        self.functions: dict[str, LocalFunction] = {}
        self.max_concurrency = max_concurrency
        self.skew = skew  # how far the local clock runs ahead: sent with each invocation
        self.faults: Any = None  # a `infra.local.faults.FaultPlan` whose crash rules pick invocations
        self._workers: dict[str, list[_Worker]] = {}
        self._idle: dict[str, list[_Worker]] = {}
        self._start_lock = threading.Lock()
        self._idle_changed = threading.Condition()
        self._log_lock = threading.Lock()
        self.invocations: dict[str, int] = {}

    def register(self, function: LocalFunction) -> None:
        self.functions[function.name] = function

    def by_logical_id(self, logical_id: str) -> LocalFunction:
        return next(f for f in self.functions.values() if f.logical_id == logical_id)

    def sandbox_environment(self, function: LocalFunction) -> dict[str, str]:
        """Exactly what the function sees: its configured variables plus the runtime's own."""
        return {
            **function.environment,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_EXECUTION_ENV": "AWS_Lambda_python_local",
            # The SDK's user agent names the function (`app/<logical id>`): what the cost bench counts calls by.
            "AWS_SDK_UA_APP_ID": function.logical_id[:50],
            "ECRM_LOCAL_FUNCTION_ARN": function.arn,
            "ECRM_LOCAL_TIMEOUT_MS": str(function.timeout_s * 1000),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def invoke(self, name: str, event: Any) -> Any:
        """Run the handler; raise `InvocationError` with Lambda's error shape if it fails.

        Concurrent invocations of one function run in up to `max_concurrency` sandboxes, as Lambda
        scales out; a sandbox that timed out or died is replaced by a fresh one (a cold start).
        """
        function = self.functions[name]
        worker = self._acquire(function)
        request_id = str(uuid.uuid4())
        ahead = self.skew().total_seconds()
        message: dict[str, Any] = {"event": event, "request_id": request_id}
        if ahead:
            message["clock_skew_s"] = ahead
        crash_after = self.faults.crash_point(function.logical_id) if self.faults else None
        if crash_after is not None:  # a fault: the sandbox exits after this many AWS calls (worker.py)
            message["crash_after_calls"] = crash_after
        request = json.dumps(message, default=str)
        line: str | None = ""
        try:
            with self._start_lock:
                self.invocations[name] = self.invocations.get(name, 0) + 1
            assert worker.process.stdin is not None
            try:
                worker.process.stdin.write(request + "\n")
                worker.process.stdin.flush()
                ready, _, _ = select.select([worker.responses], [], [], function.timeout_s + 5)
                line = worker.responses.readline() if ready else None
            except (BrokenPipeError, OSError):
                line = ""
        finally:
            healthy = bool(line) and worker.process.poll() is None
            self._release(function, worker, retire=not healthy)
        error: dict[str, Any] | None = None
        if line is None:
            worker.process.kill()
            error = {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"Task timed out after {function.timeout_s} seconds",
            }
        elif not line:
            error = {"errorType": "Runtime.ExitError", "errorMessage": "the function's sandbox exited"}
        else:
            reply = json.loads(line)
            error = reply.get("error")
        if error is not None:
            self.log_failure(function, request_id, error)
            raise InvocationError(name, error)
        return reply["result"]

    def log_failure(self, function: LocalFunction, request_id: str, error: Mapping[str, Any]) -> None:
        """What Lambda's runtime writes to the function's log when an invocation fails: the error and its traceback.

        Without it a failed invocation (an API answered 502) leaves no trace in the function's log.
        """
        lines = [f"[ERROR] {error.get('errorType')}: {error.get('errorMessage')} RequestId: {request_id}"]
        trace = "".join(error.get("stackTrace") or [])
        if trace:
            lines.append(trace.rstrip("\n"))
        self.write_log(function, "\n".join(lines) + "\n")

    def write_log(self, function: LocalFunction, text: str) -> None:
        """Append to the function's log file (`<log dir>/<logical id>.log`) and echo it, line by line."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self._log_lock, (self.log_dir / f"{function.logical_id}.log").open("a") as sink:
            sink.write(text)
        if self.echo:
            for line in text.splitlines():
                self.echo(function.logical_id, line)

    def _acquire(self, function: LocalFunction) -> _Worker:
        with self._idle_changed:
            while True:
                idle = self._idle.setdefault(function.name, [])
                while idle:
                    worker = idle.pop()
                    if worker.process.poll() is None:
                        return worker
                    self._workers[function.name].remove(worker)
                sandboxes = self._workers.setdefault(function.name, [])
                if len(sandboxes) < self.max_concurrency:
                    worker = self._start(function)
                    sandboxes.append(worker)
                    return worker
                self._idle_changed.wait()

    def _release(self, function: LocalFunction, worker: _Worker, *, retire: bool) -> None:
        with self._idle_changed:
            if retire:
                if worker in self._workers.get(function.name, []):
                    self._workers[function.name].remove(worker)
            else:
                self._idle.setdefault(function.name, []).append(worker)
            self._idle_changed.notify()

    def _start(self, function: LocalFunction) -> _Worker:
        read_fd, write_fd = os.pipe()
        env = self.sandbox_environment(function)
        env["ECRM_LOCAL_RESPONSE_FD"] = str(write_fd)
        env["ECRM_LOCAL_CLOUD_PID"] = str(os.getpid())  # the sandbox ends when this process does
        process = subprocess.Popen(
            [sys.executable, str(WORKER), str(function.code_dir), str(LAYER_DIR), function.module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            pass_fds=(write_fd,),
            cwd=function.code_dir,
        )
        os.close(write_fd)
        worker = _Worker(process, os.fdopen(read_fd, "r"))
        threading.Thread(
            target=self._drain_logs, args=(function, process), daemon=True, name=f"logs-{function.name}"
        ).start()
        return worker

    def _drain_logs(self, function: LocalFunction, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.write_log(function, line)

    def stop(self, timeout: float = 3) -> None:
        """End every sandbox: all are told at once (their stdin closed), then given one shared deadline."""
        with self._idle_changed:
            workers = [w for sandboxes in self._workers.values() for w in sandboxes]
            for worker in workers:
                if worker.process.stdin:
                    worker.process.stdin.close()
            deadline = time.monotonic() + timeout
            for worker in workers:
                try:
                    worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    worker.process.kill()
            self._workers.clear()
            self._idle.clear()
