"""An engine's DynamoDB table: on-demand, point-in-time recovery, KMS, TTL, optional stream."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.settings import DeploymentSettings


class EngineTable(Construct):
    """Single-table design per engine: string keys `pk`/`sk`, TTL on `expires_at`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        settings: DeploymentSettings,
        stream: dynamodb.StreamViewType | None = None,
        global_indexes: tuple[str, ...] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute="expires_at",
            stream=stream,
            deletion_protection=settings.retain_data,
            removal_policy=settings.removal_policy,
        )
        for index in global_indexes:
            self.table.add_global_secondary_index(
                index_name=index,
                partition_key=dynamodb.Attribute(name=f"{index}_pk", type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=f"{index}_sk", type=dynamodb.AttributeType.STRING),
            )
