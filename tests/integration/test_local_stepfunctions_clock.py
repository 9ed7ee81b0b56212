"""Step Functions on the local clock: Wait states, task timeouts and retries end when the clock passes them.

Each test runs a state machine in moto (executions really run) with `stepfunctions_clock` installed,
moves the clock, and never sleeps the waited time. The last tests guard the patched moto internals.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.config import default_user_config

from infra.local import stepfunctions_clock
from infra.local.clock import LocalClock

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/sfn"


@pytest.fixture
def clock() -> Iterator[LocalClock]:
    clock = LocalClock(settle_timeout=10)
    stepfunctions_clock.install(clock)
    yield clock
    stepfunctions_clock.uninstall()


@pytest.fixture
def sfn(clock: LocalClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setitem(default_user_config["stepfunctions"], "execute_state_machine", True)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        client = boto3.client("stepfunctions", region_name=REGION)
        clock.execution_running = lambda arn: client.describe_execution(executionArn=arn)["status"] == "RUNNING"
        yield client


def start(sfn: Any, definition: dict[str, Any], payload: dict[str, Any] | None = None) -> str:
    machine = sfn.create_state_machine(name="m", definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"]
    return str(
        sfn.start_execution(stateMachineArn=machine, name="run-1", input=json.dumps(payload or {}))["executionArn"]
    )


def status(sfn: Any, arn: str) -> str:
    return str(sfn.describe_execution(executionArn=arn)["status"])


def finished(sfn: Any, arn: str, timeout: float = 20) -> dict[str, Any]:
    """The execution once it is no longer RUNNING (bounded; the run itself takes milliseconds)."""
    deadline = time.monotonic() + timeout
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution is still running"
        time.sleep(0.05)
    return dict(described)


def two_waits(**wait: Any) -> dict[str, Any]:
    return {
        "StartAt": "Wait",
        "States": {"Wait": {"Type": "Wait", "Next": "Done", **wait}, "Done": {"Type": "Pass", "End": True}},
    }


def test_a_two_day_wait_completes_when_the_clock_is_advanced_two_days(sfn: Any, clock: LocalClock) -> None:
    # Given an execution waiting two days
    arn = start(sfn, two_waits(Seconds=2 * 86400))
    assert clock.until_waiting(arn)
    # When the clock moves a day, it still waits; when it moves another, it has completed
    clock.advance(timedelta(days=1))
    assert status(sfn, arn) == "RUNNING"
    clock.advance(timedelta(days=1))
    assert finished(sfn, arn)["status"] == "SUCCEEDED"


@pytest.mark.parametrize(
    ("wait", "payload"),
    [
        ({"SecondsPath": "$.seconds"}, {"seconds": 3600}),
        ({"TimestampPath": "$.until"}, {"until": "__IN_AN_HOUR__"}),
    ],
)
def test_paths_and_timestamps_end_on_the_local_clock(
    sfn: Any, clock: LocalClock, wait: dict[str, Any], payload: dict[str, Any]
) -> None:
    if "until" in payload:
        payload = {"until": (clock.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    arn = start(sfn, two_waits(**wait), payload)
    assert clock.until_waiting(arn)
    clock.advance(timedelta(minutes=59))
    assert status(sfn, arn) == "RUNNING"
    clock.advance(timedelta(minutes=2))
    assert finished(sfn, arn)["status"] == "SUCCEEDED"


def test_a_timestamp_in_the_local_clock_s_past_does_not_wait(sfn: Any, clock: LocalClock) -> None:
    clock.advance(timedelta(days=10))
    past = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")  # real future, local past
    arn = start(sfn, two_waits(Timestamp=past))
    assert finished(sfn, arn)["status"] == "SUCCEEDED"


def test_one_advance_passes_consecutive_waits_in_order(sfn: Any, clock: LocalClock) -> None:
    definition = {
        "StartAt": "First",
        "States": {
            "First": {"Type": "Wait", "Seconds": 86400, "Next": "Second"},
            "Second": {"Type": "Wait", "Seconds": 86400, "Next": "Done"},
            "Done": {"Type": "Pass", "End": True},
        },
    }
    arn = start(sfn, definition)
    assert clock.until_waiting(arn)
    clock.advance(timedelta(days=2, minutes=1))
    assert finished(sfn, arn)["status"] == "SUCCEEDED"


def test_a_task_token_wait_times_out_on_the_local_clock(sfn: Any, clock: LocalClock) -> None:
    # Given a task waiting for a token for at most an hour (nobody will send it)
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="tokens")["QueueUrl"]
    definition = {
        "StartAt": "Ask",
        "States": {
            "Ask": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": url, "MessageBody": {"token.$": "$$.Task.Token"}},
                "TimeoutSeconds": 3600,
                "End": True,
            }
        },
    }
    arn = start(sfn, definition)
    assert clock.until_waiting(arn)
    # When the clock passes the hour, the task fails with States.Timeout
    clock.advance(timedelta(hours=1, seconds=1))
    described = finished(sfn, arn)
    assert described["status"] == "FAILED"
    assert described["error"] == "States.Timeout"


def test_a_task_s_result_selector_and_result_path_still_apply(sfn: Any, clock: LocalClock) -> None:
    url = boto3.client("sqs", region_name=REGION).create_queue(QueueName="results")["QueueUrl"]
    definition = {
        "StartAt": "Send",
        "States": {
            "Send": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage",
                "Parameters": {"QueueUrl": url, "MessageBody": "hi"},
                "ResultSelector": {"id.$": "$.MessageId"},
                "ResultPath": "$.sent",
                "End": True,
            }
        },
    }
    arn = start(sfn, definition, {"keep": 1})
    output = json.loads(finished(sfn, arn)["output"])
    assert output["keep"] == 1
    assert set(output["sent"]) == {"id"}


def test_stopping_an_execution_ends_its_wait(sfn: Any, clock: LocalClock) -> None:
    arn = start(sfn, two_waits(Seconds=86400))
    assert clock.until_waiting(arn)
    sfn.stop_execution(executionArn=arn)
    assert finished(sfn, arn)["status"] == "ABORTED"
    deadline = time.monotonic() + 5
    while clock.is_waiting(arn):
        assert time.monotonic() < deadline, "the stopped execution still waits on the clock"
        time.sleep(0.05)


# -- the patched moto internals (a moto upgrade that changes them fails here) --------------------


def test_the_patched_moto_functions_are_the_ones_that_wait_in_real_time() -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import Timestamp
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint, HeartbeatEndpoint

    moto = stepfunctions_clock.MOTO
    assert "env.program_state_event.wait(wait_seconds)" in inspect.getsource(moto["wait_interval"])
    assert list(inspect.signature(moto["wait_interval"]).parameters) == ["self", "env", "wait_seconds"]
    assert "datetime.datetime.now()" in inspect.getsource(moto["timestamp_wait_seconds"])
    assert {"_from_timestamp_string", "_create_failure_event"} <= set(vars(Timestamp))
    evaluate = inspect.getsource(moto["evaluate_with_timeout"])
    assert "terminated_event.wait(timeout_seconds)" in evaluate
    assert "self._eval_execution(frame)" in evaluate
    assert "TMP_THREADS.append(thread)" in evaluate
    # what follows the wait is copied from moto: the output, Assign, ResultSelector and ResultPath
    tail = evaluate.split("raise EvalTimeoutError()", 1)[1]
    for step in (
        "env.states.set_result(execution_output)",
        "self.assign_decl.eval(env=env)",
        "self.result_selector.eval(env=env)",
        "self.result_path.eval(env)",
        "env.states.reset(input_value=res)",
    ):
        assert step in tail
    assert tail.count("\n        if ") == 4  # no further step was added after the wait
    assert "_evaluate_with_timeout" in vars(ExecutionState)
    assert "callback_endpoint.wait(" in inspect.getsource(moto["wait_for_task_token_timeout"])
    assert "_wait_for_task_token_timeout" in vars(state_task_service_callback.StateTaskServiceCallback)
    assert "self._notify_event.wait(timeout=timeout)" in inspect.getsource(CallbackEndpoint.wait)
    heartbeat = inspect.getsource(moto["heartbeat_clear_and_wait"])
    assert "self._next_heartbeat_event.wait(timeout=self._heartbeat_seconds)" in heartbeat
    assert "_mutex" in inspect.getsource(HeartbeatEndpoint.__init__)
    assert "time.sleep(interval_seconds)" in inspect.getsource(retrier_decl.RetrierDecl)
    assert moto["retrier_time"] is time
