"""Campaigns and journeys in the cloud: the engine's table with its outbox relay, the API, and the campaign
run: one Step Functions execution per run attempt, freezing the audience into a manifest of chunks in the
lake bucket and fanning out over it with a Distributed Map whose S3 ItemReader reads that manifest.

The chunks are made by the freeze step (one manifest item per chunk) rather than by ItemBatcher, which the
local cloud's Step Functions does not parse; the definition is the same in both places. Scheduled and
recurring campaigns are EventBridge Scheduler schedules, created by the API in the engine's schedule group
and starting the same state machine with `fire`: its first step takes the campaign's next run.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.constructs.api_function import ApiFunction, ApiRoute
from infra.constructs.engine_function import EngineFunction
from infra.constructs.engine_table import EngineTable
from infra.constructs.event_queue import EventRuleToQueue, QueueConsumer, erasure_consumer
from infra.constructs.foundation import Foundation
from infra.constructs.lake import Lake
from infra.constructs.nag import acknowledge, finding_reference, finding_text
from infra.constructs.outbox_relay import OutboxRelay
from infra.constructs.scheduled_job import ScheduledJob
from infra.constructs.workflow import Workflow
from infra.engines.customers import CustomersEngine

ROUTES = (
    ApiRoute("POST", "/campaigns"),
    ApiRoute("GET", "/campaigns"),
    ApiRoute("GET", "/campaigns/{campaign_id}"),
    ApiRoute("POST", "/campaigns/{campaign_id}/dry-run"),
    ApiRoute("POST", "/campaigns/{campaign_id}/test-send"),
    ApiRoute("POST", "/campaigns/{campaign_id}/launch"),
    ApiRoute("POST", "/campaigns/{campaign_id}/pause"),
    ApiRoute("POST", "/campaigns/{campaign_id}/resume"),
    ApiRoute("POST", "/campaigns/{campaign_id}/cancel"),
    ApiRoute("GET", "/campaigns/{campaign_id}/report"),
    ApiRoute("POST", "/journeys"),
    ApiRoute("GET", "/journeys"),
    ApiRoute("GET", "/journeys/library"),
    ApiRoute("POST", "/journeys/library/{name}"),
    ApiRoute("GET", "/journeys/{journey_id}"),
    ApiRoute("POST", "/journeys/{journey_id}/activate"),
    ApiRoute("POST", "/journeys/{journey_id}/deactivate"),
    ApiRoute("GET", "/journeys/{journey_id}/report"),
)
MANIFESTS = "campaign-runs/"  # `ecrm.campaigns.runs.MANIFEST_PREFIX`
LISTS = "campaign-audiences/"  # `ecrm.campaigns.ports.LIST_PREFIX`: uploaded lists too long for the item
# Where the analysis engine leaves an audience build: its manifest, and the query results it lists (ADR 7);
# and the engine's own long uploaded lists.
AUDIENCE_PREFIXES = ("audiences/", "query-results/", LISTS)
# The events journeys start on or wait for (triggers, goals, engagement): the ready-made journeys' vocabulary.
JOURNEY_EVENTS = {
    "ecrm.customers": ["CustomerCreated", "ConsentChanged"],
    "ecrm.broadcast": ["MessageOpened", "MessageClicked", "CustomerUnsubscribed"],
    "ecrm.transactions": [
        "OrderPlaced",
        "OrderStatusChanged",
        "TierChanged",
        "PointsEarned",
        "PointsRedeemed",
        "PointsExpiring",
        "BirthdayReached",
        "PurchaseFailed",
        "PurchaseBrokered",
    ],
    "ecrm.analysis": ["SegmentEntered", "SegmentExited", "TraitsComputed"],
}
# A delivery reaches journeys only for a journey's own message (`data.source` is `journey:<id>`, a step waiting
# on it): a campaign's deliveries, one per email sent, would each cost the journey queue a delivery and a read of
# the customer's passes for nothing; a journey that follows a campaign starts on its opens or clicks.
JOURNEY_DELIVERIES = {"data": {"source": [{"prefix": "journey:"}]}}
# The customer store's interactions journeys start on (`ecrm.campaigns.journey_library.CART_INTERACTIONS`):
# every tracked page view is an interaction too, so the rule lets only these types into the journey queue.
JOURNEY_INTERACTIONS = ["checkout_started", "cart_viewed"]
# What `functions/campaigns/on_outcome_event.py` counts on the campaign arms (and OrderPlaced, conversions):
# broadcast's counts of its message events, one event per window of its table's stream (ADR 12).
MESSAGE_OUTCOMES = ["MessageOutcomesCounted"]
# Waits are coarse (hours, days, a time of day): every five minutes is precise enough.
WAKE_SCHEDULE = "rate(5 minutes)"
# A run's longest life: a throttle, local times across the zones and an auto-winner's test hours add up
# (`ecrm.campaigns.service.RUN_LIMIT_MINUTES` refuses a launch that would not fit).
RUN_LIMIT_DAYS = 90
# Chunks handed to broadcast at once: the bound on a run's pace besides broadcast's own senders.
CHUNK_CONCURRENCY = 10
# The counts the outcome consumer emits as CloudWatch metrics per campaign and variant
# (`ecrm.campaigns.outcomes`: the counter's name, dimensions campaign_id and variant, and the service
# Powertools adds); the dashboard finds every campaign's series by SEARCH, since campaigns come after deploy.
OUTCOME_METRICS = ("Sent", "Delivered", "Bounced", "Complained", "Opened", "Clicked", "Converted")
METRICS_SERVICE = "ecrm-campaigns"


class CampaignsEngine(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        foundation: Foundation,
        lake: Lake,
        customers: CustomersEngine,
        broadcast_request: lambda_.IFunction | None = None,
        recommend: lambda_.IFunction | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        settings = foundation.settings
        self.settings = settings
        contacts = customers.contacts.function
        self.table = EngineTable(
            self,
            "Table",
            key=foundation.key,
            settings=settings,
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
            global_indexes=("by_kind",),
        ).table
        self.outbox = OutboxRelay(self, "OutboxRelay", foundation=foundation, engine="campaigns", table=self.table)
        env = {
            "CAMPAIGNS_TABLE_NAME": self.table.table_name,
            "CAMPAIGNS_MANIFEST_BUCKET": lake.bucket.bucket_name,
        }
        if broadcast_request is not None:
            env["CAMPAIGNS_BROADCAST_FUNCTION_NAME"] = broadcast_request.function_name

        self.run_task = EngineFunction(
            self,
            "RunTask",
            engine="campaigns",
            module="task_run",
            settings=settings,
            layers=[foundation.common_layer],
            environment=env,
            timeout=Duration.minutes(5),
            description="eCRM campaigns: the steps of a campaign run and the scheduler's fire",
        )
        self._grant_table(self.run_task)
        lake.bucket.grant_put(self.run_task.function, f"{MANIFESTS}*")
        self.run_task.function.add_to_role_policy(  # a finished run's manifests go
            iam.PolicyStatement(actions=["s3:DeleteObject"], resources=[lake.bucket.arn_for_objects(f"{MANIFESTS}*")])
        )
        bucket_arn = finding_reference(self, lake.bucket.node.default_child)  # type: ignore[arg-type]
        acknowledge(
            self.run_task.role,
            "AwsSolutions-IAM5",
            "A run writes its audience manifest under the campaign-runs prefix of the lake bucket, and deletes it "
            "when the run is over.",
            applies_to=["Action::s3:Abort*", f"Resource::{bucket_arn}/{MANIFESTS}*"],
        )
        self._grant_broadcast(self.run_task, broadcast_request)
        # local-time runs ask the customer store for their recipients' zones (the owner, as broadcast does)
        self.run_task.function.add_environment("CUSTOMERS_CONTACTS_FUNCTION_NAME", contacts.function_name)
        self.run_task.role.add_to_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[contacts.function_arn])
        )

        self.contacts_arn = contacts.function_arn
        self._journey_runtime(
            foundation, {**env, "CUSTOMERS_CONTACTS_FUNCTION_NAME": contacts.function_name}, broadcast_request
        )
        if recommend is not None:
            self._recommendations_in_journeys(recommend)
        self.outcomes = QueueConsumer(
            self,
            "OutcomeConsumer",
            foundation=foundation,
            engine="campaigns",
            module="on_outcome_event",
            environment=env,
            batch_size=10,
            max_concurrency=10,
        )
        self._grant_table(self.outcomes.handler)
        EventRuleToQueue(
            self,
            "MessageOutcomesRule",
            foundation=foundation,
            consumer=self.outcomes,
            description="Broadcast's counts of its message events onto the campaign arms' counters",
            # One event per window of broadcast's stream, not one per message: the consumer takes the
            # campaigns' counts from it (`ecrm.campaigns.outcomes.CampaignOutcomes.record_counts`).
            pattern=events.EventPattern(source=["ecrm.broadcast"], detail_type=MESSAGE_OUTCOMES),
        )
        EventRuleToQueue(
            self,
            "ConversionsRule",
            foundation=foundation,
            consumer=self.outcomes,
            description="Orders placed, attributed to the campaigns launched within the window before them",
            pattern=events.EventPattern(source=["ecrm.transactions"], detail_type=["OrderPlaced"]),
        )
        self.runs = self._run_workflow(lake)
        self._segment_audiences(foundation, lake, env)
        self._erasure(foundation, lake, env)
        self.schedule_group = scheduler.CfnScheduleGroup(self, "ScheduleGroup")
        self.schedule_role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"),
            description="EventBridge Scheduler starting the runs of scheduled and recurring campaigns",
        )
        self.runs.state_machine.grant_start_execution(self.schedule_role)

        api_env = {
            **env,
            "CAMPAIGNS_STATE_MACHINE_ARN": self.runs.state_machine.state_machine_arn,
            "CAMPAIGNS_SCHEDULE_GROUP": self.schedule_group.ref,
            "CAMPAIGNS_SCHEDULE_TARGET_ARN": self.runs.state_machine.state_machine_arn,
            "CAMPAIGNS_SCHEDULE_ROLE_ARN": self.schedule_role.role_arn,
        }
        self.api = ApiFunction(
            self, "Api", foundation=foundation, engine="campaigns", routes=ROUTES, environment=api_env
        )
        self._grant_table(self.api.handler)
        self._grant_audience_reads(lake, self.api.handler, AUDIENCE_PREFIXES)
        lake.bucket.grant_put(self.api.handler.function, f"{LISTS}*")
        acknowledge(
            self.api.handler.role,
            "AwsSolutions-IAM5",
            "The API keeps a campaign's long uploaded list under the campaign-audiences prefix of the lake bucket.",
            applies_to=["Action::s3:Abort*", f"Resource::{bucket_arn}/{LISTS}*"],
        )
        self._grant_broadcast(self.api.handler, broadcast_request)  # the dry run's preview, the test send
        self.runs.state_machine.grant_start_execution(self.api.handler.function)
        self.schedule_role.grant_pass_role(self.api.handler.role)
        schedules = Stack.of(self).format_arn(
            service="scheduler", resource="schedule", resource_name=f"{self.schedule_group.ref}/*"
        )
        self.api.handler.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["scheduler:CreateSchedule", "scheduler:DeleteSchedule"],
                resources=[schedules],
            )
        )
        acknowledge(
            self.api.handler.role,
            "AwsSolutions-IAM5",
            "The API creates and deletes the campaigns' schedules in the engine's own schedule group.",
            applies_to=[f"Resource::{finding_text(self.api.handler.function, schedules)}"],
        )

    def _segment_audiences(self, foundation: Foundation, lake: Lake, env: dict[str, str]) -> None:
        """Segment campaigns read the segment's last audience build: the engine keeps where each build's
        manifest is from the analysis engine's `AudienceBuilt`, and the run reads the manifest and its parts."""
        self.audience_builds = QueueConsumer(
            self,
            "AudienceBuiltConsumer",
            foundation=foundation,
            engine="campaigns",
            module="on_audience_built",
            environment=env,
            batch_size=10,
            max_concurrency=2,
        )
        self._grant_table(self.audience_builds.handler)
        EventRuleToQueue(
            self,
            "AudienceBuiltRule",
            foundation=foundation,
            consumer=self.audience_builds,
            description="Segments' audience builds, which segment campaigns send to",
            pattern=events.EventPattern(source=["ecrm.analysis"], detail_type=["AudienceBuilt"]),
        )
        # a run also reads its own manifests back: a resumed attempt keeps the audience it froze
        self._grant_audience_reads(lake, self.run_task, (*AUDIENCE_PREFIXES, MANIFESTS))

    def _erasure(self, foundation: Foundation, lake: Lake, env: dict[str, str]) -> None:
        """Its part of every erasure: journey passes, arms and conversion markers deleted, the id taken out of
        uploaded lists and of the manifests of runs under way (`ecrm.campaigns.erasure`)."""
        self.erasure = erasure_consumer(self, foundation=foundation, engine="campaigns", environment=env)
        self._grant_table(self.erasure.handler)
        self._grant_audience_reads(lake, self.erasure.handler, (LISTS, MANIFESTS))
        for prefix in (LISTS, MANIFESTS):
            lake.bucket.grant_put(self.erasure.handler.function, f"{prefix}*")
        bucket_arn = finding_reference(self.erasure.handler, lake.bucket.node.default_child)  # type: ignore[arg-type]
        acknowledge(
            self.erasure.handler.role,
            "AwsSolutions-IAM5",
            "An erasure rewrites the uploaded lists and the run manifests that hold the customer's id.",
            applies_to=["Action::s3:Abort*", *(f"Resource::{bucket_arn}/{prefix}*" for prefix in (LISTS, MANIFESTS))],
        )

    def _grant_audience_reads(self, lake: Lake, function: EngineFunction, prefixes: tuple[str, ...]) -> None:
        """An audience build's manifest (under `audiences/`) and its CSV parts (Athena's results)."""
        for prefix in prefixes:
            lake.bucket.grant_read(function.function, f"{prefix}*")
        bucket_arn = finding_reference(function, lake.bucket.node.default_child)  # type: ignore[arg-type]
        acknowledge(
            function.role,
            "AwsSolutions-IAM5",
            "A segment campaign reads the segment's audience manifest and its CSV parts in the lake bucket (and a "
            "run its own manifests); CDK's S3 read grant uses action families.",
            applies_to=[
                "Action::s3:GetBucket*",
                "Action::s3:GetObject*",
                "Action::s3:List*",
                *(f"Resource::{bucket_arn}/{prefix}*" for prefix in prefixes),
            ],
        )

    def _journey_runtime(
        self, foundation: Foundation, env: dict[str, str], broadcast_request: lambda_.IFunction | None
    ) -> None:
        self.journey_events = QueueConsumer(
            self,
            "JourneyEventConsumer",
            foundation=foundation,
            engine="campaigns",
            module="on_journey_event",
            environment=env,
            batch_size=10,
            max_concurrency=10,
        )
        self.wake_job = EngineFunction(
            self,
            "WakeJourneysJob",
            engine="campaigns",
            module="job_wake_journeys",
            settings=self.settings,
            layers=[foundation.common_layer],
            environment=env,
            timeout=Duration.minutes(5),
            description="eCRM campaigns: customers whose wait in a journey is over move on",
        )
        for function in (self.journey_events.handler, self.wake_job):
            self._grant_table(function)
            # The contacts function itself, not its versions (`grant_invoke` adds `<arn>:*`): one resource.
            function.role.add_to_policy(
                iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self.contacts_arn])
            )
            self._grant_broadcast(function, broadcast_request)
        for source, detail_types in JOURNEY_EVENTS.items():
            EventRuleToQueue(
                self,
                f"JourneyEvents{source.split('.')[1].title()}Rule",
                foundation=foundation,
                consumer=self.journey_events,
                description=f"Events of {source} that journeys start on or wait for",
                pattern=events.EventPattern(source=[source], detail_type=detail_types),
            )
        EventRuleToQueue(
            self,
            "JourneyDeliveriesRule",
            foundation=foundation,
            consumer=self.journey_events,
            description="Deliveries of the journeys' own messages (not a campaign's), for steps waiting on them",
            pattern=events.EventPattern(
                source=["ecrm.broadcast"], detail_type=["MessageDelivered"], detail=JOURNEY_DELIVERIES
            ),
        )
        EventRuleToQueue(
            self,
            "JourneyInteractionsRule",
            foundation=foundation,
            consumer=self.journey_events,
            description="Tracked cart and checkout interactions that journeys start on",
            pattern=events.EventPattern(
                source=["ecrm.customers"],
                detail_type=["InteractionRecorded"],
                detail={"data": {"type": JOURNEY_INTERACTIONS}},
            ),
        )
        ScheduledJob(
            self,
            "WakeJourneysSchedule",
            schedule=WAKE_SCHEDULE,
            description="Journey waits that are over move on",
            function=self.wake_job.function,
        )

    def _recommendations_in_journeys(self, recommend: lambda_.IFunction) -> None:
        """A journey's send step that asks for recommendations asks the personalization engine's recommend
        function (the function itself, not its versions: one resource)."""
        for function in (self.journey_events.handler, self.wake_job):
            function.function.add_environment("PERSONALIZATION_RECOMMEND_FUNCTION_NAME", recommend.function_name)
            function.role.add_to_policy(
                iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[recommend.function_arn])
            )

    def _run_workflow(self, lake: Lake) -> Workflow:
        def step(name: str, payload: dict[str, object], result_path: str | None) -> tasks.LambdaInvoke:
            invoke = tasks.LambdaInvoke(
                self,
                name,
                lambda_function=self.run_task.function,
                payload=sfn.TaskInput.from_object(payload),
                payload_response_only=True,
                retry_on_service_exceptions=True,
                result_path=result_path,
            )
            invoke.add_retry(errors=["States.TaskFailed"], interval=Duration.seconds(2), max_attempts=3, backoff_rate=2)
            return invoke

        run = {"campaign_id.$": "$.campaign_id", "run.$": "$.run"}
        # An execution the campaign's schedule started takes the campaign's next run first (or ends).
        fire = step("Fire", {"action": "fire", "campaign_id.$": "$.campaign_id"}, "$.fired")
        take_run = sfn.Pass(
            self,
            "TakeRun",
            parameters={"campaign_id.$": "$.campaign_id", "run.$": "$.fired.run", "fire": False},
        )
        freeze = step("Freeze", {"action": "freeze", **run}, "$.frozen")

        def chunk_map(prefix: str, key: str) -> sfn.DistributedMap:
            """Each chunk waits for its `not_before` (now, its zone's local time, or the throttle's pace)."""
            not_before = sfn.Wait(self, f"{prefix}NotBefore", time=sfn.WaitTime.timestamp_path("$.not_before"))
            send = step(
                f"{prefix}SendChunk",
                {
                    "action": "send_chunk",
                    **run,
                    "chunk.$": "$.chunk",
                    "phase.$": "$.phase",
                    "customer_ids.$": "$.customer_ids",
                },
                None,
            )
            chunks = sfn.DistributedMap(
                self,
                f"{prefix}Chunks",
                item_reader=sfn.S3JsonItemReader(bucket=lake.bucket, key=sfn.JsonPath.string_at(key)),
                max_concurrency=CHUNK_CONCURRENCY,
                # standard child executions: a chunk may wait hours for its zone or its minute (express: 5 min)
                map_execution_type=sfn.StateMachineType.STANDARD,
                result_path=sfn.JsonPath.DISCARD,
                comment="One chunk of the frozen audience per worker: arms assigned, treated recipients to broadcast",
            )
            chunks.item_processor(not_before.next(send))
            return chunks

        finish = step("Finish", {"action": "finish", **run, "chunks.$": "$.frozen.chunks"}, "$.finished")
        finish.next(sfn.Succeed(self, "Done"))
        # An auto-winner's run: the test phase's chunks, its hours, the pick, then the rest to the winner.
        test_hours = sfn.Wait(
            self, "TestHours", time=sfn.WaitTime.timestamp_path("$.frozen.decide_at"), comment="The test phase's hours"
        )
        pick = step("PickWinner", {"action": "pick_winner", **run}, "$.picked")
        phases = (
            sfn.Choice(self, "AutoWinner?")
            .when(
                sfn.Condition.boolean_equals("$.frozen.phased", True),
                test_hours.next(pick).next(chunk_map("Rest", "$.frozen.rest_key")).next(finish),
            )
            .otherwise(finish)
        )
        freeze.next(chunk_map("", "$.frozen.key")).next(phases)
        workflow = Workflow(
            self,
            "CampaignRun",
            settings=self.settings,
            definition=sfn.Choice(self, "Scheduled?")
            .when(
                sfn.Condition.boolean_equals("$.fire", True),
                fire.next(
                    sfn.Choice(self, "RunTaken?")
                    .when(sfn.Condition.boolean_equals("$.fired.started", True), take_run.next(freeze))
                    .otherwise(sfn.Succeed(self, "NothingToRun"))
                ),
            )
            .otherwise(freeze)
            .afterwards(),
            timeout=Duration.days(RUN_LIMIT_DAYS),
            comment="Campaign run: freeze the audience, hand its chunks to broadcast in parallel, finish",
        )
        workflow.acknowledge_invokes(self.run_task.function)
        stack = Stack.of(self)
        bucket_name = finding_reference(self, lake.bucket.node.default_child, "Ref")  # type: ignore[arg-type]
        executions = finding_text(self, f"arn:{stack.partition}:states:{stack.region}:{stack.account}:execution:")
        acknowledge(
            workflow.state_machine,
            "AwsSolutions-IAM5",
            "A Distributed Map runs its items as child executions and reads the manifest its freeze step wrote.",
            applies_to=[
                *(
                    f"Resource::{executions}"
                    + '{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"'
                    + stack.get_logical_id(workflow.state_machine.node.default_child)  # type: ignore[arg-type]
                    + '"}]}]}'
                    + suffix
                    for suffix in (":*", "/*:*")
                ),
                # The S3 ItemReader's grant (CDK's): the key is only known at run time, under campaign-runs/.
                f"Resource::arn:<AWS::Partition>:s3:::{bucket_name}/*",
            ],
        )
        return workflow

    @staticmethod
    def outcome_widgets(width: int = 24) -> list[cloudwatch.IWidget]:
        """Graphs of each campaign's and variant's counts, for the operations dashboard: one per count,
        every campaign and variant of the period a line (SEARCH, at most 500 lines a graph)."""
        per_row = 4
        return [
            cloudwatch.GraphWidget(
                title=f"{name} per campaign and variant",
                left=[
                    cloudwatch.MathExpression(
                        expression=(
                            "SEARCH('{ecrm,campaign_id,service,variant} "
                            f'MetricName="{name}" service="{METRICS_SERVICE}"\', \'Sum\', 300)'
                        ),
                        using_metrics={},
                        label="",
                        period=Duration.minutes(5),
                    )
                ],
                width=width // per_row,
                height=6,
            )
            for name in OUTCOME_METRICS
        ]

    @staticmethod
    def _grant_broadcast(function: EngineFunction, broadcast_request: lambda_.IFunction | None) -> None:
        """Broadcast's bulk request function itself, not its versions (`grant_invoke` adds `<arn>:*`)."""
        if broadcast_request is not None:
            function.role.add_to_policy(
                iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[broadcast_request.function_arn])
            )

    def _grant_table(self, function: EngineFunction) -> None:
        self.table.grant_read_write_data(function.function)
        table_id = Stack.of(self).get_logical_id(self.table.node.default_child)  # type: ignore[arg-type]
        acknowledge(
            function.role,
            "AwsSolutions-IAM5",
            "The engine's own table and its index (campaigns and journeys by kind).",
            applies_to=[f"Resource::<{table_id}.Arn>/index/*"],
        )
