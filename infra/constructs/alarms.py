"""Who hears an alarm: one SNS topic per stage that every CloudWatch alarm of the stack notifies.

`AlarmTopic` is the topic (encrypted with its own KMS key, which CloudWatch may use to publish; SSL
enforced) with an email subscription when the deployer names an address (`ecrm:alarmEmail`).
`NotifyOnAlarms` is an aspect on the root stack: every `cloudwatch.Alarm` under it, in the root or in an
engine's nested stack, today's and any added later, sends its ALARM and OK transitions to the topic (OK
too, so whoever was paged learns that it cleared). Anything else may subscribe to the topic (chat, a pager,
a ticketing webhook) with `aws sns subscribe`: the topic's ARN is the stack's `AlarmTopicArn` output.
"""

from __future__ import annotations

import jsii
from aws_cdk import IAspect
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct, IConstruct

from infra.settings import DeploymentSettings


class AlarmTopic(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: DeploymentSettings) -> None:
        super().__init__(scope, construct_id)
        # Alarms cannot publish to a topic under the AWS managed SNS key; a key of our own lets CloudWatch in.
        self.key = kms.Key(
            self,
            "Key",
            enable_key_rotation=True,
            description="eCRM alarm notifications (SNS topic encryption)",
            removal_policy=settings.removal_policy,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
            )
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name=f"eCRM alarms ({settings.resource_prefix})",
            master_key=self.key,
            enforce_ssl=True,
        )
        if settings.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))


@jsii.implements(IAspect)
class NotifyOnAlarms:
    """Every CloudWatch alarm in the scope notifies `topic` when it fires and when it clears."""

    def __init__(self, topic: sns.ITopic) -> None:
        self.action = cloudwatch_actions.SnsAction(topic)
        self.seen: set[str] = set()

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, cloudwatch.Alarm) and node.node.path not in self.seen:
            self.seen.add(node.node.path)
            node.add_alarm_action(self.action)
            node.add_ok_action(self.action)
