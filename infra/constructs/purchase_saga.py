"""The brokered purchase as one Step Functions state machine (JSONPath, no nested executions: moto runs it).

    Reserve -> Charge -> RequestConfirmation (.waitForTaskToken, TimeoutSeconds) -> Complete -> Brokered
    any of the four fails -> Compensate -> Refund -> Release -> MarkFailed -> PurchaseFailed

Each state is a Lambda step of `functions/transactions/task_purchase_*.py` on the purchase id alone; what was
done is on the purchase, so compensation runs the same three steps whatever failed, each a no-op when there is
nothing to undo. The transient errors (a vendor or provider outage, a concurrent write, Lambda's own) are
retried by one policy declared once (`TRANSIENT_ERRORS`); a refusal, a decline or the wait's timeout goes
straight to compensation. Compensation steps retry every error longer, and a compensation that still cannot
finish fails the execution as `CompensationStuck` (alarmed with the other failed executions), leaving the
purchase `compensating` for an operator rather than pretending it ended.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.constructs.engine_function import EngineFunction
from infra.constructs.nag import acknowledge
from infra.constructs.workflow import Workflow
from infra.settings import DeploymentSettings

STEPS = ("reserve", "charge", "confirm_request", "finish", "refund", "release")
TRANSIENT_ERRORS = [
    "VendorUnavailable",
    "PaymentUnavailable",
    "StalePurchase",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
DEFAULT_CONFIRMATION_TIMEOUT = Duration.hours(1)


class PurchaseSaga(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploymentSettings,
        layers: Sequence[lambda_.ILayerVersion],
        table: dynamodb.ITable,
        environment: Mapping[str, str],
        confirmation_timeout: Duration = DEFAULT_CONFIRMATION_TIMEOUT,
    ) -> None:
        super().__init__(scope, construct_id)
        self.functions = {
            step: EngineFunction(
                self,
                "".join(part.title() for part in step.split("_")) + "Task",
                engine="transactions",
                module=f"task_purchase_{step}",
                settings=settings,
                layers=layers,
                environment=environment,
                timeout=Duration.seconds(30),
                description=f"eCRM transactions: brokered purchase step {step}",
            )
            for step in STEPS
        }
        for function in self.functions.values():
            table.grant_read_write_data(function.function)
        self.workflow = Workflow(
            self,
            "Workflow",
            settings=settings,
            definition=self._definition(confirmation_timeout),
            # Longer than every wait and retry together: an execution timeout would skip compensation.
            timeout=confirmation_timeout.plus(Duration.hours(2)),
            comment="Brokered purchase: reserve, charge, vendor confirmation by callback, complete; or compensate",
        )
        self.state_machine = self.workflow.state_machine
        # A retried confirmation request may find the vendor's answer already in and answer its new token itself.
        # A policy of its own: the role's default policy is what the function waits for, and the state machine
        # waits for the function, so granting there would be a circular dependency.
        iam.Policy(
            self,
            "ConfirmRequestAnswersTokens",
            roles=[self.functions["confirm_request"].role],
            statements=[
                iam.PolicyStatement(
                    actions=["states:SendTaskSuccess", "states:SendTaskFailure"],
                    resources=[self.state_machine.state_machine_arn],
                )
            ],
        )
        self.workflow.acknowledge_invokes(*(f.function for f in self.functions.values()))
        table_id = Stack.of(self).get_logical_id(table.node.default_child)  # type: ignore[arg-type]
        for function in self.functions.values():
            acknowledge(
                function.role,
                "AwsSolutions-IAM5",
                "The engine's own table and its indexes.",
                applies_to=[f"Resource::<{table_id}.Arn>/index/*"],
            )

    def _definition(self, confirmation_timeout: Duration) -> sfn.IChainable:
        reserve = self._step("Reserve", "reserve")
        charge = self._step("Charge", "charge")
        confirm = tasks.LambdaInvoke(
            self,
            "RequestConfirmation",
            lambda_function=self.functions["confirm_request"].function,
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            payload=sfn.TaskInput.from_object(
                {"purchase_id.$": "$.purchase_id", "task_token": sfn.JsonPath.task_token}
            ),
            task_timeout=sfn.Timeout.duration(confirmation_timeout),
            retry_on_service_exceptions=False,
            result_path="$.confirmation",
        )
        complete = self._step("Complete", "finish", {"step": "complete"})
        for state in (reserve, charge, confirm, complete):
            _retry_transient(state)

        stuck = sfn.Fail(self, "CompensationStuck", error="CompensationStuck", cause="see the purchase's status")
        compensate = self._step(
            "Compensate",
            "finish",
            {"step": "compensate", "error.$": "$.error.Error", "cause.$": "$.error.Cause"},
        )
        refund = self._step("Refund", "refund")
        release = self._step("Release", "release")
        mark_failed = self._step("MarkFailed", "finish", {"step": "fail"})
        for state in (compensate, refund, release, mark_failed):
            state.add_retry(errors=["States.ALL"], interval=Duration.seconds(5), max_attempts=6, backoff_rate=2)
            state.add_catch(stuck, errors=["States.ALL"], result_path="$.compensation_error")
        compensation = (
            compensate.next(refund)
            .next(release)
            .next(mark_failed)
            .next(
                sfn.Fail(
                    self, "PurchaseFailed", error="PurchaseFailed", cause="compensated: see the purchase's failure"
                )
            )
        )
        for state in (reserve, charge, confirm, complete):
            state.add_catch(compensation, errors=["States.ALL"], result_path="$.error")
        return reserve.next(charge).next(confirm).next(complete).next(sfn.Succeed(self, "Brokered"))

    def _step(self, name: str, step: str, extra: Mapping[str, object] | None = None) -> tasks.LambdaInvoke:
        return tasks.LambdaInvoke(
            self,
            name,
            lambda_function=self.functions[step].function,
            payload=sfn.TaskInput.from_object({"purchase_id.$": "$.purchase_id", **(extra or {})}),
            retry_on_service_exceptions=False,
            result_path=sfn.JsonPath.DISCARD,
        )


def _retry_transient(state: tasks.LambdaInvoke) -> None:
    """The one retry policy of the forward steps: outages and races, never a refusal or the wait's timeout."""
    state.add_retry(
        errors=TRANSIENT_ERRORS,
        interval=Duration.seconds(2),
        max_attempts=4,
        backoff_rate=2,
        jitter_strategy=sfn.JitterType.FULL,
    )
