"""The operator's commands against a real `ecrm local up` process, as the README shows them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ecrm_ops.tour.context import http

REPO = Path(__file__).resolve().parents[2]
ECRM = [sys.executable, "-m", "ecrm_ops.cli"]


@pytest.fixture(scope="module")
def local_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    env = {**os.environ, "ECRM_LOCAL_STATE_DIR": str(tmp_path_factory.mktemp("cli-cloud"))}
    process = subprocess.Popen(
        [*ECRM, "local", "up", "--port", "0"],
        cwd=REPO,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
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
    yield api_url, env
    # When it is interrupted (Ctrl-C), it stops cleanly
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0


def test_local_up_serves_the_api(local_up: tuple[str, dict[str, str]]) -> None:
    api_url, _ = local_up
    assert http("GET", f"{api_url}/health").status == 200


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
