"""Step Functions waits on the local clock instead of real time (moto 5.2.5 waits in wall time).

Patched in moto's ASL interpreter (each guarded by `tests/integration/test_local_stepfunctions_clock.py`):
- `WaitFunction._wait_interval`: a Wait state (`Seconds`, `SecondsPath`, `Timestamp`,
  `TimestampPath`) ends when the local clock reaches its end; `advance` wakes it at once; a stopped
  execution still ends it.
- `Timestamp._get_wait_seconds`: the seconds left are counted from the local clock (moto compares
  the UTC timestamp with the host's *local* naive time).
- `ExecutionState._evaluate_with_timeout`: a task's `TimeoutSeconds` (`States.Timeout`) counts
  local time, so a `.waitForTaskToken` task times out when the clock is advanced past it.
- `StateTaskServiceCallback._wait_for_task_token_timeout` and `HeartbeatEndpoint.clear_and_wait`:
  the token's wait and `HeartbeatSeconds` count local time too.
- `retrier_decl.time`: a Retrier's backoff sleeps on the local clock.
Each wait is registered with the clock under its execution's ARN, so `LocalClock.advance` returns
once the execution has moved on to its next wait or ended.
"""

from __future__ import annotations

import copy
import threading
from datetime import UTC
from types import SimpleNamespace
from typing import Any

from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEventException
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import EvalTimeoutError
from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import Timestamp
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint, HeartbeatEndpoint
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.utils import TMP_THREADS

from infra.local.clock import LocalClock

MOTO: dict[str, Any] = {
    "wait_interval": WaitFunction._wait_interval,
    "timestamp_wait_seconds": Timestamp._get_wait_seconds,
    "evaluate_with_timeout": ExecutionState._evaluate_with_timeout,
    "wait_for_task_token_timeout": StateTaskServiceCallback._wait_for_task_token_timeout,
    "heartbeat_clear_and_wait": HeartbeatEndpoint.clear_and_wait,
    "retrier_time": retrier_decl.time,
}
_clock: LocalClock | None = None


def install(clock: LocalClock) -> None:
    global _clock
    _clock = clock
    WaitFunction._wait_interval = _wait_interval  # type: ignore[method-assign]
    Timestamp._get_wait_seconds = _timestamp_wait_seconds  # type: ignore[method-assign]
    ExecutionState._evaluate_with_timeout = _evaluate_with_timeout  # type: ignore[method-assign]
    StateTaskServiceCallback._wait_for_task_token_timeout = _wait_for_task_token_timeout  # type: ignore[method-assign]
    HeartbeatEndpoint.clear_and_wait = _heartbeat_clear_and_wait  # type: ignore[method-assign]
    retrier_decl.time = SimpleNamespace(sleep=_sleep)  # type: ignore[assignment]


def uninstall() -> None:
    global _clock
    _clock = None
    WaitFunction._wait_interval = MOTO["wait_interval"]  # type: ignore[method-assign]
    Timestamp._get_wait_seconds = MOTO["timestamp_wait_seconds"]  # type: ignore[method-assign]
    ExecutionState._evaluate_with_timeout = MOTO["evaluate_with_timeout"]  # type: ignore[method-assign]
    StateTaskServiceCallback._wait_for_task_token_timeout = MOTO["wait_for_task_token_timeout"]  # type: ignore[method-assign]
    HeartbeatEndpoint.clear_and_wait = MOTO["heartbeat_clear_and_wait"]  # type: ignore[method-assign]
    retrier_decl.time = MOTO["retrier_time"]


def execution_arn(env: Environment) -> str:
    return str(env.states.context_object.context_object_data["Execution"]["Id"])


def _local() -> LocalClock:
    assert _clock is not None, "stepfunctions_clock.install(clock) first"
    return _clock


def _wait_interval(self: WaitFunction, env: Environment, wait_seconds: int) -> None:
    if wait_seconds > 0:
        _local().wait(wait_seconds, key=execution_arn(env), abandoned=lambda: not env.is_running())


def _timestamp_wait_seconds(self: Timestamp, env: Environment) -> int:
    self.string.eval(env=env)
    text: str = env.stack.pop()
    timestamp = self._from_timestamp_string(timestamp=text)
    if timestamp is None:
        raise FailureEventException(self._create_failure_event(env, text))
    return int((timestamp.replace(tzinfo=UTC) - _local().now()).total_seconds())


def _evaluate_with_timeout(self: ExecutionState, env: Environment) -> None:
    """moto's own, with the timeout counted on the local clock."""
    self.timeout.eval(env=env)
    timeout_seconds: int = env.stack.pop()

    frame: Environment = env.open_frame()
    frame.states.reset(input_value=env.states.get_input())
    frame.stack = copy.deepcopy(env.stack)
    outputs: list[Any] = []
    exceptions: list[Exception | None] = [None]
    terminated = threading.Event()

    def execute_and_notify() -> None:
        try:
            self._eval_execution(frame)
            outputs.extend(frame.stack)
        except Exception as ex:
            exceptions.append(ex)
        terminated.set()

    thread = threading.Thread(target=execute_and_notify, daemon=True)
    TMP_THREADS.append(thread)
    thread.start()

    finished_on_time = (
        _local().wait(timeout_seconds, key=execution_arn(env), done=terminated, abandoned=lambda: not env.is_running())
        or terminated.is_set()
    )
    frame.set_ended()
    env.close_frame(frame)

    exception = exceptions.pop()
    if exception:
        raise exception
    if not finished_on_time:
        raise EvalTimeoutError()
    output = outputs.pop()
    env.stack.append(output)
    if not self._is_language_query_jsonpath():
        env.states.set_result(output)
    if self.assign_decl:
        self.assign_decl.eval(env=env)
    if self.result_selector:
        self.result_selector.eval(env=env)
    if self.result_path:
        self.result_path.eval(env)
    else:
        env.states.reset(input_value=env.stack.pop())


def _wait_for_task_token_timeout(
    self: StateTaskServiceCallback, timeout_seconds: int, callback_endpoint: CallbackEndpoint
) -> Any:
    _local().wait(timeout_seconds, done=callback_endpoint._notify_event)
    return callback_endpoint.get_outcome()


def _heartbeat_clear_and_wait(self: HeartbeatEndpoint) -> bool:
    with self._mutex:
        if self._next_heartbeat_event.is_set():
            self._next_heartbeat_event.clear()
            return True
    return _local().wait(self._heartbeat_seconds, done=self._next_heartbeat_event)


def _sleep(seconds: float) -> None:
    if seconds > 0:
        _local().wait(seconds)
