"""Transactions in the cloud: one table for orders and the loyalty ledger, its outbox relay, the API, the
loyalty consumer of order events, and the daily points expiry (ADR 13).

Order events also reach the lake's `order_lines` table (signed rows: a return or a refund is never a
purchase). The table streams its changes for the relay (ADR 11) and has two indexes: a customer's orders
(`by_customer`) and the loyalty accounts with points due to expire (`by_expiry`). The catalogue and the
brokered-purchase saga (`infra/constructs/purchase_saga.py`, ADR 14) is a construct of its own.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct
from ecrm.core.lake import ORDER_LINE_COLUMNS, ORDER_LINES

from infra.constructs.api_function import ApiFunction, ApiRoute
from infra.constructs.engine_function import EngineFunction
from infra.constructs.engine_table import EngineTable
from infra.constructs.event_queue import EventRuleToQueue, QueueConsumer, erasure_consumer
from infra.constructs.foundation import Foundation
from infra.constructs.lake import Lake
from infra.constructs.nag import acknowledge
from infra.constructs.outbox_relay import OutboxRelay
from infra.constructs.purchase_saga import DEFAULT_CONFIRMATION_TIMEOUT, PurchaseSaga
from infra.constructs.scheduled_job import ScheduledJob
from infra.engines.customers import CustomersEngine
from infra.engines.personalization import PersonalizationEngine

VENDOR_CALLBACKS = "a vendor's callback is authenticated by its HMAC-SHA256 signature, checked in the handler"
ROUTES = (
    ApiRoute("POST", "/orders"),
    ApiRoute("GET", "/orders/{order_id}"),
    ApiRoute("POST", "/orders/{order_id}/status"),
    ApiRoute("POST", "/orders/{order_id}/returns"),
    ApiRoute("GET", "/customers/{customer_id}/orders"),
    ApiRoute("GET", "/me/orders"),
    ApiRoute("GET", "/me/loyalty"),
    ApiRoute("POST", "/me/loyalty/redeem"),
    ApiRoute("GET", "/customers/{customer_id}/loyalty"),
    ApiRoute("GET", "/loyalty/rules"),
    ApiRoute("POST", "/loyalty/rules"),
    ApiRoute("POST", "/catalog/products"),
    ApiRoute("GET", "/catalog/products/{product_id}"),
    ApiRoute("POST", "/catalog/products/{product_id}/offers"),
    ApiRoute("GET", "/catalog/search"),
    ApiRoute("GET", "/me/catalog/search"),
    ApiRoute("GET", "/me/compare"),
    ApiRoute("GET", "/me/compare/preferences"),
    ApiRoute("PUT", "/me/compare/preferences"),
    ApiRoute("POST", "/me/purchases"),
    ApiRoute("GET", "/me/purchases/{purchase_id}"),
    ApiRoute("PUT", "/vendors/{vendor_id}"),
    ApiRoute("POST", "/vendors/{vendor_id}/callbacks", public=True, public_because=VENDOR_CALLBACKS),
)
# The payment double declines charges from this amount on (minor units): how tests and demos see a decline.
PAYMENT_DOUBLE_DECLINE_FROM_MINOR = 1_000_000
# What `functions/transactions/on_order_event.py` accepts.
ORDER_EVENTS = ["OrderPlaced", "OrderStatusChanged", "OrderReturned"]
# Just after midnight UTC: a day's lots are due from its start.
EXPIRY_SCHEDULE = "cron(15 0 * * ? *)"
BIRTHDAY_SCHEDULE = "cron(5 * * * ? *)"


class TransactionsEngine(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        foundation: Foundation,
        lake: Lake,
        personalization: PersonalizationEngine | None = None,
        customers: CustomersEngine | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        settings = foundation.settings
        self.table = EngineTable(
            self,
            "Table",
            key=foundation.key,
            settings=settings,
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
            global_indexes=("by_customer", "by_expiry"),
        ).table
        self.outbox = OutboxRelay(self, "OutboxRelay", foundation=foundation, engine="transactions", table=self.table)
        # What `ecrm.transactions.wiring.TransactionsConfig` reads. No function here puts on the bus: the relay does.
        env = {"TRANSACTIONS_TABLE_NAME": self.table.table_name}

        self.api = ApiFunction(
            self, "Api", foundation=foundation, engine="transactions", routes=ROUTES, environment=env
        )
        self._grant_table(self.api.handler)
        self._purchase_saga(foundation, env)
        if personalization is not None:
            self._recommendations_beside_comparisons(personalization.recommend)

        self.loyalty = QueueConsumer(
            self,
            "OrderEventConsumer",
            foundation=foundation,
            engine="transactions",
            module="on_order_event",
            environment=env,
            batch_size=10,
            max_concurrency=20,
        )
        self._grant_table(self.loyalty.handler)
        EventRuleToQueue(
            self,
            "OrderEventsRule",
            foundation=foundation,
            consumer=self.loyalty,
            description="Orders placed, cancelled, returned; customers' profiles and merges: into the loyalty ledger",
            pattern=events.EventPattern(
                source=["ecrm.transactions", "ecrm.customers"],
                detail_type=[*ORDER_EVENTS, "CustomerCreated", "CustomerUpdated", "CustomersMerged"],
            ),
        )

        # Orders an import of the customer store hands over, placed at their own date (a DLQ keeps any that fail).
        self.order_imports = QueueConsumer(
            self,
            "OrderImportConsumer",
            foundation=foundation,
            engine="transactions",
            module="on_order_import",
            environment=env,
            batch_size=10,
            max_concurrency=20,
        )
        self._grant_table(self.order_imports.handler)
        EventRuleToQueue(
            self,
            "OrderImportRule",
            foundation=foundation,
            consumer=self.order_imports,
            description="Orders an import of the customer store resolved and hands over, into the order book",
            pattern=events.EventPattern(source=["ecrm.customers"], detail_type=["OrderImportRequested"]),
        )

        self.order_lines = lake.add_table(
            "OrderLines",
            table=ORDER_LINES,
            columns=ORDER_LINE_COLUMNS,
            description="Order lines: purchases, returns and cancellations as signed rows",
        )
        self.lake_writer = QueueConsumer(
            self,
            "LakeOrdersConsumer",
            foundation=foundation,
            engine="transactions",
            module="on_order_changed",
            environment={**env, "LAKE_ORDER_LINES_STREAM_NAME": self.order_lines.stream_name},
            batch_size=10,
        )
        self.order_lines.grant_put(self.lake_writer.handler.function)
        self._grant_table(self.lake_writer.handler)  # merged customers' pointers and their orders
        EventRuleToQueue(
            self,
            "LakeOrdersRule",
            foundation=foundation,
            consumer=self.lake_writer,
            description="Orders placed, cancelled and returned into the lake; merges attribute orders to survivors",
            pattern=events.EventPattern(
                source=["ecrm.transactions", "ecrm.customers"], detail_type=[*ORDER_EVENTS, "CustomersMerged"]
            ),
        )

        # Its part of every erasure: loyalty and comparison state deleted, orders detached, then acknowledged.
        self.erasure = erasure_consumer(self, foundation=foundation, engine="transactions", environment=env)
        self._grant_table(self.erasure.handler)

        self.expiry_job = EngineFunction(
            self,
            "PointsExpiryJob",
            engine="transactions",
            module="job_expire_points",
            settings=settings,
            layers=[foundation.common_layer],
            environment=env,
            timeout=Duration.minutes(15),
            description="eCRM transactions: loyalty points due by today expire",
        )
        self._grant_table(self.expiry_job)
        ScheduledJob(
            self,
            "PointsExpirySchedule",
            schedule=EXPIRY_SCHEDULE,
            description="Loyalty points expire daily, 12 months rolling by default",
            function=self.expiry_job.function,
        )

        self._birthday_job(foundation, env, customers)

    def _birthday_job(self, foundation: Foundation, env: dict[str, str], customers: CustomersEngine | None) -> None:
        """Hourly (a day starts somewhere every hour): the birthday bonus in each customer's own zone, asked of
        the customer store's contacts function (the function itself, not its versions)."""
        self.birthday_job = EngineFunction(
            self,
            "BirthdayPointsJob",
            engine="transactions",
            module="job_birthday_points",
            settings=foundation.settings,
            layers=[foundation.common_layer],
            environment=env,
            timeout=Duration.minutes(15),
            description="eCRM transactions: the birthday bonus, once a year in each customer's own zone",
        )
        self._grant_table(self.birthday_job)
        if customers is not None:
            contacts = customers.contacts.function
            self.birthday_job.function.add_environment("CUSTOMERS_CONTACTS_FUNCTION_NAME", contacts.function_name)
            self.birthday_job.role.add_to_policy(
                iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[contacts.function_arn])
            )
        ScheduledJob(
            self,
            "BirthdayPointsSchedule",
            schedule=BIRTHDAY_SCHEDULE,
            description="Birthday points, hourly so that each customer's day is found in their own zone",
            function=self.birthday_job.function,
        )

    def _purchase_saga(self, foundation: Foundation, env: dict[str, str]) -> None:
        """The brokered-purchase saga (ADR 14); the API starts its executions and answers their task tokens."""
        context = self.node.try_get_context
        timeout = Duration.seconds(
            int(context("ecrm:purchaseConfirmationTimeoutSeconds") or DEFAULT_CONFIRMATION_TIMEOUT.to_seconds())
        )
        base_url = context("ecrm:purchaseCallbackBaseUrl") or (
            f"https://{foundation.api.rest_api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}/{foundation.settings.stage}"
        )
        purchase_env = {
            **env,
            "PURCHASE_CALLBACK_BASE_URL": str(base_url),
            "PAYMENT_PROVIDER": "double",
            "PAYMENT_DOUBLE_DECLINE_FROM_MINOR": str(
                context("ecrm:paymentDoubleDeclineFromMinor") or PAYMENT_DOUBLE_DECLINE_FROM_MINOR
            ),
        }
        self.purchase_saga = PurchaseSaga(
            self,
            "PurchaseSaga",
            settings=foundation.settings,
            layers=[foundation.common_layer],
            table=self.table,
            environment=purchase_env,
            confirmation_timeout=timeout,
        )
        machine = self.purchase_saga.state_machine
        api = self.api.handler.function
        for name, value in purchase_env.items():
            api.add_environment(name, value)
        api.add_environment("PURCHASE_STATE_MACHINE_ARN", machine.state_machine_arn)
        machine.grant_start_execution(api)
        machine.grant_task_response(api)

    def _recommendations_beside_comparisons(self, recommend: EngineFunction) -> None:
        """A comparison asks the personalization engine's recommend function (the function itself, not its
        versions: `grant_invoke` would add `<arn>:*`)."""
        api = self.api.handler
        api.function.add_environment("PERSONALIZATION_RECOMMEND_FUNCTION_NAME", recommend.function.function_name)
        api.role.add_to_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[recommend.function.function_arn])
        )

    def _grant_table(self, function: EngineFunction) -> None:
        self.table.grant_read_write_data(function.function)
        table_id = Stack.of(self).get_logical_id(self.table.node.default_child)  # type: ignore[arg-type]
        acknowledge(
            function.role,
            "AwsSolutions-IAM5",
            "The engine's own table and its two indexes (a customer's orders, the accounts with points due).",
            applies_to=[f"Resource::<{table_id}.Arn>/index/*"],
        )
