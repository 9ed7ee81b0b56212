"""The eCRM platform stack: the foundation, then one construct per engine."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.constructs.foundation import Foundation
from infra.constructs.lake import Lake
from infra.engines.analysis import AnalysisEngine
from infra.engines.collect import CollectEngine
from infra.engines.customers import CustomersEngine
from infra.engines.personalization import PersonalizationEngine
from infra.engines.platform import PlatformEngine
from infra.settings import LAMBDA_PYTHON_VERSION, DeploymentSettings

# Engines that hold customer data and must acknowledge every erasure request.
ERASURE_PARTICIPANTS = ("customers", "analysis", "personalization", "collect")


class PlatformStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploymentSettings,
        layer_python_version: str = LAMBDA_PYTHON_VERSION,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.foundation = Foundation(self, "Foundation", settings=settings, layer_python_version=layer_python_version)
        self.platform = PlatformEngine(self, "Platform", foundation=self.foundation)
        self.lake = Lake(self, "Lake", settings=settings)
        self.customers = CustomersEngine(
            self, "Customers", foundation=self.foundation, lake=self.lake, erasure_participants=ERASURE_PARTICIPANTS
        )
        self.analysis = AnalysisEngine(self, "Analysis", foundation=self.foundation, lake=self.lake)
        # The collection engine's lake eraser rewrites through the analysis work group.
        self.collect = CollectEngine(self, "Collect", foundation=self.foundation, lake=self.lake, queries=self.analysis)
        self.personalization = PersonalizationEngine(
            self, "Personalization", foundation=self.foundation, lake=self.lake, analysis=self.analysis
        )

        f = self.foundation
        CfnOutput(self, "ApiUrl", value=f.api.url, description="Base URL of the REST API")
        CfnOutput(self, "EventBusName", value=f.bus.event_bus_name)
        CfnOutput(self, "UserPoolId", value=f.user_pool.user_pool_id)
        CfnOutput(self, "StaffClientId", value=f.staff_client.user_pool_client_id)
        CfnOutput(self, "CustomerClientId", value=f.customer_client.user_pool_client_id)
        CfnOutput(self, "LakeBucketName", value=self.lake.bucket.bucket_name)
        CfnOutput(self, "LakeDatabaseName", value=self.lake.database_name)
        CfnOutput(self, "AthenaWorkGroup", value=self.analysis.workgroup.name)
        CfnOutput(
            self,
            "RecommenderTrainingFunctionName",
            value=self.personalization.training_job.function.function_name,
            description="Invoke it to retrain the recommender now (it also runs daily)",
        )
