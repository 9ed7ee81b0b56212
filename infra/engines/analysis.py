"""Analysis and segmentation in the cloud: projection table, lake tables, Athena work group,
the real-time membership consumer, audience builds (Step Functions, Distributed Map), the API."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Stack, Tags
from aws_cdk import aws_athena as athena
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.constructs.api_function import ApiFunction, ApiRoute
from infra.constructs.engine_function import EngineFunction
from infra.constructs.engine_table import EngineTable
from infra.constructs.event_queue import EventRuleToQueue, QueueConsumer
from infra.constructs.foundation import Foundation
from infra.constructs.lake import WAITS_FOR_LAKE_DELIVERY, WAITS_FOR_LAKE_DELIVERY_TAG, Lake
from infra.constructs.nag import acknowledge, finding_reference, finding_text
from infra.constructs.scheduled_job import ScheduledJob
from infra.constructs.workflow import Workflow
from infra.settings import DeploymentSettings

ROUTES = (
    ApiRoute("POST", "/segments"),
    ApiRoute("GET", "/segments"),
    ApiRoute("POST", "/segments/preview"),
    ApiRoute("GET", "/segments/{segment_id}"),
    ApiRoute("POST", "/segments/{segment_id}/build"),
    ApiRoute("GET", "/audiences/{audience_id}"),
    ApiRoute("POST", "/analysis/olap"),
)
QUERY_RESULTS = "query-results/"
AUDIENCES = "audiences/"
CUSTOMER_EVENTS = ["CustomerCreated", "CustomerUpdated", "CustomersMerged", "ConsentChanged", "InteractionRecorded"]
ORDER_EVENTS = ["OrderPlaced", "OrderStatusChanged", "OrderReturned"]
# The loyalty events carrying the account's standing: segments on the `loyalty_*` traits follow them.
LOYALTY_EVENTS = ["PointsEarned", "PointsReversed", "PointsRedeemed", "PointsExpired", "PointsMerged", "TierChanged"]


class AnalysisEngine(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, foundation: Foundation, lake: Lake) -> None:
        super().__init__(scope, construct_id)
        from ecrm.analysis.segment_sql import lake_table_columns

        settings = foundation.settings
        self.foundation = foundation
        self.lake = lake
        self.table = EngineTable(self, "Table", key=foundation.key, settings=settings, global_indexes=("gsi1",)).table
        columns = lake_table_columns()
        self.profiles = lake.add_table(
            "SegmentProfiles",
            table="segment_profiles",
            columns=columns["segment_profiles"],
            description="Segmentation's projection of customers, one row per version (catalogued fields only)",
        )
        self.behaviour = lake.add_table(
            "BehaviourEvents",
            table="behaviour_events",
            columns=columns["behaviour_events"],
            description="Orders, interactions and segment moves as segmentation reads them",
        )
        lake.bucket.add_lifecycle_rule(id="query-results-30-days", prefix=QUERY_RESULTS, expiration=Duration.days(30))
        lake.bucket.add_lifecycle_rule(id="audiences-30-days", prefix=AUDIENCES, expiration=Duration.days(30))
        self.workgroup = athena.CfnWorkGroup(
            self,
            "Queries",
            name=settings.name("analysis"),
            description="eCRM analysis: segment previews, audience builds, OLAP",
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{lake.bucket.bucket_name}/{QUERY_RESULTS}",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                ),
            ),
        )
        env = {
            "ANALYSIS_TABLE_NAME": self.table.table_name,
            "EVENT_BUS_NAME": foundation.bus.event_bus_name,
            "LAKE_BUCKET_NAME": lake.bucket.bucket_name,
            "LAKE_DATABASE": lake.database_name,
            "ATHENA_WORKGROUP": self.workgroup.name,
            "LAKE_SEGMENT_PROFILES_STREAM_NAME": self.profiles.stream_name,
            "LAKE_BEHAVIOUR_EVENTS_STREAM_NAME": self.behaviour.stream_name,
        }

        # Real-time membership: customer store events and computed traits.
        self.membership = QueueConsumer(
            self,
            "MembershipConsumer",
            foundation=foundation,
            engine="analysis",
            module="on_customer_event",
            environment=env,
            batch_size=10,
            max_concurrency=20,
            timeout=Duration.seconds(60),
        )
        self._grant_projection(self.membership.handler)
        EventRuleToQueue(
            self,
            "CustomerEventsRule",
            foundation=foundation,
            consumer=self.membership,
            description="Customer changes and computed traits to real-time segment membership",
            pattern=events.EventPattern(
                source=["ecrm.customers", "ecrm.analysis"], detail_type=[*CUSTOMER_EVENTS, "TraitsComputed"]
            ),
        )
        EventRuleToQueue(
            self,
            "OrderEventsRule",
            foundation=foundation,
            consumer=self.membership,
            description="Orders placed, returned and cancelled, and loyalty standings, to real-time segment membership",
            pattern=events.EventPattern(source=["ecrm.transactions"], detail_type=[*ORDER_EVENTS, *LOYALTY_EVENTS]),
        )
        self._message_rules()
        self.erasure = QueueConsumer(
            self,
            "ErasureConsumer",
            foundation=foundation,
            engine="analysis",
            module="on_erasure_requested",
            environment=env,
            batch_size=1,
        )
        self._grant_projection(self.erasure.handler)
        EventRuleToQueue(
            self,
            "ErasureRequestedRule",
            foundation=foundation,
            consumer=self.erasure,
            description="Erasure requests to segmentation",
            pattern=events.EventPattern(source=["ecrm.customers"], detail_type=["CustomerErasureRequested"]),
        )
        self.lake_eraser = self._lake_eraser(foundation, env)

        # Audience builds: plan, shards on the lake (Distributed Map), finish.
        task = EngineFunction(
            self,
            "AudienceTask",
            engine="analysis",
            module="task_audience",
            settings=settings,
            layers=[foundation.common_layer],
            environment=env,
            timeout=Duration.minutes(15),
            memory_size=1769,
            description="eCRM analysis: audience build steps",
        )
        self._grant_projection(task)
        self.grant_queries(task)
        lake.bucket.grant_put(task.function, f"{AUDIENCES}*")
        bucket_arn = finding_reference(self, lake.bucket.node.default_child)  # type: ignore[arg-type]
        acknowledge(
            task.role,
            "AwsSolutions-IAM5",
            "A build writes its manifest under the audiences prefix of the lake bucket.",
            applies_to=[f"Resource::{bucket_arn}/{AUDIENCES}*"],
        )
        self.builds = self._audience_workflow(task, settings)
        env["AUDIENCE_STATE_MACHINE_ARN"] = self.builds.state_machine.state_machine_arn

        self.api = ApiFunction(
            self,
            "Api",
            foundation=foundation,
            engine="analysis",
            routes=ROUTES,
            environment=env,
            memory_size=1024,
            timeout=Duration.seconds(29),
        )
        self._grant_table(self.api.handler)
        self.grant_queries(self.api.handler)
        self.builds.state_machine.grant_start_execution(self.api.function)

        refresh = EngineFunction(
            self,
            "RefreshTask",
            engine="analysis",
            module="job_refresh_segments",
            settings=settings,
            layers=[foundation.common_layer],
            environment=env,
            description="eCRM analysis: membership builds for time-relative segments",
        )
        self._grant_table(refresh)
        self.builds.state_machine.grant_start_execution(refresh.function)
        models = EngineFunction(
            self,
            "ModelJob",
            engine="analysis",
            module="job_train_models",
            settings=settings,
            layers=[foundation.common_layer, foundation.ml_layer],
            environment=env,
            timeout=Duration.minutes(15),
            memory_size=int(self.node.try_get_context("ecrm:modelJobMemory") or 4096),
            description="eCRM analysis: RFM, clusters, churn and CLV trained on the lake, traits published",
        )
        self.model_job = models
        self.grant_queries(models)
        self.foundation.bus.grant_put_events_to(models.function)
        lake.bucket.grant_read_write(models.function, "models/*")
        acknowledge(
            models.role,
            "AwsSolutions-IAM5",
            "Model artifacts are versioned JSON under the models prefix of the lake bucket.",
            applies_to=["Action::s3:DeleteObject*", f"Resource::{bucket_arn}/models/*"],
        )
        ScheduledJob(
            self,
            "ModelSchedule",
            schedule="cron(0 3 * * ? *)",
            description="Models retrained nightly on the lake; traits written back to profiles",
            function=models.function,
        )
        ScheduledJob(
            self,
            "RefreshSchedule",
            schedule="rate(1 hour)",
            description="Segments whose rules change with time passing alone are reconciled hourly",
            function=refresh.function,
        )

    def _lake_eraser(self, foundation: Foundation, env: dict[str, str]) -> QueueConsumer:
        """Erasure requests, delayed past both streams' buffering, rewrite the objects holding the customers' rows."""
        from ecrm.analysis.erasure import ERASED_TABLES
        from ecrm.core.lake import ERASURE_STAGING

        settled = max(self.profiles.settled_after.to_seconds(), self.behaviour.settled_after.to_seconds())
        eraser = QueueConsumer(
            self,
            "LakeEraser",
            foundation=foundation,
            engine="analysis",
            module="on_erasure_settled",
            environment=env,
            batch_size=1,
            max_concurrency=2,
            timeout=Duration.minutes(5),
            delivery_delay=Duration.seconds(settled),
        )
        Tags.of(eraser.queue).add(WAITS_FOR_LAKE_DELIVERY_TAG, WAITS_FOR_LAKE_DELIVERY)
        EventRuleToQueue(
            self,
            "ErasureSettledRule",
            foundation=foundation,
            consumer=eraser,
            description="Erasure requests to segmentation's lake eraser (delayed past the lake's buffering)",
            pattern=events.EventPattern(source=["ecrm.customers"], detail_type=["CustomerErasureRequested"]),
        )
        function = eraser.handler.function
        tables = list(ERASED_TABLES)
        self.grant_queries(eraser.handler, tables=tables)
        for table in tables:
            self.lake.bucket.grant_put(function, f"{table}/*")
            self.lake.bucket.grant_delete(function, f"{table}/*")
        self.lake.bucket.grant_read_write(function, f"{ERASURE_STAGING}*")
        self.lake.bucket.grant_delete(function, f"{ERASURE_STAGING}*")
        self.table.grant(function, "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:GetItem")  # leases, marker
        self.foundation.bus.grant_put_events_to(function)
        bucket_arn = finding_reference(self, self.lake.bucket.node.default_child)  # type: ignore[arg-type]
        acknowledge(
            eraser.handler.role,
            "AwsSolutions-IAM5",
            "The lake eraser rewrites objects of the lake tables keyed by customer (any day, named by Firehose) and "
            "stages Athena's UNLOAD output under the erasure staging prefix; CDK's S3 grants use action families.",
            applies_to=[
                "Action::s3:DeleteObject*",
                "Action::s3:GetBucket*",
                "Action::s3:GetObject*",
                "Action::s3:List*",
                "Action::s3:Abort*",
                *(f"Resource::{bucket_arn}/{table}/*" for table in tables),
                f"Resource::{bucket_arn}/{ERASURE_STAGING}*",
                # Table.grant names the table's indexes too; the leases are items of the table itself
                f"Resource::<{Stack.of(self).get_logical_id(self.table.node.default_child)}.Arn>/index/*",  # type: ignore[arg-type]
            ],
        )
        return eraser

    def _grant_table(self, function: EngineFunction) -> None:
        self.table.grant_read_write_data(function.function)
        table_id = Stack.of(self).get_logical_id(self.table.node.default_child)  # type: ignore[arg-type]
        acknowledge(
            function.role,
            "AwsSolutions-IAM5",
            "The engine's own table and its indexes (a build shard lists members through gsi1).",
            applies_to=[f"Resource::<{table_id}.Arn>/index/*"],
        )

    def _message_rules(self) -> None:
        """Broadcast's message events that are behaviour (`ecrm.analysis.message_behaviour`): every outcome and
        engagement, and the `sent` of a channel whose provider reports no delivery (a second rule on its channel)."""
        from ecrm.analysis.message_behaviour import OUTCOME_EVENTS, SENT_IS_BEHAVIOUR_ON

        EventRuleToQueue(
            self,
            "MessageEventsRule",
            foundation=self.foundation,
            consumer=self.membership,
            description="Message outcomes and engagement from broadcast, as behaviour, to real-time segment membership",
            pattern=events.EventPattern(source=["ecrm.broadcast"], detail_type=[e.detail_type for e in OUTCOME_EVENTS]),
        )
        EventRuleToQueue(
            self,
            "MessageSentRule",
            foundation=self.foundation,
            consumer=self.membership,
            description="Messages sent on a channel that reports no delivery (push, in-app, webhook), as behaviour",
            pattern=events.EventPattern(
                source=["ecrm.broadcast"],
                detail_type=["MessageSent"],
                detail={"data": {"channel": list(SENT_IS_BEHAVIOUR_ON)}},
            ),
        )

    def _grant_projection(self, function: EngineFunction) -> None:
        """The projection table, both lake streams, and the bus (memberships and builds publish)."""
        self._grant_table(function)
        self.profiles.grant_put(function.function)
        self.behaviour.grant_put(function.function)
        self.foundation.bus.grant_put_events_to(function.function)

    def grant_queries(self, function: EngineFunction, tables: Sequence[str] = ()) -> None:
        """Athena in the work group, the Glue tables, lake objects to read, query results to write.

        `tables` narrows the grant to those lake tables (their catalogue entries and objects); by default any
        table of the lake database. Other engines' jobs that query the lake use this too.
        """
        stack = Stack.of(self)
        bucket: s3.IBucket = self.lake.bucket
        workgroup_arn = stack.format_arn(service="athena", resource="workgroup", resource_name=self.workgroup.name)
        function.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "athena:StartQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:GetQueryResults",
                    "athena:StopQueryExecution",
                ],
                resources=[workgroup_arn],
            )
        )
        database = self.lake.database_name
        table_names = list(tables) or ["*"]
        any_table_arn = stack.format_arn(service="glue", resource="table", resource_name=f"{database}/*")
        function.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartitions"],
                resources=[
                    stack.format_arn(service="glue", resource="catalog"),
                    stack.format_arn(service="glue", resource="database", resource_name=database),
                    *(
                        stack.format_arn(service="glue", resource="table", resource_name=f"{database}/{table}")
                        for table in table_names
                    ),
                ],
            )
        )
        prefixes = [f"{table}/" for table in tables] or [""]
        for prefix in prefixes:
            bucket.grant_read(function.function, f"{prefix}*")
        if tables:
            bucket.grant_read(function.function, f"{QUERY_RESULTS}*")
        bucket.grant_put(function.function, f"{QUERY_RESULTS}*")
        bucket_arn = finding_reference(function, bucket.node.default_child)  # type: ignore[arg-type]
        acknowledge(
            function.role,
            "AwsSolutions-IAM5",
            "Athena reads the Parquet objects of the lake tables the function queries (every partition; any "
            "table unless named) and writes query results under their prefix; CDK's S3 grants use action "
            "families.",
            applies_to=[
                "Action::s3:GetBucket*",
                "Action::s3:GetObject*",
                "Action::s3:List*",
                "Action::s3:Abort*",
                *(f"Resource::{bucket_arn}/{prefix}*" for prefix in prefixes),
                f"Resource::{bucket_arn}/{QUERY_RESULTS}*",
                *([] if tables else [f"Resource::{finding_text(function, any_table_arn)}"]),
            ],
        )

    def _audience_workflow(self, task: EngineFunction, settings: DeploymentSettings) -> Workflow:
        def step(name: str, payload: dict[str, object], result_path: str | None) -> tasks.LambdaInvoke:
            return tasks.LambdaInvoke(
                self,
                name,
                lambda_function=task.function,
                payload=sfn.TaskInput.from_object(payload),
                payload_response_only=True,
                retry_on_service_exceptions=True,
                result_path=result_path,
            )

        plan = step("Plan", {"action": "plan", "audience_id.$": "$.audience_id"}, "$.plan")
        shard = step(
            "Shard",
            {
                "action": "shard",
                "audience_id.$": "$.audience_id",
                "index.$": "$.index",
                "count.$": "$.count",
            },
            None,
        )
        shard.add_retry(errors=["States.TaskFailed"], interval=Duration.seconds(5), max_attempts=2, backoff_rate=2)
        shards = sfn.DistributedMap(
            self,
            "Shards",
            items_path="$.plan.shards",
            max_concurrency=16,
            result_path="$.results",
            comment="One shard of the audience per worker: the segment's SQL on the lake for ids ending so",
        )
        shards.item_processor(shard)
        finish = step(
            "Finish", {"action": "finish", "audience_id.$": "$.audience_id", "results.$": "$.results"}, "$.finished"
        )
        fail = step(
            "MarkFailed",
            {"action": "fail", "audience_id.$": "$.audience_id", "error.$": "$.error"},
            sfn.JsonPath.DISCARD,
        )
        fail.next(sfn.Fail(self, "BuildFailed", error="AudienceBuildFailed", cause="see the audience's status"))
        for state in (plan, shards, finish):
            state.add_catch(fail, errors=["States.ALL"], result_path="$.error")
        workflow = Workflow(
            self,
            "AudienceBuild",
            settings=settings,
            definition=plan.next(shards).next(finish).next(sfn.Succeed(self, "Built")),
            timeout=Duration.hours(2),
            comment="Audience build: plan, shards on the lake in parallel, manifest",
        )
        workflow.acknowledge_invokes(task.function)
        stack = Stack.of(self)
        executions = finding_text(self, f"arn:{stack.partition}:states:{stack.region}:{stack.account}:execution:")
        acknowledge(
            workflow.state_machine,
            "AwsSolutions-IAM5",
            "A Distributed Map runs its items as child executions of this state machine (CDK's own policy).",
            applies_to=[
                f"Resource::{executions}"
                + '{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"'
                + stack.get_logical_id(workflow.state_machine.node.default_child)  # type: ignore[arg-type]
                + '"}]}]}'
                + suffix
                for suffix in (":*", "/*:*")
            ],
        )
        return workflow
