"""A Step Functions state machine with logging of every event and X-Ray tracing."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.nag import acknowledge
from infra.settings import DeploymentSettings


class Workflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        definition: sfn.IChainable,
        settings: DeploymentSettings,
        timeout: Duration = Duration.minutes(15),
        comment: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=settings.removal_policy
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=timeout,
            tracing_enabled=True,
            comment=comment,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        )
        acknowledge(
            self.state_machine,
            "AwsSolutions-IAM5",
            "X-Ray and CloudWatch Logs delivery APIs do not support resource-level permissions.",
            applies_to=["Resource::*"],
        )

    def acknowledge_invokes(self, *functions: lambda_.IFunction) -> None:
        """LambdaInvoke tasks are granted every version of their function (`<arn>:*`)."""
        stack = Stack.of(self)
        findings = [f"Resource::<{stack.get_logical_id(fn.node.default_child)}.Arn>:*" for fn in functions]  # type: ignore[arg-type]
        acknowledge(
            self.state_machine,
            "AwsSolutions-IAM5",
            "Step Functions LambdaInvoke is granted the function and its versions/aliases.",
            applies_to=findings,
        )
