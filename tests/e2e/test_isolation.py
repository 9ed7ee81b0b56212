"""Each function runs in its own process with exactly its configured environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from infra.local.runtime import FunctionRuntime, InvocationError, LocalFunction

PROBE = """
import os
def handler(event, context):
    if event.get("fail"):
        raise KeyError("asked to fail")
    return {"env": dict(os.environ), "remaining": context.get_remaining_time_in_millis()}
"""


@pytest.fixture
def runtime(tmp_path: Path) -> FunctionRuntime:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "probe.py").write_text(PROBE)
    runtime = FunctionRuntime("http://127.0.0.1:9", "us-east-1", tmp_path / "logs")
    runtime.register(
        LocalFunction(
            "Probe",
            "probe-fn",
            "arn:aws:lambda:us-east-1:123456789012:function:probe-fn",
            tmp_path / "code",
            "probe",
            {"ONLY_MINE": "yes"},
            timeout_s=5,
        )
    )
    yield runtime
    runtime.stop()


def test_the_sandbox_sees_only_its_own_environment(runtime: FunctionRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECRM_PARENT_ONLY", "leak")
    result = runtime.invoke("probe-fn", {})
    env = result["env"]
    assert env["ONLY_MINE"] == "yes"
    assert "ECRM_PARENT_ONLY" not in env
    assert set(env) <= set(runtime.sandbox_environment(runtime.functions["probe-fn"])) | {"PWD", "LC_CTYPE"}
    assert 0 < result["remaining"] <= 5000
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"
    assert os.getpid() != int(env.get("PPID", "0") or 0)


def test_a_handler_error_comes_back_in_lambdas_error_shape(runtime: FunctionRuntime) -> None:
    with pytest.raises(InvocationError) as raised:
        runtime.invoke("probe-fn", {"fail": True})
    assert raised.value.error["errorType"] == "KeyError"
    # And the sandbox stays warm for the next invocation
    assert runtime.invoke("probe-fn", {})["env"]["ONLY_MINE"] == "yes"
