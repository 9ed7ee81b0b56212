"""The saga's Lambda steps are thin: each validates the state machine's input, calls its one service method,
and lets the service's errors out by their names (what the state machine's Retry and Catch match)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from functions.transactions import (
    task_purchase_charge,
    task_purchase_confirm_request,
    task_purchase_finish,
    task_purchase_refund,
    task_purchase_release,
    task_purchase_reserve,
)

PURCHASE = "pur_01JD3Z6Q5N8V4W7X2Y9A0B1C2D"


class Done:
    def __init__(self, status: str) -> None:
        self.purchase_id, self.status, self.failure = PURCHASE, status, None


class RecordingService:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Done:
            self.calls.append((name, args))
            if name == "reserve":
                raise type("VendorRefused", (Exception,), {})("no")
            return Done(name)

        return call


@pytest.mark.parametrize(
    ("module", "method"),
    [
        (task_purchase_charge, "charge"),
        (task_purchase_refund, "refund"),
        (task_purchase_release, "release"),
    ],
)
def test_each_step_calls_its_one_method(module: Any, method: str, lambda_context: Any) -> None:
    service = RecordingService()
    assert module.handler({"purchase_id": PURCHASE}, lambda_context, service) == {
        "purchase_id": PURCHASE,
        "status": method,
    }
    assert service.calls == [(method, (PURCHASE,))]


def test_a_service_error_leaves_the_step_by_its_name(lambda_context: Any) -> None:
    with pytest.raises(Exception) as raised:
        task_purchase_reserve.handler({"purchase_id": PURCHASE}, lambda_context, RecordingService())
    assert type(raised.value).__name__ == "VendorRefused"


def test_the_confirmation_request_carries_the_task_token(lambda_context: Any) -> None:
    service = RecordingService()
    event = {"purchase_id": PURCHASE, "task_token": "tok"}
    task_purchase_confirm_request.handler(event, lambda_context, service)
    assert service.calls == [("request_confirmation", (PURCHASE, "tok"))]
    with pytest.raises(Exception, match="task token"):
        task_purchase_confirm_request.handler({"purchase_id": PURCHASE}, lambda_context, service)


def test_the_finish_step_completes_compensates_or_fails(lambda_context: Any) -> None:
    service = RecordingService()
    for event in (
        {"step": "complete"},
        {"step": "compensate", "error": "States.Timeout", "cause": "waited"},
        {"step": "fail"},
    ):
        task_purchase_finish.handler({"purchase_id": PURCHASE, **event}, lambda_context, service)
    assert [name for name, _ in service.calls] == ["complete", "compensate", "fail"]
    assert service.calls[1][1] == (PURCHASE, "States.Timeout", "waited")


def test_a_malformed_input_is_refused_before_any_call(lambda_context: Any) -> None:
    service = RecordingService()
    with pytest.raises(ValidationError):
        task_purchase_charge.handler({"purchase_id": "not-a-purchase"}, lambda_context, service)
    with pytest.raises(ValidationError):
        task_purchase_finish.handler({"purchase_id": PURCHASE, "step": "explode"}, lambda_context, service)
    assert service.calls == []
