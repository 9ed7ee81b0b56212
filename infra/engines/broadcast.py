"""Broadcast in the cloud (ADR 12): its table and outbox relay, the API, the dispatcher, a queue and sender per
channel, the SES configuration sets whose events reach the feedback queue, the SNS topics of the phone, push and
WhatsApp events, the release of deferred messages, and the alarms of the deliverability guard.

Deployment choices are context keys: `ecrm:broadcastEmailFrom` (a verified identity's address; its domain is
declared here), `ecrm:broadcastEmailConcurrency` (the email sender's concurrency, to pace to the account's send
rate), `ecrm:broadcastOriginationIdentities` (country -> End User Messaging identity), `ecrm:broadcastVoiceOrigination`
and `ecrm:broadcastWhatsAppPhoneNumberId` (each turns its channel on), `ecrm:broadcastPushApplications`,
`ecrm:broadcastLinksBaseUrl` (where unsubscribe links point; default: the API's stage URL),
`ecrm:broadcastSendRates` (messages per second per pacing key: `email` the SES account, `sms:<identity>`,
`sms:*`, `voice:*`; ADR 12's pacing).
"""

from __future__ import annotations

import json
import re
from typing import Any

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ses as ses
from aws_cdk import aws_smsvoice as smsvoice
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct
from ecrm.core.lake import MESSAGE_OUTCOME_COLUMNS, MESSAGE_OUTCOMES
from ecrm.core.outbox import OUTBOX_ATTRIBUTE

from infra.constructs.api_function import ApiFunction, ApiRoute
from infra.constructs.engine_function import EngineFunction
from infra.constructs.engine_table import EngineTable
from infra.constructs.event_queue import EventRuleToQueue, QueueConsumer, erasure_consumer
from infra.constructs.foundation import Foundation
from infra.constructs.lake import Lake
from infra.constructs.nag import acknowledge
from infra.constructs.outbox_relay import OutboxRelay, StreamConsumer
from infra.constructs.scheduled_job import ScheduledJob
from infra.engines.customers import CustomersEngine

LINKS = "reached from a signed link in a message: the token in the query is checked in the function"
ROUTES = (
    ApiRoute("POST", "/messages"),
    ApiRoute("GET", "/messages/{message_id}"),
    ApiRoute("GET", "/customers/{customer_id}/messages"),
    ApiRoute("GET", "/suppressions"),
    ApiRoute("DELETE", "/suppressions/{address}"),
    ApiRoute("POST", "/webhooks/endpoints"),
    ApiRoute("GET", "/me/inbox"),
    ApiRoute("POST", "/me/inbox/{item_id}/read"),
    ApiRoute("POST", "/me/devices"),
    ApiRoute("DELETE", "/me/devices/{device_id}"),
    ApiRoute("POST", "/unsubscribe", public=True, public_because=LINKS),
    ApiRoute("GET", "/unsubscribe", public=True, public_because=LINKS),
    ApiRoute("GET", "/preferences", public=True, public_because=LINKS),
    ApiRoute("POST", "/preferences", public=True, public_because=LINKS),
)
ALWAYS_ON = ("email", "sms", "push", "in_app", "webhook")
# What the outcome counter reads: the writes of message items that carry events (`ecrm.broadcast.outcome_counts`),
# not its own count items (`OUTCOMES#...`) nor any other item's. Its window is how live the counts are.
OUTCOME_FILTERS: list[dict[str, Any]] = [
    {
        "eventName": lambda_.FilterRule.or_("INSERT", "MODIFY"),
        "dynamodb": {
            "Keys": {"pk": {"S": lambda_.FilterRule.begins_with("MSG#")}},
            "NewImage": {OUTBOX_ATTRIBUTE: {kind: lambda_.FilterRule.exists()}},
        },
    }
    for kind in ("S", "B")
]
OUTCOME_WINDOW = Duration.seconds(10)
DEFAULT_FROM = "eCRM <news@example.com>"
# SES's send rate of a new production account and a long code's one message per second (End User Messaging).
DEFAULT_SEND_RATES = {"email": 14, "sms:*": 1, "voice:*": 1}
# Alarms before SES's review thresholds (bounce 2%, complaint 0.08%), on SES's own reputation metrics.
BOUNCE_ALARM = 0.015
COMPLAINT_ALARM = 0.0006
# Alarms on the engine's own rates at SES's thresholds, read only over a window of at least this many sends.
OWN_BOUNCE_ALARM = 0.02
OWN_COMPLAINT_ALARM = 0.0008
RATE_ALARM_MIN_SENDS = 200


class BroadcastEngine(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        foundation: Foundation,
        customers: CustomersEngine,
        lake: Lake,
        templates: lambda_.IFunction | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        # Personalization's templates function: a message's content may name a stored template.
        self.templates = templates
        self.foundation = foundation
        settings = foundation.settings
        self.table = EngineTable(
            self, "Table", key=foundation.key, settings=settings, stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES
        ).table
        self.outbox = OutboxRelay(self, "OutboxRelay", foundation=foundation, engine="broadcast", table=self.table)
        # The lake's rows of the message events, written by the outcome counter from the stream.
        self.message_outcomes = lake.add_table(
            "MessageOutcomes",
            table=MESSAGE_OUTCOMES,
            columns=MESSAGE_OUTCOME_COLUMNS,
            description="Broadcast's message outcomes: one row per status change or engagement of a message",
        )
        self.outcome_counter = StreamConsumer(
            self,
            "OutcomeCounter",
            foundation=foundation,
            engine="broadcast",
            table=self.table,
            module="count_outcomes",
            name="outcome counter",
            description="message events counted once per window of the table stream",
            behind="counts of message events wait",
            filters=OUTCOME_FILTERS,
            environment={
                "BROADCAST_TABLE_NAME": self.table.table_name,
                "LAKE_MESSAGE_OUTCOMES_STREAM_NAME": self.message_outcomes.stream_name,
            },
            batch_size=1000,
            # A window's state is its counts: Lambda keeps it, so a retried batch is folded in once (ADR 12);
            # a record that cannot be read is reported, what came before it stays counted.
            tumbling_window=OUTCOME_WINDOW,
        )
        self.table.grant(self.outcome_counter.handler.function, "dynamodb:PutItem", "dynamodb:Query")
        foundation.key.grant_encrypt_decrypt(self.outcome_counter.handler.function)
        self.message_outcomes.grant_put(self.outcome_counter.handler.function)

        email_from = str(self.node.try_get_context("ecrm:broadcastEmailFrom") or DEFAULT_FROM)
        self.configuration_set, self.untracked_set = self._email(email_from, settings.name("broadcast"))
        # End User Messaging's configuration set for texts and calls: its events (with our message id in their
        # context) reach the feedback queue, as the evidence that settles a send whose sender died after the call.
        self.sms_configuration_set = f"{settings.name('broadcast')}-phone"
        voice = str(self.node.try_get_context("ecrm:broadcastVoiceOrigination") or "")
        whatsapp = str(self.node.try_get_context("ecrm:broadcastWhatsAppPhoneNumberId") or "")
        channels = [*ALWAYS_ON, *(["voice"] if voice else []), *(["whatsapp"] if whatsapp else [])]
        base_url = self.node.try_get_context("ecrm:broadcastLinksBaseUrl") or (
            f"https://{foundation.api.rest_api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}/{settings.stage}"
        )
        self.env: dict[str, str] = {
            "BROADCAST_TABLE_NAME": self.table.table_name,
            "EVENT_BUS_NAME": foundation.bus.event_bus_name,
            "CUSTOMERS_CONTACTS_FUNCTION_NAME": customers.contacts.function.function_name,
            "PERSONALIZATION_TEMPLATES_FUNCTION_NAME": templates.function_name if templates else "",
            "BROADCAST_EMAIL_FROM": email_from,
            "BROADCAST_CONFIGURATION_SET": self.configuration_set,
            "BROADCAST_UNTRACKED_CONFIGURATION_SET": self.untracked_set,
            "BROADCAST_SMS_CONFIGURATION_SET": self.sms_configuration_set,
            "BROADCAST_ORIGINATION_IDENTITIES": json.dumps(
                self.node.try_get_context("ecrm:broadcastOriginationIdentities") or {}
            ),
            "BROADCAST_VOICE_ORIGINATION": voice,
            "BROADCAST_WHATSAPP_PHONE_NUMBER_ID": whatsapp,
            "BROADCAST_PUSH_APPLICATIONS": json.dumps(
                self.node.try_get_context("ecrm:broadcastPushApplications") or {}
            ),
            "BROADCAST_LINKS_BASE_URL": str(base_url),
            "BROADCAST_SEND_RATES": json.dumps(
                self.node.try_get_context("ecrm:broadcastSendRates") or DEFAULT_SEND_RATES, sort_keys=True
            ),
            # Plain http to 127.0.0.1 for webhooks: the local cloud's receivers only, never set in AWS.
            "BROADCAST_WEBHOOK_ALLOW_LOOPBACK_HTTP": json.dumps(
                bool(self.node.try_get_context("ecrm:broadcastWebhookAllowLoopbackHttp"))
            ),
        }

        self.senders = {channel: self._sender(channel, customers) for channel in channels}
        self.env["BROADCAST_QUEUE_URLS"] = Stack.of(self).to_json_string(
            {channel: consumer.queue.queue_url for channel, consumer in self.senders.items()}
        )

        self.api = ApiFunction(
            self, "Api", foundation=foundation, engine="broadcast", routes=ROUTES, environment=self.env
        )
        self._grant_common(self.api.handler, customers)
        self._grant_device_registration(self.api.handler)
        self._grant_templates(self.api.handler)

        self.dispatcher = QueueConsumer(
            self,
            "Dispatcher",
            foundation=foundation,
            engine="broadcast",
            module="on_message_requested",
            environment=self.env,
            batch_size=10,
            max_concurrency=20,
        )
        self._grant_common(self.dispatcher.handler, customers)
        self._grant_enqueue(self.dispatcher.handler)
        EventRuleToQueue(
            self,
            "MessageRequestedRule",
            foundation=foundation,
            consumer=self.dispatcher,
            description="Requested messages to the delivery policy",
            pattern=events.EventPattern(source=["ecrm.broadcast"], detail_type=["MessageRequested"]),
        )

        # Other engines' workers (a campaign run's chunks, journeys) request up to 100 messages per invocation.
        self.request_messages = EngineFunction(
            self,
            "RequestMessages",
            engine="broadcast",
            module="task_request_messages",
            settings=settings,
            layers=[foundation.common_layer],
            environment=self.env,
            timeout=Duration.seconds(60),
            description="eCRM broadcast: message requests in bulk from other engines' workers",
        )
        self._grant_common(self.request_messages, customers)
        self._grant_templates(self.request_messages)
        # a campaign's test sends (proofs) go straight to staff addresses by email or SMS
        self.request_messages.role.add_to_policy(
            iam.PolicyStatement(
                actions=["ses:SendEmail", "ses:SendRawEmail", "sms-voice:SendTextMessage", "sns:Publish"],
                resources=["*"],
            )
        )
        acknowledge(
            self.request_messages.role,
            "AwsSolutions-IAM5",
            "Test sends go to staff addresses given per request at run time: the providers' send actions cannot be "
            "scoped to them in advance.",
            applies_to=["Resource::*"],
        )

        self.release = EngineFunction(
            self,
            "ReleaseDeferred",
            engine="broadcast",
            module="release_deferred",
            settings=settings,
            layers=[foundation.common_layer],
            environment=self.env,
            timeout=Duration.seconds(60),
            description="eCRM broadcast: deferred messages that came due, decided again",
        )
        self._grant_common(self.release, customers)
        self._grant_enqueue(self.release)
        ScheduledJob(
            self,
            "ReleaseSchedule",
            schedule="rate(1 minute)",
            description="Deferred messages (quiet hours, sending windows, the pause) released when due",
            function=self.release.function,
        )

        self.feedback = QueueConsumer(
            self,
            "Feedback",
            foundation=foundation,
            engine="broadcast",
            module="on_feedback",
            environment=self.env,
            batch_size=10,
            max_concurrency=10,
        )
        self._grant_common(self.feedback.handler, customers)
        self._feedback_sources()

        # Its part of every erasure: the customer's records deleted, messages detached, suppressions hashed.
        self.erasure = erasure_consumer(self, foundation=foundation, engine="broadcast", environment=self.env)
        self.table.grant_read_write_data(self.erasure.handler.function)

        self._deliverability_alarms()

    # -- channels ------------------------------------------------------------------------------------------------
    def _sender(self, channel: str, customers: CustomersEngine) -> QueueConsumer:
        concurrency = {"email": int(self.node.try_get_context("ecrm:broadcastEmailConcurrency") or 10)}
        sender = QueueConsumer(
            self,
            f"Send{''.join(part.title() for part in channel.split('_'))}",
            foundation=self.foundation,
            engine="broadcast",
            module="send_message",
            environment=self.env,
            batch_size=10,
            max_concurrency=concurrency.get(channel, 5),
            timeout=Duration.seconds(30),
            max_receive_count=8,
        )
        self._grant_common(sender.handler, customers)
        statements = {
            "email": (["ses:SendEmail", "ses:SendRawEmail"], ["*"]),
            "sms": (["sms-voice:SendTextMessage", "sns:Publish"], ["*"]),
            "voice": (["sms-voice:SendVoiceMessage"], ["*"]),
            "push": (["sns:Publish"], ["*"]),
            "whatsapp": (["social-messaging:SendWhatsAppMessage"], ["*"]),
        }
        if channel in statements:
            actions, resources = statements[channel]
            sender.handler.role.add_to_policy(iam.PolicyStatement(actions=actions, resources=resources))
            acknowledge(
                sender.handler.role,
                "AwsSolutions-IAM5",
                f"The {channel} sender addresses recipients (identities, phone numbers, platform endpoints) chosen per "
                "message at run time: the provider's send action cannot be scoped to them in advance.",
                applies_to=["Resource::*"],
            )
        return sender

    def _email(self, email_from: str, name: str) -> tuple[str, str]:
        """Two configuration sets, with and without open and click tracking, both sending events to the bus."""
        match = re.search(r"@([A-Za-z0-9.\-]+)", email_from)
        domain = match.group(1) if match else "example.com"
        tracked = ses.CfnConfigurationSet(self, "ConfigurationSet", name=f"{name}-tracked")
        untracked = ses.CfnConfigurationSet(self, "UntrackedConfigurationSet", name=f"{name}-untracked")
        default_bus = f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:event-bus/default"
        # CloudFormation spells SES's event types in camel case (the SES v2 API in upper snake case).
        kinds = [
            "send",
            "reject",
            "bounce",
            "complaint",
            "delivery",
            "open",
            "click",
            "renderingFailure",
            "deliveryDelay",
            "subscription",
        ]
        for set_id, configuration_set in (("Tracked", tracked), ("Untracked", untracked)):
            destination = ses.CfnConfigurationSetEventDestination(
                self,
                f"{set_id}Events",
                configuration_set_name=str(configuration_set.name),
                event_destination=ses.CfnConfigurationSetEventDestination.EventDestinationProperty(
                    enabled=True,
                    matching_event_types=kinds,
                    event_bridge_destination=ses.CfnConfigurationSetEventDestination.EventBridgeDestinationProperty(
                        event_bus_arn=default_bus
                    ),
                ),
            )
            destination.add_resource_dependency(configuration_set)
        identity = ses.CfnEmailIdentity(
            self,
            "EmailIdentity",
            email_identity=domain,
            configuration_set_attributes=ses.CfnEmailIdentity.ConfigurationSetAttributesProperty(
                configuration_set_name=str(tracked.name)
            ),
        )
        identity.add_resource_dependency(tracked)
        return str(tracked.name), str(untracked.name)

    def _feedback_sources(self) -> None:
        """SES events on the default bus (SES publishes only there); phone, push and WhatsApp events by SNS."""
        rule = events.Rule(
            self,
            "SesEventsRule",
            description="SES sending events of the broadcast configuration sets to the feedback queue",
            event_pattern=events.EventPattern(source=["aws.ses"]),
        )
        rule.add_target(
            targets.SqsQueue(
                self.feedback.queue,
                dead_letter_queue=self.feedback.dead_letter_queue,
                retry_attempts=185,
                max_event_age=Duration.hours(24),
            )
        )
        self.topics: dict[str, sns.Topic] = {}
        for name, publisher, about in (
            (
                "PhoneEvents",
                "sms-voice.amazonaws.com",
                "End User Messaging SMS and voice events, inbound STOP and HELP",
            ),
            ("PushEvents", "sns.amazonaws.com", "SNS platform application events (endpoint updated, failure)"),
            ("WhatsAppEvents", "social-messaging.amazonaws.com", "WhatsApp statuses and inbound messages"),
        ):
            topic = sns.Topic(self, name, display_name=about[:100], enforce_ssl=True, master_key=self.foundation.key)
            topic.grant_publish(iam.ServicePrincipal(publisher))
            topic.add_subscription(subscriptions.SqsSubscription(self.feedback.queue))
            self.topics[name] = topic
        # The publishers encrypt with the data key (the topics'), and SNS delivers to the feedback queue under it.
        self.foundation.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="BroadcastFeedbackPublishers",
                principals=[
                    iam.ServicePrincipal(p)
                    for p in ("sms-voice.amazonaws.com", "sns.amazonaws.com", "social-messaging.amazonaws.com")
                ],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
            )
        )
        smsvoice.CfnConfigurationSet(
            self,
            "PhoneConfigurationSet",
            configuration_set_name=self.sms_configuration_set,
            event_destinations=[
                smsvoice.CfnConfigurationSet.EventDestinationProperty(
                    event_destination_name="feedback",
                    enabled=True,
                    matching_event_types=["ALL"],
                    sns_destination=smsvoice.CfnConfigurationSet.SnsDestinationProperty(
                        topic_arn=self.topics["PhoneEvents"].topic_arn
                    ),
                )
            ],
        )

    def _deliverability_alarms(self) -> None:
        for metric_name, threshold, what in (
            ("Reputation.BounceRate", BOUNCE_ALARM, "bounce rate nears SES's 2% review threshold"),
            ("Reputation.ComplaintRate", COMPLAINT_ALARM, "complaint rate nears SES's 0.08% review threshold"),
        ):
            cloudwatch.Alarm(
                self,
                metric_name.replace(".", ""),
                metric=cloudwatch.Metric(
                    namespace="AWS/SES", metric_name=metric_name, period=Duration.hours(1), statistic="Maximum"
                ),
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=f"Email {what}; marketing email pauses itself at the threshold",
            )
        self._own_rate_alarms()

    def _own_rate_alarms(self) -> None:
        """The engine's own bounce and complaint rates per configuration set (EMF from the feedback handler).

        Each rate is published with the sends of its window (`WindowSends`); the alarm reads the rate only
        when that window held at least `RATE_ALARM_MIN_SENDS` sends (metric math `IF`), else 0: one bounce
        in three sends is 33% and says nothing about the sender, so it pages nobody.
        """
        sends = self._engine_metric("WindowSends")
        for metric_name, threshold, what in (
            ("BounceRate", OWN_BOUNCE_ALARM, "bounce rate reached 2%"),
            ("ComplaintRate", OWN_COMPLAINT_ALARM, "complaint rate reached 0.08%"),
        ):
            cloudwatch.Alarm(
                self,
                f"Own{metric_name}",
                metric=cloudwatch.MathExpression(
                    expression=f"IF(sends >= {RATE_ALARM_MIN_SENDS}, rate, 0)",
                    using_metrics={"sends": sends, "rate": self._engine_metric(metric_name)},
                    period=Duration.minutes(15),
                    label=f"{metric_name} over at least {RATE_ALARM_MIN_SENDS} sends",
                ),
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=f"Email {what} of the engine's own sends over its guard window (at least "
                f"{RATE_ALARM_MIN_SENDS} sends); marketing email pauses itself",
            )

    def _engine_metric(self, name: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="ecrm",
            metric_name=name,
            # Powertools adds the function's service to every metric's dimensions.
            dimensions_map={"ConfigurationSet": self.configuration_set, "service": "ecrm-broadcast"},
            period=Duration.minutes(15),
            statistic="Maximum",
        )

    # -- grants --------------------------------------------------------------------------------------------------
    def _grant_common(self, function: EngineFunction, customers: CustomersEngine) -> None:
        self.table.grant_read_write_data(function.function)
        # The contacts function itself, not its versions (`grant_invoke` adds `<arn>:*`): one resource, no wildcard.
        function.role.add_to_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[customers.contacts.function.function_arn])
        )

    def _grant_templates(self, function: EngineFunction) -> None:
        """Requests resolve stored templates: the templates function itself, not its versions (no wildcard)."""
        if self.templates is not None:
            function.role.add_to_policy(
                iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self.templates.function_arn])
            )

    def _grant_enqueue(self, function: EngineFunction) -> None:
        for sender in self.senders.values():
            sender.queue.grant_send_messages(function.function)

    def _grant_device_registration(self, function: EngineFunction) -> None:
        applications: dict[str, Any] = self.node.try_get_context("ecrm:broadcastPushApplications") or {}
        if not applications:
            return
        function.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "sns:CreatePlatformEndpoint",
                    "sns:SetEndpointAttributes",
                    "sns:GetEndpointAttributes",
                    "sns:DeleteEndpoint",
                ],
                resources=[*applications.values(), f"arn:{Aws.PARTITION}:sns:{Aws.REGION}:{Aws.ACCOUNT_ID}:endpoint/*"],
            )
        )
        acknowledge(
            function.role,
            "AwsSolutions-IAM5",
            "Device endpoints are created per customer device under the configured platform applications.",
            applies_to=["Resource::arn:<AWS::Partition>:sns:<AWS::Region>:<AWS::AccountId>:endpoint/*"],
        )
