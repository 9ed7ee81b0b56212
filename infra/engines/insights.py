"""Insights in the cloud: live counters fed by the event stream, the operations dashboard, and the alarms nobody
else raises (a campaign run failed; any dead-letter queue not empty).

Broadcast's counts of its message events (a window of its stream each), unsubscriptions, a campaign's or a
journey's sends and orders placed reach one queue (three rules on the bus); its consumer adds them to per-minute
buckets in the engine's table (a send is a touch orders are attributed by) and publishes per-channel counts as
CloudWatch metrics (embedded metric format). Broadcast writes its message events to the lake's
`message_outcomes` table itself.

The dashboard shows the channels (sent, delivered, bounced, complained per channel, and the bounce and
complaint rates), the campaigns (runs started, succeeded and failed; targeted and converted), broadcast's
deliverability alarms (bounce 2%, complaint 0.08%: declared by broadcast, shown here, not repeated), every
dead-letter queue's depth and alarm (found by `AlarmOnEveryDeadLetterQueue` at synth), the API's 5xx and the
functions' errors.
"""

from __future__ import annotations

from aws_cdk import Aspects, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from constructs import Construct
from ecrm.core.vocabulary import DELIVERY_CHANNELS

from infra.constructs.api_function import ApiFunction, ApiRoute
from infra.constructs.dead_letters import AlarmOnEveryDeadLetterQueue, DeadLetterQueue
from infra.constructs.engine_table import EngineTable
from infra.constructs.event_queue import EventRuleToQueue, QueueConsumer, erasure_consumer
from infra.constructs.foundation import Foundation
from infra.constructs.lake import Lake
from infra.engines.broadcast import BroadcastEngine
from infra.engines.campaigns import CampaignsEngine

ROUTES = (ApiRoute("GET", "/insights/live"),)
# What the consumer counts: broadcast's counts of its message events (`MessageOutcomesCounted`, ADR 12) and the
# unsubscriptions; besides, a campaign's or a journey's sends (`TouchesRule`) for the touches orders are
# attributed by.
MESSAGE_EVENTS = ["MessageOutcomesCounted", "CustomerUnsubscribed"]
SERVICE = "ecrm-insights"  # Powertools adds the function's service to every metric's dimensions
CHANNEL_METRICS = ("Sent", "Delivered", "Bounced", "Complained")
# Broadcast's own rate alarms (`BroadcastEngine._own_rate_alarms`), shown on the dashboard.
BROADCAST_RATE_ALARMS = ("OwnBounceRate", "OwnComplaintRate")
WIDTH = 24


class InsightsEngine(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        foundation: Foundation,
        lake: Lake,
        broadcast: BroadcastEngine,
        campaigns: CampaignsEngine,
    ) -> None:
        super().__init__(scope, construct_id)
        settings = foundation.settings
        self.table = EngineTable(self, "Table", key=foundation.key, settings=settings).table
        env = {"INSIGHTS_TABLE_NAME": self.table.table_name}

        self.consumer = QueueConsumer(
            self,
            "OutcomeConsumer",
            foundation=foundation,
            engine="insights",
            module="on_outcome_event",
            environment=env,
            batch_size=10,
            max_concurrency=20,
        )
        self.table.grant_read_write_data(self.consumer.handler.function)
        EventRuleToQueue(
            self,
            "MessageEventsRule",
            foundation=foundation,
            consumer=self.consumer,
            description="Broadcast's counts of its message events and the unsubscriptions into the live counters",
            pattern=events.EventPattern(source=["ecrm.broadcast"], detail_type=MESSAGE_EVENTS),
        )
        EventRuleToQueue(
            self,
            "TouchesRule",
            foundation=foundation,
            consumer=self.consumer,
            description="A campaign's or a journey's sends: the touches orders are attributed by",
            pattern=events.EventPattern(
                source=["ecrm.broadcast"],
                detail_type=["MessageSent"],
                detail={"data": {"source": [{"prefix": "campaign:"}, {"prefix": "journey:"}]}},
            ),
        )
        EventRuleToQueue(
            self,
            "OrdersRule",
            foundation=foundation,
            consumer=self.consumer,
            description="Orders placed, attributed to the campaign and journey messages sent before them",
            pattern=events.EventPattern(source=["ecrm.transactions"], detail_type=["OrderPlaced"]),
        )
        # Its part of every erasure: the customer's touches (what they were sent) deleted.
        self.erasure = erasure_consumer(self, foundation=foundation, engine="insights", environment=env)
        self.table.grant_read_write_data(self.erasure.handler.function)
        self.api = ApiFunction(self, "Api", foundation=foundation, engine="insights", routes=ROUTES, environment=env)
        self.table.grant_read_data(self.api.handler.function)

        run_failures = campaigns.runs.state_machine.metric_failed(period=Duration.minutes(5), statistic="Sum")
        self.run_failed_alarm = cloudwatch.Alarm(
            self,
            "CampaignRunFailedAlarm",
            metric=run_failures,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description="A campaign run (its Step Functions execution) failed, timed out or was aborted",
        )
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=settings.name("operations"),
            default_interval=Duration.hours(3),
        )
        self._channel_widgets()
        self._campaign_widgets(campaigns, broadcast, run_failures)
        self._platform_widgets(foundation)
        # Every dead-letter queue of the app, found at synth (engines added after this one included).
        Aspects.of(Stack.of(self).nested_stack_parent or Stack.of(self)).add(
            AlarmOnEveryDeadLetterQueue(on_found=self._dead_letter_widgets)
        )

    @staticmethod
    def _metric(name: str, channel: str, statistic: str = "Sum") -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="ecrm",
            metric_name=name,
            dimensions_map={"channel": channel, "service": SERVICE},
            period=Duration.minutes(5),
            statistic=statistic,
            label=f"{name} {channel}",
        )

    def _channel_widgets(self) -> None:
        self.dashboard.add_widgets(cloudwatch.TextWidget(markdown="# Channels", width=WIDTH, height=1))
        self.dashboard.add_widgets(
            *(
                cloudwatch.GraphWidget(
                    title=f"{name} per channel",
                    left=[self._metric(name, channel) for channel in DELIVERY_CHANNELS],
                    width=WIDTH // len(CHANNEL_METRICS),
                )
                for name in CHANNEL_METRICS
            )
        )
        rates = []
        for rate, counted in (("bounce", "Bounced"), ("complaint", "Complained")):
            for channel in ("email", "sms"):
                rates.append(
                    cloudwatch.MathExpression(
                        expression=f"IF(sent_{channel} > 0, 100 * {rate}_{channel} / sent_{channel}, 0)",
                        using_metrics={
                            f"sent_{channel}": self._metric("Sent", channel),
                            f"{rate}_{channel}": self._metric(counted, channel),
                        },
                        label=f"{rate} % {channel}",
                        period=Duration.minutes(5),
                    )
                )
        totals = []
        for name in ("Targeted", "Converted", "Failed"):
            per_channel = {f"{name.lower()}_{channel}": self._metric(name, channel) for channel in DELIVERY_CHANNELS}
            totals.append(
                cloudwatch.MathExpression(
                    expression=f"SUM([{', '.join(per_channel)}])",
                    using_metrics=per_channel,
                    label=name,
                    period=Duration.minutes(5),
                )
            )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Bounce and complaint rates (%) of the platform's sends",
                left=rates,
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=2, label="bounce 2%"),
                    cloudwatch.HorizontalAnnotation(value=0.08, label="complaint 0.08%"),
                ],
                width=WIDTH // 2,
            ),
            cloudwatch.GraphWidget(
                title="Targeted, converted and failed (all channels)", left=totals, width=WIDTH // 2
            ),
        )

    def _campaign_widgets(
        self, campaigns: CampaignsEngine, broadcast: BroadcastEngine, run_failures: cloudwatch.IMetric
    ) -> None:
        machine = campaigns.runs.state_machine
        deliverability = [
            alarm
            for alarm in (broadcast.node.try_find_child(name) for name in BROADCAST_RATE_ALARMS)
            if isinstance(alarm, cloudwatch.Alarm)
        ]
        self.dashboard.add_widgets(cloudwatch.TextWidget(markdown="# Campaigns", width=WIDTH, height=1))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Campaign runs",
                left=[
                    machine.metric_started(period=Duration.minutes(5), statistic="Sum", label="started"),
                    machine.metric_succeeded(period=Duration.minutes(5), statistic="Sum", label="succeeded"),
                    run_failures,
                ],
                width=WIDTH // 2,
            ),
            cloudwatch.AlarmStatusWidget(
                title="Runs and deliverability (broadcast's bounce 2% and complaint 0.08% alarms)",
                alarms=[self.run_failed_alarm, *deliverability],
                width=WIDTH // 2,
            ),
        )
        self.dashboard.add_widgets(*campaigns.outcome_widgets(WIDTH))  # per campaign and variant

    def _platform_widgets(self, foundation: Foundation) -> None:
        self.dashboard.add_widgets(cloudwatch.TextWidget(markdown="# Platform", width=WIDTH, height=1))
        api = foundation.api
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API errors",
                left=[
                    api.metric_server_error(period=Duration.minutes(5), statistic="Sum", label="5xx"),
                    api.metric_client_error(period=Duration.minutes(5), statistic="Sum", label="4xx"),
                ],
                width=WIDTH // 2,
            ),
            cloudwatch.GraphWidget(
                title="Lambda errors and throttles (every function of the region)",
                left=[
                    cloudwatch.Metric(
                        namespace="AWS/Lambda", metric_name=name, period=Duration.minutes(5), statistic="Sum"
                    )
                    for name in ("Errors", "Throttles")
                ],
                width=WIDTH // 2,
            ),
        )

    def _dead_letter_widgets(self, found: list[DeadLetterQueue]) -> None:
        self.dashboard.add_widgets(cloudwatch.TextWidget(markdown="# Dead-letter queues", width=WIDTH, height=1))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Dead-letter queue depths (each should stay at 0)",
                left=[
                    cloudwatch.Metric(
                        namespace="AWS/SQS",
                        metric_name="ApproximateNumberOfMessagesVisible",
                        dimensions_map={"QueueName": dlq.queue.attr_queue_name},
                        period=Duration.minutes(1),
                        statistic="Maximum",
                        label=dlq.queue.node.path.split("/", 2)[-1].removesuffix("/Resource"),
                    )
                    for dlq in found
                ],
                legend_position=cloudwatch.LegendPosition.RIGHT,
                width=WIDTH // 2,
                height=8,
            ),
            cloudwatch.AlarmStatusWidget(
                title="Dead-letter queue alarms", alarms=[dlq.alarm for dlq in found], width=WIDTH // 2, height=8
            ),
        )
