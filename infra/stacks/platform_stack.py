"""The eCRM platform stack: the foundation in the root, then one nested stack per engine.

Adding an engine is its construct under `infra/engines/` and one `EngineStack.host(...)` line here.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Aspects, CfnOutput, Stack
from constructs import Construct

from infra.constructs.alarms import AlarmTopic, NotifyOnAlarms
from infra.constructs.foundation import Foundation
from infra.constructs.lake import Lake
from infra.engines.analysis import AnalysisEngine
from infra.engines.broadcast import BroadcastEngine
from infra.engines.campaigns import CampaignsEngine
from infra.engines.collect import CollectEngine
from infra.engines.customers import CustomersEngine
from infra.engines.insights import InsightsEngine
from infra.engines.personalization import PersonalizationEngine
from infra.engines.platform import PlatformEngine
from infra.engines.transactions import TransactionsEngine
from infra.settings import LAMBDA_PYTHON_VERSION, DeploymentSettings
from infra.stacks.engine_stack import EngineStack

# Engines that hold customer data and must acknowledge every erasure request.
ERASURE_PARTICIPANTS = (
    "customers",
    "analysis",
    "personalization",
    "collect",
    "transactions",
    "broadcast",
    "campaigns",
    "insights",
)


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
        f = self.foundation
        self.lake = Lake(self, "Lake", settings=settings)
        self.platform = EngineStack.host(self, "Platform", PlatformEngine, foundation=f)
        self.customers = EngineStack.host(
            self, "Customers", CustomersEngine, foundation=f, lake=self.lake, erasure_participants=ERASURE_PARTICIPANTS
        )
        self.analysis = EngineStack.host(self, "Analysis", AnalysisEngine, foundation=f, lake=self.lake)
        # The collection engine's lake eraser rewrites through the analysis work group.
        self.collect = EngineStack.host(
            self, "Collect", CollectEngine, foundation=f, lake=self.lake, queries=self.analysis
        )
        self.personalization = EngineStack.host(
            self, "Personalization", PersonalizationEngine, foundation=f, lake=self.lake, analysis=self.analysis
        )
        self.broadcast = EngineStack.host(
            self,
            "Broadcast",
            BroadcastEngine,
            foundation=f,
            customers=self.customers,
            lake=self.lake,
            templates=self.personalization.templates.function,
        )
        self.transactions = EngineStack.host(
            self,
            "Transactions",
            TransactionsEngine,
            foundation=f,
            lake=self.lake,
            personalization=self.personalization,
            customers=self.customers,
        )
        self.campaigns = EngineStack.host(
            self,
            "Campaigns",
            CampaignsEngine,
            foundation=f,
            lake=self.lake,
            customers=self.customers,
            broadcast_request=self.broadcast.request_messages.function,
            recommend=self.personalization.recommend.function,
        )
        self.insights = EngineStack.host(
            self,
            "Insights",
            InsightsEngine,
            foundation=f,
            lake=self.lake,
            broadcast=self.broadcast,
            campaigns=self.campaigns,
        )

        # Every alarm of the stack, in the root and in each engine's nested stack, notifies the topic.
        self.alarms = AlarmTopic(self, "Alarms", settings=settings)
        Aspects.of(self).add(NotifyOnAlarms(self.alarms.topic))

        CfnOutput(self, "ApiUrl", value=f.api.url, description="Base URL of the REST API (its stage included)")
        CfnOutput(self, "EventBusName", value=f.bus.event_bus_name, description="The EventBridge bus of domain events")
        CfnOutput(
            self, "UserPoolId", value=f.user_pool.user_pool_id, description="Cognito user pool of staff and customers"
        )
        CfnOutput(
            self,
            "StaffClientId",
            value=f.staff_client.user_pool_client_id,
            description="App client for staff sign-in (SRP; ADMIN_USER_PASSWORD_AUTH for operators with IAM rights)",
        )
        CfnOutput(
            self,
            "CustomerClientId",
            value=f.customer_client.user_pool_client_id,
            description="App client for customer sign-in and sign-up (SRP)",
        )
        CfnOutput(
            self,
            "LakeBucketName",
            value=self.lake.bucket.bucket_name,
            description="S3 bucket of the data lake (Parquet tables, Athena results, audiences, models)",
        )
        CfnOutput(
            self,
            "LakeDatabaseName",
            value=self.lake.database_name,
            description="Glue database of the lake's tables (query it in the Athena work group)",
        )
        CfnOutput(
            self,
            "AthenaWorkGroup",
            value=self.analysis.workgroup.name,
            description="Athena work group for the lake (results under query-results/ of the lake bucket)",
        )
        CfnOutput(
            self,
            "AlarmTopicArn",
            value=self.alarms.topic.topic_arn,
            description="SNS topic every alarm notifies (subscribe more endpoints to it)",
        )
        CfnOutput(
            self,
            "RecommenderTrainingFunctionName",
            value=self.personalization.training_job.function.function_name,
            description="Invoke it to retrain the recommender now (it also runs daily)",
        )
