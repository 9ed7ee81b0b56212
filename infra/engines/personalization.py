"""Personalization in the cloud: its table, the read API, the recommend function other engines invoke, the
projection consumer, the recommender training job.

The API answers from precomputed data (no ml layer on it); the projection consumer keeps what personalization
knows of each customer from the customer store's and segmentation's events, and acknowledges erasures; the
training job reads interactions from the lake through the analysis engine's Athena work group, writes what
requests read to the table and the full model to the lake bucket under `models/recommender/`.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from constructs import Construct

from infra.constructs.api_function import ApiFunction, ApiRoute
from infra.constructs.engine_function import EngineFunction
from infra.constructs.engine_table import EngineTable
from infra.constructs.event_queue import EventRuleToQueue, QueueConsumer
from infra.constructs.foundation import Foundation
from infra.constructs.lake import Lake
from infra.constructs.nag import acknowledge, finding_reference
from infra.constructs.scheduled_job import ScheduledJob
from infra.engines.analysis import AnalysisEngine

ROUTES = (
    ApiRoute("GET", "/customers/{customer_id}/recommendations"),
    ApiRoute("GET", "/me/recommendations"),
    ApiRoute("PUT", "/items"),
    ApiRoute("POST", "/offers"),
    ApiRoute("GET", "/offers"),
    ApiRoute("GET", "/offers/{offer_id}"),
    ApiRoute("POST", "/offers/{offer_id}/acceptances"),
    ApiRoute("GET", "/customers/{customer_id}/next-best-offer"),
    ApiRoute("POST", "/customers/{customer_id}/next-best-offer"),
    ApiRoute("GET", "/me/offers"),
    ApiRoute("POST", "/templates"),
    ApiRoute("PUT", "/templates/{template_id}"),
    ApiRoute("GET", "/templates/{template_id}"),
    ApiRoute("POST", "/templates/{template_id}/preview"),
)
# What `ecrm.personalization.customer_events.CONSUMED_EVENTS` accepts, by source.
CUSTOMER_EVENTS = [
    "CustomerCreated",
    "CustomerUpdated",
    "CustomersMerged",
    "ConsentChanged",
    "InteractionRecorded",
    "CustomerErasureRequested",
]
ANALYSIS_EVENTS = ["SegmentEntered", "SegmentExited", "TraitsComputed"]
# A message's interactions (broadcast's events on the timeline) name no product: the projection does nothing
# with them, so the rule leaves them out (only `InteractionRecorded` has a `data.type`).
MESSAGE_INTERACTIONS_LEFT_OUT = {"type": [{"anything-but": {"prefix": "message_"}}]}
# The loyalty events carrying the account's standing: offer rules and content read it as `loyalty_*` traits.
LOYALTY_EVENTS = ["PointsEarned", "PointsReversed", "PointsRedeemed", "PointsExpired", "PointsMerged", "TierChanged"]
MODELS = "models/recommender/"
DEFAULT_JOB_MEMORY = 4096


class PersonalizationEngine(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, foundation: Foundation, lake: Lake, analysis: AnalysisEngine
    ) -> None:
        super().__init__(scope, construct_id)
        settings = foundation.settings
        self.foundation = foundation
        self.lake = lake
        self.analysis = analysis
        self.table = EngineTable(self, "Table", key=foundation.key, settings=settings).table
        # What `ecrm.personalization.wiring.PersonalizationConfig` reads; the business rules keep their defaults.
        env = {
            "PERSONALIZATION_TABLE_NAME": self.table.table_name,
            "EVENT_BUS_NAME": foundation.bus.event_bus_name,
        }

        self.api = ApiFunction(
            self,
            "Api",
            foundation=foundation,
            engine="personalization",
            routes=ROUTES,
            environment=env,
            memory_size=1024,
        )
        self._grant_table_and_bus(self.api.handler)

        self.recommend = self._recommend_function(foundation, env)

        self.projection = QueueConsumer(
            self,
            "CustomerEventConsumer",
            foundation=foundation,
            engine="personalization",
            module="on_customer_event",
            environment=env,
            batch_size=10,
            max_concurrency=20,
        )
        self._grant_table_and_bus(self.projection.handler)
        EventRuleToQueue(
            self,
            "CustomerEventsRule",
            foundation=foundation,
            consumer=self.projection,
            description="Customer changes, interactions, segment moves, traits and erasure requests to personalization",
            pattern=events.EventPattern(
                source=["ecrm.customers", "ecrm.analysis"],
                detail_type=[*CUSTOMER_EVENTS, *ANALYSIS_EVENTS],
                detail={"data": {"$or": [{"type": [{"exists": False}]}, MESSAGE_INTERACTIONS_LEFT_OUT]}},
            ),
        )
        EventRuleToQueue(
            self,
            "LoyaltyEventsRule",
            foundation=foundation,
            consumer=self.projection,
            description="Loyalty standings (tier, balance, points about to expire) to personalization's traits",
            pattern=events.EventPattern(source=["ecrm.transactions"], detail_type=LOYALTY_EVENTS),
        )

        # What the broadcast engine invokes when a message names a stored template (it only reads the table).
        self.templates = EngineFunction(
            self,
            "Templates",
            engine="personalization",
            module="task_templates",
            settings=settings,
            layers=[foundation.common_layer],
            environment=env,
            timeout=Duration.seconds(10),
            description="eCRM personalization: stored template versions for the broadcast engine",
        )
        self.table.grant_read_data(self.templates.function)

        self.training_job = EngineFunction(
            self,
            "TrainingJob",
            engine="personalization",
            module="job_train",
            settings=settings,
            layers=[foundation.common_layer, foundation.ml_layer],
            environment={
                **env,
                "LAKE_BUCKET_NAME": lake.bucket.bucket_name,
                "LAKE_DATABASE": lake.database_name,
                "ATHENA_WORKGROUP": analysis.workgroup.name,
            },
            timeout=Duration.minutes(15),
            memory_size=int(self.node.try_get_context("ecrm:recommenderJobMemory") or DEFAULT_JOB_MEMORY),
            description="eCRM personalization: the recommender trained on the lake's interactions, then served",
        )
        self._grant_table_and_bus(self.training_job)
        self._grant_training_reads(self.training_job)
        ScheduledJob(
            self,
            "TrainingSchedule",
            schedule="cron(0 4 * * ? *)",
            description="The recommender retrained daily on the lake (versions expire after 30 days)",
            function=self.training_job.function,
        )

    def _recommend_function(self, foundation: Foundation, env: dict[str, str]) -> EngineFunction:
        """What the transactions engine invokes beside a comparison (`grant_invoke` on `recommend.function`):
        the API's recommendations use case, reading the table only."""
        recommend = EngineFunction(
            self,
            "Recommend",
            engine="personalization",
            module="task_recommend",
            settings=foundation.settings,
            layers=[foundation.common_layer],
            environment=env,
            timeout=Duration.seconds(5),
            memory_size=1024,
            description="eCRM personalization: a customer's recommendations for another engine (comparisons)",
        )
        self.table.grant_read_data(recommend.function)
        return recommend

    def _grant_table_and_bus(self, function: EngineFunction) -> None:
        self.table.grant_read_write_data(function.function)
        self.foundation.bus.grant_put_events_to(function.function)

    def _grant_training_reads(self, function: EngineFunction) -> None:
        """Athena over the two lake tables the job reads (through the analysis work group); the model JSON."""
        analysis = self.analysis
        analysis.grant_queries(function, tables=[analysis.profiles.table_name, analysis.behaviour.table_name])
        bucket = self.lake.bucket
        bucket.grant_put(function.function, f"{MODELS}*")
        bucket_arn = finding_reference(self, bucket.node.default_child)  # type: ignore[arg-type]
        acknowledge(
            function.role,
            "AwsSolutions-IAM5",
            "The model JSON goes under models/recommender/ with a versioned name.",
            applies_to=["Action::s3:Abort*", f"Resource::{bucket_arn}/{MODELS}*"],
        )
