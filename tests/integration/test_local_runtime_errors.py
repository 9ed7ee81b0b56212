"""A failed invocation in the local cloud leaves its error and traceback in the function's log, as Lambda does.

Before, an API answered 502 and `.local-cloud/logs` held nothing about why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.local.runtime import FunctionRuntime, InvocationError, LocalFunction

FAILING_HANDLER = """
def handler(event, context):
    print("handling", event["n"])
    return helper(event)


def helper(event):
    raise RecursionError("maximum recursion depth exceeded while decoding a JSON array")
"""


def test_a_failed_invocation_logs_its_error_and_traceback(tmp_path: Path) -> None:
    # Given a function whose handler raises
    code = tmp_path / "code"
    code.mkdir()
    (code / "failing.py").write_text(FAILING_HANDLER)
    logs = tmp_path / "logs"
    echoed: list[str] = []
    runtime = FunctionRuntime("http://127.0.0.1:9", "us-east-1", logs, echo=lambda _, line: echoed.append(line))
    runtime.register(
        LocalFunction("FailingFn", "failing-fn", "arn:aws:lambda:::function:failing-fn", code, "failing", {})
    )
    try:
        # When it is invoked
        with pytest.raises(InvocationError) as raised:
            runtime.invoke("failing-fn", {"n": 1})
    finally:
        runtime.stop()
    # Then the caller gets Lambda's error shape, and the function's log holds the error with its traceback
    assert raised.value.error["errorType"] == "RecursionError"
    log = (logs / "FailingFn.log").read_text()
    assert "[ERROR] RecursionError: maximum recursion depth exceeded" in log
    assert "Traceback (most recent call last):" in log
    assert 'in helper\n    raise RecursionError("maximum recursion depth' in log
    assert any(line.startswith("[ERROR] RecursionError") for line in echoed)
