"""A Lambda function of an engine: its own role, its own log group, the common layer.

Code is the engine's folder under `functions/`; the handler is `<module>.handler`. The role gets
exactly what the function is granted afterwards, plus writing to its own log group (no managed
policy). The `ecrm:source` metadata tells the embedded local cloud where the code lives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.nag import acknowledge
from infra.settings import FUNCTIONS_DIR, LAMBDA_ARCHITECTURE, LAMBDA_RUNTIME, DeploymentSettings

RETENTION = {
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    90: logs.RetentionDays.THREE_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}


class EngineFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        engine: str,
        module: str,
        settings: DeploymentSettings,
        layers: Sequence[lambda_.ILayerVersion],
        environment: Mapping[str, str] | None = None,
        timeout: Duration = Duration.seconds(10),
        memory_size: int = 512,
        description: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        source = FUNCTIONS_DIR / engine
        if not (source / f"{module}.py").is_file():
            raise ValueError(f"no handler module functions/{engine}/{module}.py")
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=RETENTION.get(settings.log_retention_days, logs.RetentionDays.ONE_MONTH),
            removal_policy=settings.removal_policy,
        )
        self.role = iam.Role(
            self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description=f"eCRM {engine}/{module}"
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[self.log_group.log_group_arn]
            )
        )
        env = {
            "POWERTOOLS_SERVICE_NAME": f"ecrm-{engine}",
            "POWERTOOLS_METRICS_NAMESPACE": "ecrm",
            "ECRM_STAGE": settings.stage,
            "ECRM_TRACING": "true" if settings.tracing else "false",
            **(environment or {}),
        }
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=LAMBDA_RUNTIME,
            architecture=LAMBDA_ARCHITECTURE,
            handler=f"{module}.handler",
            code=lambda_.Code.from_asset(str(source), exclude=["__pycache__", "*.pyc"]),
            layers=list(layers),
            environment=env,
            timeout=timeout,
            memory_size=memory_size,
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE if settings.tracing else lambda_.Tracing.DISABLED,
            description=description or f"eCRM {engine}: {module}",
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            "CDK's grants on the engine's KMS key use the kms:GenerateDataKey* and kms:ReEncrypt* "
            "action families; the resource is that one key.",
            applies_to=["Action::kms:GenerateDataKey*", "Action::kms:ReEncrypt*"],
        )
        cfn = self.function.node.default_child
        assert isinstance(cfn, lambda_.CfnFunction)
        cfn.add_metadata("ecrm:source", f"functions/{engine}")
        cfn.add_metadata("ecrm:module", module)

    def add_environment(self, key: str, value: str) -> None:
        self.function.add_environment(key, value)
