"""One Lambda function's execution environment, as a child process of the local cloud.

Started with exactly the function's configured environment (plus what the Lambda runtime itself
sets). Reads one JSON request per line on stdin, answers one JSON line on the response pipe; the
handler's own stdout/stderr (its logs) go to the parent, which files them per function.

Run as a script (`python worker.py CODE_DIR LAYER_DIR MODULE`), not as `infra.local.worker`, so the
environment holds only what a Lambda sandbox holds: the function's code, then the layer.

A request may carry `clock_skew_s`, how far the local cloud's clock runs ahead of real time: it is
set on `ecrm.core.clock` before the handler runs, so the function reads the local cloud's time.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
import uuid
from datetime import timedelta
from typing import Any


class LocalContext:
    """The subset of the Lambda context object that handlers and Powertools use."""

    def __init__(self, request_id: str, timeout_ms: int) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.invoked_function_arn = os.environ.get("ECRM_LOCAL_FUNCTION_ARN", "")
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _exit_with_the_cloud() -> None:
    """A worker ends when the local cloud's process does, even mid-invocation (a handler retrying calls to a
    cloud that was killed would otherwise outlive it, reparented, until its retries ran out)."""
    import threading

    parent = int(os.environ.pop("ECRM_LOCAL_CLOUD_PID", "0")) or os.getppid()  # the cloud may be gone already

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-the-cloud", daemon=True).start()


def main() -> None:
    _exit_with_the_cloud()
    code_dir, layer_dir, module_name = sys.argv[1:4]
    sys.path[:0] = [code_dir, layer_dir]
    responses = os.fdopen(int(os.environ.pop("ECRM_LOCAL_RESPONSE_FD")), "w", buffering=1)
    timeout_ms = int(os.environ.get("ECRM_LOCAL_TIMEOUT_MS", "30000"))
    try:
        handler = importlib.import_module(module_name).handler
        init_error = None
    except Exception as exc:  # an init failure is reported on every invoke, as Lambda does
        handler, init_error = None, _error(exc)
    for line in sys.stdin:
        request = json.loads(line)
        if init_error is not None:
            responses.write(json.dumps({"error": init_error}) + "\n")
            continue
        if "clock_skew_s" in request:  # the local clock was advanced: the runtime's clock seam follows it
            from ecrm.core import clock

            clock.set_skew(timedelta(seconds=request["clock_skew_s"]))
        context = LocalContext(request.get("request_id") or str(uuid.uuid4()), timeout_ms)
        _arm_crash(request.get("crash_after_calls"))
        try:
            result = handler(request["event"], context)
            _arm_crash(None, exit_now=_crash["armed"])  # fewer calls than the fault asked for: exit before answering
            reply: dict[str, Any] = {"result": result}
            json.dumps(reply)
        except Exception as exc:
            reply = {"error": _error(exc)}
        sys.stdout.flush()
        sys.stderr.flush()
        responses.write(json.dumps(reply, default=str) + "\n")


_crash: dict[str, Any] = {"armed": False, "left": 0, "hooked": False}


def _arm_crash(calls: int | None, *, exit_now: bool = False) -> None:
    """A crash fault (infra/local/faults.py): exit the sandbox once `calls` more AWS calls have been answered.

    The process dies as Lambda's would (no answer, exit status 1), so the runtime reports
    `Runtime.ExitError`; calls are counted at botocore's HTTP send, retries included.
    """
    if exit_now:
        _exit_sandbox()
    _crash.update(armed=calls is not None, left=calls or 0)
    if calls is None:
        return
    if calls == 0:
        _exit_sandbox()
    if not _crash["hooked"]:
        from botocore.endpoint import Endpoint

        send = getattr(Endpoint, "_send")  # noqa: B009 (botocore's private send: one call per HTTP request)

        def counted_send(self: Any, request: Any) -> Any:
            answer = send(self, request)
            if _crash["armed"]:
                _crash["left"] -= 1
                if _crash["left"] <= 0:
                    _exit_sandbox()
            return answer

        setattr(Endpoint, "_send", counted_send)  # noqa: B010
        _crash["hooked"] = True


def _exit_sandbox() -> None:
    print("[fault] the sandbox exits (a crash fault of the local cloud)", flush=True)
    sys.stderr.flush()
    os._exit(1)


def _error(exc: BaseException) -> dict[str, Any]:
    return {"errorType": type(exc).__name__, "errorMessage": str(exc), "stackTrace": traceback.format_exception(exc)}


if __name__ == "__main__":
    main()
