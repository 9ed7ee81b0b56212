"""The customer store in the cloud: table, import bucket and pipeline, API, erasure consumers, and what the
broadcast engine needs of it: the contacts function it invokes at send time and the consumer that puts its
message events on the timeline."""

from __future__ import annotations

import json

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct
from ecrm.customers.models import PUBLISHED_ATTRIBUTES

from infra.constructs.api_function import ApiFunction, ApiRoute
from infra.constructs.engine_function import EngineFunction
from infra.constructs.engine_table import EngineTable
from infra.constructs.event_queue import EventRuleToQueue, QueueConsumer
from infra.constructs.foundation import Foundation
from infra.constructs.lake import Lake
from infra.constructs.nag import acknowledge
from infra.constructs.outbox_relay import OutboxRelay
from infra.constructs.workflow import Workflow

ROUTES = (
    ApiRoute("POST", "/customers"),
    ApiRoute("GET", "/customers"),
    ApiRoute("GET", "/customers/{customer_id}"),
    ApiRoute("PATCH", "/customers/{customer_id}"),
    ApiRoute("DELETE", "/customers/{customer_id}"),
    ApiRoute("PUT", "/customers/{customer_id}/consents/{channel}/{purpose}"),
    ApiRoute("GET", "/customers/{customer_id}/timeline"),
    ApiRoute("POST", "/customers/{customer_id}/interactions"),
    ApiRoute("GET", "/customers/{customer_id}/export"),
    ApiRoute("GET", "/erasures/{request_id}"),
    ApiRoute("POST", "/imports"),
    ApiRoute("GET", "/imports/{import_id}"),
    ApiRoute("GET", "/me"),
    ApiRoute("PATCH", "/me/preferences"),
    ApiRoute("PUT", "/me/consents/{channel}/{purpose}"),
    ApiRoute("GET", "/me/export"),
)

# What `ecrm.customers.message_timeline` records on the timeline.
BROADCAST_TIMELINE_EVENTS = (
    "MessageSent",
    "MessageDelivered",
    "MessageBounced",
    "MessageComplained",
    "MessageOpened",
    "MessageClicked",
    "MessageSuppressed",
    "MessageFailed",
    "CustomerUnsubscribed",
)
# What `functions/customers/on_purchase_event.py` records (`ecrm.customers.purchase_timeline`).
PURCHASE_TIMELINE_EVENTS = ("PurchaseBrokered", "PurchaseFailed")
# What `functions/customers/on_order_event.py` records (`ecrm.customers.order_timeline`).
ORDER_TIMELINE_EVENTS = ("OrderPlaced", "OrderStatusChanged", "OrderReturned")
# What `functions/customers/on_loyalty_event.py` keeps as the customer's loyalty traits.
LOYALTY_TRAIT_EVENTS = (
    "PointsEarned",
    "PointsReversed",
    "PointsRedeemed",
    "PointsExpired",
    "PointsMerged",
    "TierChanged",
)

# What the contacts function may do on the table (a test runs its use cases and checks they need no more).
CONTACTS_TABLE_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:PutItem",
    "dynamodb:ConditionCheckItem",
)

# Attribute -> sources, best first. Deployers change it with the context key ecrm:customersSourcePriority.
DEFAULT_SOURCE_PRIORITY = {"*": ["staff", "erp", "callcenter", "shop", "web"]}


class CustomersEngine(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        foundation: Foundation,
        lake: Lake,
        erasure_participants: tuple[str, ...] = ("customers",),
    ) -> None:
        super().__init__(scope, construct_id)
        settings = foundation.settings
        self.table = EngineTable(
            self, "Table", key=foundation.key, settings=settings, stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES
        ).table
        # Consent, profile, merge and erasure events leave through the table's outbox (ADR 11).
        self.outbox = OutboxRelay(self, "OutboxRelay", foundation=foundation, engine="customers", table=self.table)
        self.bucket = self._import_bucket(foundation)
        priority = self.node.try_get_context("ecrm:customersSourcePriority") or DEFAULT_SOURCE_PRIORITY
        env = {
            "CUSTOMERS_TABLE_NAME": self.table.table_name,
            "EVENT_BUS_NAME": foundation.bus.event_bus_name,
            "IMPORT_BUCKET_NAME": self.bucket.bucket_name,
            "CUSTOMERS_SOURCE_PRIORITY": json.dumps(priority, separators=(",", ":")),
            "ERASURE_PARTICIPANTS": ",".join(erasure_participants),
            "CUSTOMERS_PUBLISHED_ATTRIBUTES": ",".join(sorted(PUBLISHED_ATTRIBUTES)),
        }
        region = self.node.try_get_context("ecrm:defaultPhoneRegion")
        if region:
            env["CUSTOMERS_DEFAULT_PHONE_REGION"] = region

        self.api = ApiFunction(self, "Api", foundation=foundation, engine="customers", routes=ROUTES, environment=env)
        self.table.grant_read_write_data(self.api.function)
        self.bucket.grant_put(self.api.function, "uploads/*")
        self.bucket.grant_read(self.api.function, "reports/*")
        self._acknowledge_bucket_grants(
            self.api.handler, ["uploads/*", "reports/*"], ["s3:Abort*", "s3:GetBucket*", "s3:GetObject*", "s3:List*"]
        )
        foundation.bus.grant_put_events_to(self.api.function)

        self.importer = self._import_pipeline(foundation, env)

        self.erasure = QueueConsumer(
            self,
            "ErasureConsumer",
            foundation=foundation,
            engine="customers",
            module="on_erasure_requested",
            environment=env,
            batch_size=1,
        )
        self.table.grant_read_write_data(self.erasure.handler.function)
        foundation.bus.grant_put_events_to(self.erasure.handler.function)
        EventRuleToQueue(
            self,
            "ErasureRequestedRule",
            foundation=foundation,
            consumer=self.erasure,
            description="Erasure requests to the customer store's own eraser",
            pattern=events.EventPattern(source=["ecrm.customers"], detail_type=["CustomerErasureRequested"]),
        )
        self.collected = QueueConsumer(
            self,
            "CollectedEventConsumer",
            foundation=foundation,
            engine="customers",
            module="on_collected_event",
            environment=env,
            batch_size=10,
            max_concurrency=20,
        )
        self.table.grant_read_write_data(self.collected.handler.function)
        foundation.bus.grant_put_events_to(self.collected.handler.function)
        EventRuleToQueue(
            self,
            "CollectedEventsRule",
            foundation=foundation,
            consumer=self.collected,
            description="Tracked events to the customer store: identity stitching and the timeline",
            pattern=events.EventPattern(source=["ecrm.collect"]),
        )
        from ecrm.core.lake import CUSTOMER_CHANGE_COLUMNS

        self.changes = lake.add_table(
            "CustomerChanges",
            table="customer_changes",
            columns=CUSTOMER_CHANGE_COLUMNS,
            description="Customer store changes: ids and field names, no personal values",
        )
        self.lake_writer = QueueConsumer(
            self,
            "LakeChangesConsumer",
            foundation=foundation,
            engine="customers",
            module="on_customer_changed",
            environment={**env, "LAKE_CUSTOMER_CHANGES_STREAM_NAME": self.changes.stream_name},
            batch_size=10,
        )
        self.changes.grant_put(self.lake_writer.handler.function)
        EventRuleToQueue(
            self,
            "CustomerChangesRule",
            foundation=foundation,
            consumer=self.lake_writer,
            description="Customer store changes into the lake",
            pattern=events.EventPattern(
                source=["ecrm.customers"],
                detail_type=[
                    "CustomerCreated",
                    "CustomerUpdated",
                    "CustomersMerged",
                    "ConsentChanged",
                    "CustomerErased",
                ],
            ),
        )
        self.analysis = QueueConsumer(
            self,
            "AnalysisConsumer",
            foundation=foundation,
            engine="customers",
            module="on_analysis_event",
            environment=env,
            batch_size=10,
        )
        self.table.grant_read_write_data(self.analysis.handler.function)
        EventRuleToQueue(
            self,
            "AnalysisEventsRule",
            foundation=foundation,
            consumer=self.analysis,
            description="Segment memberships and computed traits, shown on the profile",
            pattern=events.EventPattern(
                source=["ecrm.analysis"], detail_type=["SegmentEntered", "SegmentExited", "TraitsComputed"]
            ),
        )
        self.acks = QueueConsumer(
            self,
            "ErasureAckConsumer",
            foundation=foundation,
            engine="customers",
            module="on_data_erased",
            environment=env,
        )
        self.table.grant_read_write_data(self.acks.handler.function)
        foundation.bus.grant_put_events_to(self.acks.handler.function)
        EventRuleToQueue(
            self,
            "DataErasedRule",
            foundation=foundation,
            consumer=self.acks,
            description="Every engine's erasure acknowledgement",
            pattern=events.EventPattern(source=events.Match.prefix("ecrm."), detail_type=["CustomerDataErased"]),
        )

        self.contacts = self._contacts_function(foundation, env)
        self.broadcast = QueueConsumer(
            self,
            "BroadcastEventConsumer",
            foundation=foundation,
            engine="customers",
            module="on_broadcast_event",
            environment=env,
            batch_size=10,
            max_concurrency=20,
        )
        self.table.grant_read_write_data(self.broadcast.handler.function)
        foundation.bus.grant_put_events_to(self.broadcast.handler.function)  # an unsubscription's InteractionRecorded
        EventRuleToQueue(
            self,
            "BroadcastEventsRule",
            foundation=foundation,
            consumer=self.broadcast,
            description="Message outcomes and engagement from the broadcast engine onto the customer's timeline",
            pattern=events.EventPattern(source=["ecrm.broadcast"], detail_type=list(BROADCAST_TIMELINE_EVENTS)),
        )
        self.purchases = QueueConsumer(
            self,
            "PurchaseEventConsumer",
            foundation=foundation,
            engine="customers",
            module="on_purchase_event",
            environment=env,
            batch_size=10,
        )
        self.table.grant_read_write_data(self.purchases.handler.function)
        foundation.bus.grant_put_events_to(self.purchases.handler.function)  # InteractionRecorded
        EventRuleToQueue(
            self,
            "PurchaseEventsRule",
            foundation=foundation,
            consumer=self.purchases,
            description="Brokered purchases completed or compensated, onto the customer's timeline",
            pattern=events.EventPattern(source=["ecrm.transactions"], detail_type=list(PURCHASE_TIMELINE_EVENTS)),
        )
        self.orders = QueueConsumer(
            self,
            "OrderEventConsumer",
            foundation=foundation,
            engine="customers",
            module="on_order_event",
            environment=env,
            batch_size=10,
        )
        self.table.grant_read_write_data(self.orders.handler.function)
        foundation.bus.grant_put_events_to(self.orders.handler.function)  # InteractionRecorded
        EventRuleToQueue(
            self,
            "OrderEventsRule",
            foundation=foundation,
            consumer=self.orders,
            description="Orders placed, paid, shipped, delivered, cancelled and returned, onto the customer's timeline",
            pattern=events.EventPattern(source=["ecrm.transactions"], detail_type=list(ORDER_TIMELINE_EVENTS)),
        )
        self.loyalty = QueueConsumer(
            self,
            "LoyaltyEventConsumer",
            foundation=foundation,
            engine="customers",
            module="on_loyalty_event",
            environment=env,
            batch_size=10,
        )
        self.table.grant_read_write_data(self.loyalty.handler.function)
        EventRuleToQueue(
            self,
            "LoyaltyEventsRule",
            foundation=foundation,
            consumer=self.loyalty,
            description="Loyalty changes (the account's standing) onto the customer as traits",
            pattern=events.EventPattern(source=["ecrm.transactions"], detail_type=list(LOYALTY_TRAIT_EVENTS)),
        )

    def _contacts_function(self, foundation: Foundation, env: dict[str, str]) -> EngineFunction:
        """What the broadcast engine invokes at send time (`grant_invoke` on `contacts.function`).

        It reads profiles (one at a time, or 100 per batch for cards) and writes consents with their proof
        and outbox item in one transaction (PutItem and ConditionCheckItem are what TransactWriteItems
        needs per item); nothing else.
        """
        contacts = EngineFunction(
            self,
            "Contacts",
            engine="customers",
            module="task_contacts",
            settings=foundation.settings,
            layers=[foundation.common_layer],
            environment=env,
            timeout=Duration.seconds(10),
            description="eCRM customers: contact cards and consents for the broadcast engine",
        )
        contacts.role.add_to_policy(
            iam.PolicyStatement(
                actions=list(CONTACTS_TABLE_ACTIONS),
                resources=[self.table.table_arn],
            )
        )
        foundation.key.grant_encrypt_decrypt(contacts.function)
        return contacts

    def _acknowledge_bucket_grants(self, function: EngineFunction, prefixes: list[str], actions: list[str]) -> None:
        bucket_id = Stack.of(self).get_logical_id(self.bucket.node.default_child)  # type: ignore[arg-type]
        acknowledge(
            function.role,
            "AwsSolutions-IAM5",
            "CDK's S3 grants use action families on objects of the import bucket under the given prefixes.",
            applies_to=[f"Action::{a}" for a in actions] + [f"Resource::<{bucket_id}.Arn>/{p}" for p in prefixes],
        )

    def _import_bucket(self, foundation: Foundation) -> s3.Bucket:
        settings = foundation.settings
        access_logs = s3.Bucket(
            self,
            "ImportAccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))],
            removal_policy=settings.removal_policy,
        )
        acknowledge(access_logs, "AwsSolutions-S1", "This bucket receives the import bucket's access logs.")
        bucket = s3.Bucket(
            self,
            "ImportBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            versioned=False,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="import-bucket/",
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.PUT], allowed_origins=["*"], allowed_headers=["*"], max_age=3000
                )
            ],
            lifecycle_rules=[
                s3.LifecycleRule(prefix="uploads/", expiration=Duration.days(30)),
                s3.LifecycleRule(prefix="incoming/", expiration=Duration.days(30)),
                s3.LifecycleRule(prefix="work/", expiration=Duration.days(7)),
                s3.LifecycleRule(prefix="reports/", expiration=Duration.days(90)),
                s3.LifecycleRule(abort_incomplete_multipart_upload_after=Duration.days(1)),
            ],
            removal_policy=settings.removal_policy if settings.retain_data else RemovalPolicy.DESTROY,
        )
        cfn = bucket.node.default_child
        assert isinstance(cfn, s3.CfnBucket)
        # Native EventBridge notifications (CDK's event_bridge_enabled would add a custom-resource Lambda).
        cfn.add_property_override("NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True)
        return bucket

    def _import_pipeline(self, foundation: Foundation, env: dict[str, str]) -> Workflow:
        settings = foundation.settings
        task = EngineFunction(
            self,
            "ImportTask",
            engine="customers",
            module="task_import",
            settings=settings,
            layers=[foundation.common_layer],
            environment=env,
            timeout=Duration.minutes(10),
            memory_size=1769,
            description="eCRM customers: import steps",
        )
        self.table.grant_read_write_data(task.function)
        self.bucket.grant_read_write(task.function)
        self._acknowledge_bucket_grants(
            task, ["*"], ["s3:Abort*", "s3:DeleteObject*", "s3:GetBucket*", "s3:GetObject*", "s3:List*"]
        )
        foundation.bus.grant_put_events_to(task.function)

        def step(name: str, payload: dict[str, object], result_path: str | None = None) -> tasks.LambdaInvoke:
            invoke = tasks.LambdaInvoke(
                self,
                name,
                lambda_function=task.function,
                payload=sfn.TaskInput.from_object(payload),
                payload_response_only=False,
                result_selector={"result.$": "$.Payload"},
                retry_on_service_exceptions=True,
                result_path=result_path,
            )
            return invoke

        prepare = step(
            "Prepare", {"step": "prepare", "key.$": "$.key", "import_id.$": "$.import_id"}, result_path="$.prepared"
        )
        chunk = step(
            "ImportChunk", {"step": "chunk", "import_id.$": "$.import_id", "index.$": "$.index", "key.$": "$.key"}
        )
        chunk.add_retry(errors=["States.TaskFailed"], interval=Duration.seconds(2), max_attempts=3, backoff_rate=2)
        chunks = sfn.Map(
            self,
            "ImportChunks",
            items_path="$.prepared.result.chunks",
            max_concurrency=4,
            result_path=sfn.JsonPath.DISCARD,
        )
        chunks.item_processor(chunk)
        finish = step("Finish", {"step": "finish", "import_id.$": "$.import_id"}, result_path="$.finished")
        fail = step(
            "MarkFailed",
            {"step": "fail", "import_id.$": "$.import_id", "cause.$": "$.error.Cause"},
            result_path=sfn.JsonPath.DISCARD,
        )
        failed = sfn.Fail(self, "ImportFailed", error="ImportFailed", cause="see the import's status")
        fail.next(failed)
        for state in (prepare, chunks, finish):
            state.add_catch(fail, errors=["States.ALL"], result_path="$.error")
        duplicate = sfn.Choice(self, "Duplicate?")
        done = sfn.Succeed(self, "Imported")
        definition = prepare.next(
            duplicate.when(sfn.Condition.boolean_equals("$.prepared.result.duplicate", True), done).otherwise(
                chunks.next(finish).next(done)
            )
        )
        workflow = Workflow(
            self,
            "Import",
            settings=settings,
            definition=definition,
            timeout=Duration.hours(6),
            comment="Bulk import of customer records: prepare, chunks in parallel, finish",
        )
        workflow.acknowledge_invokes(task.function)
        env["IMPORT_STATE_MACHINE_ARN"] = workflow.state_machine.state_machine_arn

        starter = QueueConsumer(
            self,
            "ImportStarter",
            foundation=foundation,
            engine="customers",
            module="on_import_uploaded",
            environment=env,
            batch_size=5,
        )
        starter.handler.function.add_environment("IMPORT_STATE_MACHINE_ARN", workflow.state_machine.state_machine_arn)
        workflow.state_machine.grant_start_execution(starter.handler.function)
        self.table.grant_read_write_data(starter.handler.function)  # registers imports of dropped files
        self.bucket.grant_read(starter.handler.function, "mappings/*")
        self._acknowledge_bucket_grants(starter.handler, ["mappings/*"], ["s3:GetBucket*", "s3:GetObject*", "s3:List*"])
        rule = events.Rule(
            self,
            "ImportUploadedRule",
            description="Uploads to the import bucket start an import",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [self.bucket.bucket_name]},
                    "object": {"key": [{"prefix": "uploads/"}, {"prefix": "incoming/"}]},
                },
            ),
        )
        rule.add_target(
            targets.SqsQueue(
                starter.queue,
                dead_letter_queue=starter.dead_letter_queue,
                retry_attempts=185,
                max_event_age=Duration.hours(24),
            )
        )
        return workflow
