"""The brokered purchase's state machine, built as a construct in a throwaway stack: one JSONPath machine
(what moto runs), the wait for the vendor by task token with its timeout, the transient retry declared once,
and every forward state caught into the one compensation chain, which itself can only end failed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template

from infra.app import cdk_json_context
from infra.constructs.purchase_saga import TRANSIENT_ERRORS, PurchaseSaga
from infra.settings import DeploymentSettings

pytestmark = pytest.mark.xdist_group("infra")
FORWARD = ("Reserve", "Charge", "RequestConfirmation", "Complete")
COMPENSATION = ("Compensate", "Refund", "Release", "MarkFailed")


def _joined(value: Any) -> str:
    """The definition with its ARNs (CloudFormation references) as placeholders."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join(part if isinstance(part, str) else "ARN" for part in value["Fn::Join"][1])
    raise AssertionError(value)


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    layer_dir: Path = tmp_path_factory.mktemp("layer")
    (layer_dir / "python").mkdir()
    context = {**cdk_json_context(), "aws:cdk:bundling-stacks": []}
    app = cdk.App(outdir=str(tmp_path_factory.mktemp("saga.cdk.out")), context=context)
    stack = cdk.Stack(app, "PurchaseSagaTest")
    table = dynamodb.Table(
        stack, "Table", partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING)
    )
    layer = lambda_.LayerVersion(stack, "Layer", code=lambda_.Code.from_asset(str(layer_dir)))
    PurchaseSaga(
        stack,
        "Saga",
        settings=DeploymentSettings(prefix="ecrm-dev"),
        layers=[layer],
        table=table,
        environment={"TRANSACTIONS_TABLE_NAME": "t"},
        confirmation_timeout=cdk.Duration.minutes(30),
    )
    template = Template.from_stack(stack)
    (resource,) = template.find_resources("AWS::StepFunctions::StateMachine").values()
    definition: dict[str, Any] = json.loads(_joined(resource["Properties"]["DefinitionString"]))
    definition["_functions"] = template.find_resources("AWS::Lambda::Function")
    return definition


def test_the_happy_path_is_reserve_charge_wait_for_the_vendor_complete(machine):
    states = machine["States"]
    assert machine["StartAt"] == "Reserve"
    assert [states[s]["Next"] for s in FORWARD] == ["Charge", "RequestConfirmation", "Complete", "Brokered"]
    assert states["Brokered"]["Type"] == "Succeed"
    assert "QueryLanguage" not in machine or machine["QueryLanguage"] == "JSONPath"
    assert all(states[s]["Type"] in {"Task", "Fail", "Succeed"} for s in states)  # no nested execution, no Map


def test_the_confirmation_waits_on_a_task_token_with_the_configured_timeout(machine):
    confirm = machine["States"]["RequestConfirmation"]
    assert confirm["Resource"].endswith(":states:::lambda:invoke.waitForTaskToken")
    assert confirm["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
    assert confirm["TimeoutSeconds"] == 1800
    # And the whole execution outlives the wait with its retries, or compensation would never run
    assert machine["TimeoutSeconds"] > 1800 + 3600


def test_transient_errors_are_retried_by_one_policy_and_nothing_else_is(machine):
    for name in FORWARD:
        (retry,) = machine["States"][name]["Retry"]
        assert retry["ErrorEquals"] == TRANSIENT_ERRORS, name
    assert "States.Timeout" not in TRANSIENT_ERRORS
    assert not {"VendorRefused", "PaymentDeclined", "ConfirmationRefused", "States.ALL"} & set(TRANSIENT_ERRORS)


def test_every_forward_failure_is_compensated_and_compensation_ends_failed(machine):
    states = machine["States"]
    for name in FORWARD:
        (catch,) = states[name]["Catch"]
        assert (catch["ErrorEquals"], catch["Next"], catch["ResultPath"]) == (["States.ALL"], "Compensate", "$.error")
    assert [states[s].get("Next") for s in COMPENSATION] == ["Refund", "Release", "MarkFailed", "PurchaseFailed"]
    for name in COMPENSATION:
        assert states[name]["Retry"][0]["ErrorEquals"] == ["States.ALL"]
        assert states[name]["Catch"][0]["Next"] == "CompensationStuck"
    assert states["PurchaseFailed"]["Type"] == states["CompensationStuck"]["Type"] == "Fail"
    compensate = states["Compensate"]["Parameters"]["Payload"]
    assert (compensate["error.$"], compensate["cause.$"]) == ("$.error.Error", "$.error.Cause")


def test_each_step_is_its_own_function(machine):
    modules = sorted(
        f["Properties"]["Handler"]
        for f in machine["_functions"].values()
        if "task_purchase" in f["Properties"]["Handler"]
    )
    assert modules == [
        f"task_purchase_{step}.handler"
        for step in ("charge", "confirm_request", "finish", "refund", "release", "reserve")
    ]
