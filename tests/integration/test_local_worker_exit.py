"""A function's sandbox ends with the local cloud's process, even in the middle of an invocation.

Before, a cloud killed while its handlers were busy (a test run interrupted, a crashed xdist worker) left their
sandboxes running, reparented, for as long as the handlers kept retrying calls to the cloud that was gone.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from infra.local.runtime import WORKER

BUSY_HANDLER = """
import time


def handler(event, context):
    time.sleep(120)
"""

# The local cloud's part: start the sandbox, hand it a request, say its pid, and die without closing anything.
CLOUD = """
import os, subprocess, sys
read_fd, write_fd = os.pipe()
env = {**os.environ, "ECRM_LOCAL_RESPONSE_FD": str(write_fd), "ECRM_LOCAL_CLOUD_PID": str(os.getpid())}
worker = subprocess.Popen(
    [sys.executable, sys.argv[1], sys.argv[2], sys.argv[3], "busy"],
    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    text=True, env=env, pass_fds=(write_fd,), cwd=sys.argv[2],
)
worker.stdin.write('{"event": {}}\\n')
worker.stdin.flush()
print(worker.pid, flush=True)
os._exit(0)
"""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in {"Z", "X"}  # a zombie has ended; whoever adopted it has not reaped it yet


def test_a_sandbox_busy_in_its_handler_ends_when_the_cloud_process_dies(tmp_path: Path) -> None:
    # Given a sandbox whose handler is busy for two minutes, started by a cloud process
    code, layer = tmp_path / "code", tmp_path / "layer"
    code.mkdir()
    layer.mkdir()
    (code / "busy.py").write_text(BUSY_HANDLER)
    cloud = subprocess.run(
        [sys.executable, "-c", CLOUD, str(WORKER), str(code), str(layer)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    pid = int(cloud.stdout.strip())

    # When the cloud process has died (it exited right after handing over the request)
    # Then the sandbox ends within seconds instead of finishing its invocation
    deadline = time.monotonic() + 30
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _running(pid), f"sandbox {pid} outlived its cloud process"
