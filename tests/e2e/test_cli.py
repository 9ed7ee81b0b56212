"""The operator's commands against a running local cloud and a real `ecrm local up` beside it, as in the README."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from ecrm_ops.tour.context import http

from infra.local.cloud import LocalCloud

REPO = Path(__file__).resolve().parents[2]
ECRM = [sys.executable, "-m", "ecrm_ops.cli"]


def start_local_up(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], str, str]:
    """`ecrm local up ARGS` in the background: the process, its API URL and what it said on stderr meanwhile."""
    said = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - read after the start, closed with it
    process = subprocess.Popen(
        [*ECRM, "local", "up", *args], cwd=REPO, env=env, text=True, stdout=subprocess.PIPE, stderr=said
    )
    assert process.stdout is not None
    api_url = None
    deadline = time.monotonic() + 120
    while api_url is None and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        found = re.match(r"\s+API\s+(http://127\.0\.0\.1:\d+)", line)
        api_url = found.group(1) if found else None
    assert api_url, "ecrm local up did not print the API URL"
    said.seek(0)
    text = said.read()
    said.close()
    return process, api_url, text


def interrupt(process: subprocess.Popen[str]) -> float:
    """Ctrl-C: the process must stop cleanly; returns how long it took."""
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    return time.monotonic() - started


@pytest.fixture(scope="module")
def local_up(cloud: LocalCloud) -> tuple[str, dict[str, str]]:
    """The suite's running local cloud, as the commands find one: through the state file in its directory.

    `ecrm local up` itself is started (beside it) and interrupted by the second-cloud test: a cloud of its own
    for these commands would start and run every function a second time for nothing they check.
    """
    state_dir = cloud.state_dir
    api_url = json.loads((state_dir / "state.json").read_text(encoding="utf-8"))["api_url"]
    return api_url, {**os.environ, "ECRM_LOCAL_STATE_DIR": str(state_dir)}


def test_a_second_local_cloud_runs_beside_the_first_with_its_own_port_and_state(
    local_up: tuple[str, dict[str, str]],
) -> None:
    import socket

    first_url, env = local_up
    state_dir = Path(env["ECRM_LOCAL_STATE_DIR"])
    # Given the default API port taken (by whatever holds it) and a cloud running with this state directory
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 4510))
        holder.listen()
    except OSError:
        pass  # already taken
    try:
        # When a second cloud is started here without a port
        process, second_url, said = start_local_up(env)
    finally:
        holder.close()
    # Then it serves on a free port and keeps its state apart, and says where
    assert second_url != first_url
    assert not second_url.endswith(":4510")
    assert "port 4510 is in use" in said
    second_state = state_dir / "clouds" / "2"
    assert f"ECRM_LOCAL_STATE_DIR={second_state}" in said
    assert json.loads((second_state / "state.json").read_text())["api_url"] == second_url
    assert json.loads((state_dir / "state.json").read_text())["api_url"] == first_url
    # ... and `ecrm local up` serves the API there
    assert http("GET", f"{second_url}/health").status == 200
    # And stopping it (Ctrl-C) is clean, takes seconds and leaves the first cloud and its state alone
    took = interrupt(process)
    print(f"the second local cloud stopped in {took:.1f}s")
    assert not (second_state / "state.json").exists()
    assert (state_dir / "state.json").exists()
    assert http("GET", f"{first_url}/health").status == 200


def test_local_token_prints_a_token_the_api_accepts(local_up: tuple[str, dict[str, str]]) -> None:
    api_url, env = local_up
    staff = subprocess.run(
        [*ECRM, "local", "token", "--group", "analyst"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    customer = subprocess.run(
        [*ECRM, "local", "token", "--customer", "cus_cli_1"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert http("GET", f"{api_url}/whoami", token=staff).body["groups"] == ["analyst"]
    assert http("GET", f"{api_url}/whoami", token=customer).status == 403


def test_local_token_without_a_choice_is_a_clear_cli_error(local_up: tuple[str, dict[str, str]]) -> None:
    _, env = local_up
    result = subprocess.run([*ECRM, "local", "token"], env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert "exactly one of --group or --customer" in result.stderr


def test_local_invoke_runs_one_function_with_a_sample_event(local_up: tuple[str, dict[str, str]]) -> None:
    _, env = local_up
    sample = REPO / "events" / "samples" / "apigateway" / "rest_get_health_public.json"
    result = subprocess.run(
        [*ECRM, "local", "invoke", "PlatformApi", "--event", str(sample)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    response = json.loads(result.stdout)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["status"] == "ok"
