"""Creating every resource of the synthesized template in the moto server.

Resources are created in dependency order with the same properties and wiring as CloudFormation
would; physical names are `<stack>-<logical id>` (CloudFormation adds a random suffix instead).
A resource type moto cannot run is either emulated by the local cloud (`EMULATED`, with who does
it) or deliberately left out (`NOT_EMULATED`, with why). Any other type fails provisioning, so a
new kind of resource cannot slip into the template without a local decision.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from infra.local import athena, firehose
from infra.local.runtime import FunctionRuntime, LocalFunction
from infra.local.template import Resolver, Resource, Template
from infra.settings import REPO_ROOT

EMULATED = {
    "AWS::CloudFormation::Stack": "template: a nested stack's resources are provisioned in its place (Template.load)",
    "AWS::ApiGateway::RestApi": "gateway: the REST API served on 127.0.0.1",
    "AWS::ApiGateway::Resource": "gateway: routes",
    "AWS::ApiGateway::Method": "gateway: routes and their authorization",
    "AWS::ApiGateway::Authorizer": "gateway: ID tokens verified against the local Cognito JWKS",
    "AWS::ApiGateway::GatewayResponse": "gateway: the same problem+json bodies",
    "AWS::ApiGateway::Stage": "gateway: the stage name appears in requestContext",
    "AWS::ApiGateway::RequestValidator": "gateway: bodies are validated by the function itself",
    "AWS::Lambda::EventSourceMapping": "pollers: SQS queues and DynamoDB streams drained into the handler",
    "AWS::Lambda::Permission": "runtime: every local caller may invoke",
    "AWS::Events::Rule(schedule)": "scheduler: a local clock fires the targets",
    "AWS::KinesisFirehose::DeliveryStream(format conversion)": (
        "firehose: JSON records written to S3 as Parquet with the Glue table's schema, on each put (no buffering)"
    ),
    "AWS::Athena::WorkGroup": (
        "athena: moto keeps the work group; its queries run on DuckDB over the lake's Parquet, results as Athena's CSV"
    ),
}

NOT_EMULATED = {
    "AWS::WAFv2::WebACL": "the local API only listens on 127.0.0.1",
    "AWS::WAFv2::WebACLAssociation": "the local API only listens on 127.0.0.1",
    "AWS::ApiGateway::Account": "account-level logging role",
    "AWS::ApiGateway::Deployment": "the local API serves the template's routes directly",
    "AWS::IAM::Policy": "moto does not enforce IAM",
    "AWS::SQS::QueuePolicy": "moto does not enforce resource policies",
    "AWS::Lambda::LayerVersion": "workers import shared/ecrm from the checkout, as the common layer holds it",
    "AWS::Events::Archive": "no replay locally",
    "AWS::CloudWatch::Alarm": "no alarms locally; DLQ depth is visible through SQS",
    "AWS::CloudWatch::Dashboard": "no dashboards locally; `GET /insights/live` reads the same counters",
    "AWS::CDK::Metadata": "CDK bookkeeping",
}


def waits_for_lake_delivery(queue_properties: dict[str, Any]) -> bool:
    """A queue whose delivery delay only waits out Firehose buffering, which the local Firehose does not do.

    Its `DelaySeconds` is left out locally (`infra.constructs.lake.WAITS_FOR_LAKE_DELIVERY_TAG`).
    """
    from infra.constructs.lake import WAITS_FOR_LAKE_DELIVERY, WAITS_FOR_LAKE_DELIVERY_TAG

    tags = {t.get("Key"): t.get("Value") for t in queue_properties.get("Tags") or []}
    return tags.get(WAITS_FOR_LAKE_DELIVERY_TAG) == WAITS_FOR_LAKE_DELIVERY


@dataclass
class Provisioned:
    """What was created, by logical id, for the rest of the local cloud and its tests."""

    physical: dict[str, Any] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    schedules: list[dict[str, Any]] = field(default_factory=list)
    event_source_mappings: list[dict[str, Any]] = field(default_factory=list)


class Provisioner:
    def __init__(self, template: Template, clients: Any, runtime: FunctionRuntime) -> None:
        self.template = template
        self.aws = clients
        self.runtime = runtime
        self.resolver = Resolver(template.stack_name, region=runtime.region)
        self.result = Provisioned()
        # Server access logging waiting for its target bucket's policy: target -> [(bucket, config)].
        self._pending_bucket_logging: dict[str, list[tuple[str, dict[str, Any]]]] = {}

    def name(self, logical_id: str, limit: int = 64) -> str:
        full = f"{self.template.stack_name}-{logical_id}"
        return full if len(full) <= limit else full[: limit - 9] + "-" + str(abs(hash(full)) % 10**8)

    def run(self) -> Provisioned:
        for resource in self.template.creation_order():
            creator = getattr(self, "_" + resource.type.replace("::", "_").lower(), None)
            if creator is not None:
                creator(resource, self.resolver.resolve(resource.properties))
            elif resource.type in EMULATED:
                self.resolver.record(resource.logical_id, f"local-{resource.logical_id}")
            elif resource.type in NOT_EMULATED:
                self.resolver.record(
                    resource.logical_id,
                    f"not-emulated-{resource.logical_id}",
                    Arn=f"arn:aws:local:::{resource.logical_id}",
                )
            else:
                raise NotImplementedError(
                    f"{resource.logical_id} is a {resource.type}: the local cloud does not know it yet "
                    "(emulate it in infra/local/provision.py or list it in NOT_EMULATED with a reason)"
                )
            self.result.types[resource.logical_id] = resource.type
            self.result.physical[resource.logical_id] = self.resolver.refs.get(resource.logical_id)
        return self.result

    # -- security -------------------------------------------------------------------------------
    def _aws_kms_key(self, r: Resource, p: dict[str, Any]) -> None:
        meta = self.aws("kms").create_key(Description=p.get("Description", r.logical_id))["KeyMetadata"]
        if p.get("EnableKeyRotation"):
            self.aws("kms").enable_key_rotation(KeyId=meta["KeyId"])
        self.resolver.record(r.logical_id, meta["KeyId"], Arn=meta["Arn"], KeyId=meta["KeyId"])

    def _aws_kms_alias(self, r: Resource, p: dict[str, Any]) -> None:
        self.aws("kms").create_alias(AliasName=p["AliasName"], TargetKeyId=p["TargetKeyId"])
        self.resolver.record(r.logical_id, p["AliasName"])

    def _aws_iam_role(self, r: Resource, p: dict[str, Any]) -> None:
        name = p.get("RoleName") or self.name(r.logical_id)
        role = self.aws("iam").create_role(
            RoleName=name, Path=p.get("Path", "/"), AssumeRolePolicyDocument=json.dumps(p["AssumeRolePolicyDocument"])
        )
        self.resolver.record(r.logical_id, name, Arn=role["Role"]["Arn"], RoleId=role["Role"]["RoleId"])

    # -- data -----------------------------------------------------------------------------------
    def _aws_dynamodb_table(self, r: Resource, p: dict[str, Any]) -> None:
        name = p.get("TableName") or self.name(r.logical_id, 255)
        args: dict[str, Any] = {
            "TableName": name,
            "KeySchema": p["KeySchema"],
            "AttributeDefinitions": p["AttributeDefinitions"],
            "BillingMode": p.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if p.get("GlobalSecondaryIndexes"):
            args["GlobalSecondaryIndexes"] = p["GlobalSecondaryIndexes"]
        if p.get("StreamSpecification"):
            args["StreamSpecification"] = {"StreamEnabled": True, **p["StreamSpecification"]}
        if p.get("SSESpecification", {}).get("SSEEnabled"):
            sse = p["SSESpecification"]
            args["SSESpecification"] = {
                "Enabled": True,
                "SSEType": sse.get("SSEType", "KMS"),
                **({"KMSMasterKeyId": sse["KMSMasterKeyId"]} if "KMSMasterKeyId" in sse else {}),
            }
        table = self.aws("dynamodb").create_table(**args)["TableDescription"]
        ttl = p.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            self.aws("dynamodb").update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
            )
        self.resolver.record(r.logical_id, name, Arn=table["TableArn"], StreamArn=table.get("LatestStreamArn"))

    def _aws_sqs_queue(self, r: Resource, p: dict[str, Any]) -> None:
        name = p.get("QueueName") or self.name(r.logical_id, 80)
        attributes: dict[str, str] = {}
        for key in (
            "VisibilityTimeout",
            "MessageRetentionPeriod",
            "DelaySeconds",
            "MaximumMessageSize",
            "ReceiveMessageWaitTimeSeconds",
            "SqsManagedSseEnabled",
            "KmsMasterKeyId",
            "FifoQueue",
            "ContentBasedDeduplication",
        ):
            if key in p:
                attributes[key] = str(p[key]).lower() if isinstance(p[key], bool) else str(p[key])
        if waits_for_lake_delivery(p):
            attributes.pop("DelaySeconds", None)  # the local Firehose delivers at once: nothing to wait for
        if "RedrivePolicy" in p:
            attributes["RedrivePolicy"] = json.dumps(p["RedrivePolicy"])
        url = self.aws("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = self.aws("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.resolver.record(r.logical_id, url, Arn=arn, QueueName=name, QueueUrl=url)

    # -- notification -------------------------------------------------------------------------
    def _aws_sns_topic(self, r: Resource, p: dict[str, Any]) -> None:
        name = p.get("TopicName") or self.name(r.logical_id, 256)
        attributes = {
            key: _attribute_text(p[key])
            for key in ("DisplayName", "KmsMasterKeyId", "FifoTopic", "ContentBasedDeduplication", "SignatureVersion")
            if key in p
        }
        arn = self.aws("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
        for subscription in p.get("Subscription") or []:
            self.aws("sns").subscribe(
                TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"]
            )
        self.resolver.record(r.logical_id, arn, TopicArn=arn, TopicName=name)

    def _aws_sns_subscription(self, r: Resource, p: dict[str, Any]) -> None:
        attributes = {
            key: json.dumps(p[key]) if isinstance(p[key], dict) else _attribute_text(p[key])
            for key in ("FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy")
            if key in p
        }
        arn = self.aws("sns").subscribe(
            TopicArn=p["TopicArn"], Protocol=p["Protocol"], Endpoint=p["Endpoint"], Attributes=attributes
        )["SubscriptionArn"]
        self.resolver.record(r.logical_id, arn)

    def _aws_sns_topicpolicy(self, r: Resource, p: dict[str, Any]) -> None:
        for topic in p["Topics"]:
            self.aws("sns").set_topic_attributes(
                TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(p["PolicyDocument"])
            )
        self.resolver.record(r.logical_id, f"local-{r.logical_id}")

    def _aws_logs_loggroup(self, r: Resource, p: dict[str, Any]) -> None:
        name = p.get("LogGroupName") or f"/local/{self.name(r.logical_id, 200)}"
        self.aws("logs").create_log_group(logGroupName=name)
        if p.get("RetentionInDays"):
            self.aws("logs").put_retention_policy(logGroupName=name, retentionInDays=int(p["RetentionInDays"]))
        arn = f"arn:aws:logs:{self.runtime.region}:{self.resolver.pseudo['AWS::AccountId']}:log-group:{name}:*"
        self.resolver.record(r.logical_id, name, Arn=arn)

    def _aws_logs_logstream(self, r: Resource, p: dict[str, Any]) -> None:
        name = p.get("LogStreamName") or self.name(r.logical_id, 512)
        self.aws("logs").create_log_stream(logGroupName=p["LogGroupName"], logStreamName=name)
        self.resolver.record(r.logical_id, name)

    # -- lake -----------------------------------------------------------------------------------
    def _aws_glue_database(self, r: Resource, p: dict[str, Any]) -> None:
        database = dict(p["DatabaseInput"])
        database.setdefault("Name", self.name(r.logical_id, 255).lower().replace("-", "_"))
        self.aws("glue").create_database(CatalogId=p["CatalogId"], DatabaseInput=database)
        self.resolver.record(r.logical_id, database["Name"])

    def _aws_glue_table(self, r: Resource, p: dict[str, Any]) -> None:
        table = dict(p["TableInput"])
        table.setdefault("Name", self.name(r.logical_id, 255).lower().replace("-", "_"))
        args: dict[str, Any] = {"CatalogId": p["CatalogId"], "DatabaseName": p["DatabaseName"], "TableInput": table}
        if "OpenTableFormatInput" in p:
            args["OpenTableFormatInput"] = p["OpenTableFormatInput"]
        self.aws("glue").create_table(**args)
        self.resolver.record(r.logical_id, table["Name"])

    def _aws_kinesisfirehose_deliverystream(self, r: Resource, p: dict[str, Any]) -> None:
        """moto keeps the whole destination; `infra.local.firehose` delivers format conversion from it."""
        name = p.get("DeliveryStreamName") or self.name(r.logical_id)
        client = self.aws("firehose")
        arguments = firehose.delivery_stream_arguments(name, p, client.meta.service_model)
        arn = client.create_delivery_stream(**arguments)["DeliveryStreamARN"]
        self.resolver.record(r.logical_id, name, Arn=arn)

    def _aws_athena_workgroup(self, r: Resource, p: dict[str, Any]) -> None:
        """moto keeps the work group and its configuration; `infra.local.athena` runs its queries."""
        name = p.get("Name") or self.name(r.logical_id, 128)
        client = self.aws("athena")
        client.create_work_group(**athena.work_group_arguments(name, p, client.meta.service_model))
        engine = client.get_work_group(WorkGroup=name)["WorkGroup"]["Configuration"].get("EngineVersion", {})
        self.resolver.record(
            r.logical_id,
            name,
            **{
                "WorkGroupConfiguration.EngineVersion.EffectiveEngineVersion": engine.get(
                    "EffectiveEngineVersion", "Athena engine version 3"
                )
            },
        )

    # -- storage --------------------------------------------------------------------------------
    def _aws_s3_bucket(self, r: Resource, p: dict[str, Any]) -> None:
        unknown = sorted(set(p) - S3_BUCKET_PROPERTIES)
        if unknown:
            raise NotImplementedError(
                f"{r.logical_id}: the local cloud does not apply the bucket properties {unknown} yet "
                "(add them to _aws_s3_bucket in infra/local/provision.py)"
            )
        s3 = self.aws("s3")
        region = self.runtime.region
        name = p.get("BucketName") or _bucket_name(self.template.stack_name, r.logical_id)
        args: dict[str, Any] = {"Bucket": name}
        if region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": region}
        if "AccessControl" in p:  # LogDeliveryWrite -> log-delivery-write
            args["ACL"] = re.sub(r"(?<!^)(?=[A-Z])", "-", p["AccessControl"]).lower()
        if p.get("OwnershipControls", {}).get("Rules"):
            args["ObjectOwnership"] = p["OwnershipControls"]["Rules"][0]["ObjectOwnership"]
        if p.get("ObjectLockEnabled"):
            args["ObjectLockEnabledForBucket"] = True
        s3.create_bucket(**args)
        if "PublicAccessBlockConfiguration" in p:
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=p["PublicAccessBlockConfiguration"])
        if "BucketEncryption" in p:
            rules = [
                {
                    "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                    **({"BucketKeyEnabled": rule["BucketKeyEnabled"]} if "BucketKeyEnabled" in rule else {}),
                }
                for rule in p["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if "VersioningConfiguration" in p:
            s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": p["VersioningConfiguration"]["Status"]}
            )
        if p.get("LifecycleConfiguration", {}).get("Rules"):
            s3.put_bucket_lifecycle_configuration(
                Bucket=name,
                LifecycleConfiguration={
                    "Rules": [_lifecycle_rule(rule) for rule in p["LifecycleConfiguration"]["Rules"]]
                },
            )
        if p.get("CorsConfiguration", {}).get("CorsRules"):
            s3.put_bucket_cors(
                Bucket=name,
                CORSConfiguration={"CORSRules": [_cors_rule(rule) for rule in p["CorsConfiguration"]["CorsRules"]]},
            )
        if "NotificationConfiguration" in p:
            s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration=_notification_configuration(p["NotificationConfiguration"])
            )
        if p.get("Tags"):
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": p["Tags"]})
        if "LoggingConfiguration" in p:
            self._put_bucket_logging(name, p["LoggingConfiguration"])
        self.resolver.record(
            r.logical_id,
            name,
            Arn=f"arn:aws:s3:::{name}",
            DomainName=f"{name}.s3.amazonaws.com",
            RegionalDomainName=f"{name}.s3.{region}.amazonaws.com",
            DualStackDomainName=f"{name}.s3.dualstack.{region}.amazonaws.com",
            WebsiteURL=f"http://{name}.s3-website-{region}.amazonaws.com",
        )

    def _aws_s3_bucketpolicy(self, r: Resource, p: dict[str, Any]) -> None:
        # moto enforces a bucket policy on object requests but evaluates no condition: a conditional
        # Deny (enforce_ssl's `aws:SecureTransport = false` one) would deny every request, TLS or not.
        # Those statements are left out; like IAM, they are not enforced locally.
        document = dict(p["PolicyDocument"])
        statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
        document["Statement"] = [s for s in statements if not (s.get("Effect") == "Deny" and s.get("Condition"))]
        if document["Statement"]:
            self.aws("s3").put_bucket_policy(Bucket=p["Bucket"], Policy=json.dumps(document))
        for source, logging in self._pending_bucket_logging.pop(p["Bucket"], []):
            self._put_bucket_logging(source, logging)
        self.resolver.record(r.logical_id, p["Bucket"])

    def _put_bucket_logging(self, bucket: str, logging: dict[str, Any]) -> None:
        """Server access logging; moto (unlike S3) wants the target's policy first, so it may wait for it.

        No access log is ever written locally: this only makes the configuration readable.
        """
        target = logging.get("DestinationBucketName") or bucket
        enabled = {"TargetBucket": target, "TargetPrefix": logging.get("LogFilePrefix", "")}
        if "TargetObjectKeyFormat" in logging:
            enabled["TargetObjectKeyFormat"] = logging["TargetObjectKeyFormat"]
        try:
            self.aws("s3").put_bucket_logging(Bucket=bucket, BucketLoggingStatus={"LoggingEnabled": enabled})
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "InvalidTargetBucketForLogging":
                raise
            self._pending_bucket_logging.setdefault(target, []).append((bucket, logging))

    # -- events ---------------------------------------------------------------------------------
    def _aws_events_eventbus(self, r: Resource, p: dict[str, Any]) -> None:
        arn = self.aws("events").create_event_bus(Name=p["Name"])["EventBusArn"]
        self.resolver.record(r.logical_id, p["Name"], Arn=arn, Name=p["Name"])

    def _aws_events_rule(self, r: Resource, p: dict[str, Any]) -> None:
        name = p.get("Name") or self.name(r.logical_id)
        bus = p.get("EventBusName", "default")
        args: dict[str, Any] = {
            "Name": name,
            "EventBusName": bus,
            "State": p.get("State", "ENABLED"),
            "Description": p.get("Description", ""),
        }
        if "EventPattern" in p:
            args["EventPattern"] = json.dumps(p["EventPattern"])
        if "ScheduleExpression" in p:
            args["ScheduleExpression"] = p["ScheduleExpression"]
        arn = self.aws("events").put_rule(**args)["RuleArn"]
        targets = [
            {
                k: v
                for k, v in t.items()
                if k
                in {"Id", "Arn", "RoleArn", "Input", "InputPath", "DeadLetterConfig", "RetryPolicy", "SqsParameters"}
            }
            for t in p.get("Targets", [])
        ]
        if targets:
            self.aws("events").put_targets(Rule=name, EventBusName=bus, Targets=targets)
        if "ScheduleExpression" in p:
            self.result.schedules.append(
                {
                    "logical_id": r.logical_id,
                    "name": name,
                    "bus": bus,
                    "expression": p["ScheduleExpression"],
                    "state": args["State"],
                    "targets": targets,
                }
            )
        self.resolver.record(r.logical_id, name, Arn=arn)

    # -- email ----------------------------------------------------------------------------------
    def _aws_ses_configurationset(self, r: Resource, p: dict[str, Any]) -> None:
        """Created through the local SES v2 (`infra.local.ses`), which publishes its events."""
        name = p.get("Name") or self.name(r.logical_id)
        options = {k: p[k] for k in SES_CONFIGURATION_SET_OPTIONS if k in p}
        self.aws("sesv2").create_configuration_set(ConfigurationSetName=name, **options)
        self.resolver.record(r.logical_id, name)

    def _aws_ses_configurationseteventdestination(self, r: Resource, p: dict[str, Any]) -> None:
        destination = ses_event_destination(p["EventDestination"])
        name = destination.pop("Name", None) or self.name(r.logical_id)
        self.aws("sesv2").create_configuration_set_event_destination(
            ConfigurationSetName=p["ConfigurationSetName"], EventDestinationName=name, EventDestination=destination
        )
        self.resolver.record(r.logical_id, f"{p['ConfigurationSetName']}|{name}", Id=name)

    def _aws_smsvoice_configurationset(self, r: Resource, p: dict[str, Any]) -> None:
        """End User Messaging's configuration set and its event destinations, in the local emulation."""
        client = self.aws("pinpoint-sms-voice-v2")
        name = p.get("ConfigurationSetName") or self.name(r.logical_id)
        created = client.create_configuration_set(ConfigurationSetName=name)
        for destination in p.get("EventDestinations") or []:
            client.create_event_destination(
                ConfigurationSetName=name,
                EventDestinationName=destination["EventDestinationName"],
                MatchingEventTypes=destination["MatchingEventTypes"],
                **{k: destination[k] for k in ("SnsDestination", "CloudWatchLogsDestination") if k in destination},
            )
        self.resolver.record(r.logical_id, name, Arn=created["ConfigurationSetArn"])

    def _aws_ses_emailidentity(self, r: Resource, p: dict[str, Any]) -> None:
        """Verified at once, as moto does (no DNS locally)."""
        args: dict[str, Any] = {"EmailIdentity": p["EmailIdentity"]}
        set_name = (p.get("ConfigurationSetAttributes") or {}).get("ConfigurationSetName")
        if set_name:
            args["ConfigurationSetName"] = set_name
        self.aws("sesv2").create_email_identity(**args)
        self.resolver.record(r.logical_id, p["EmailIdentity"])

    def _aws_ses_template(self, r: Resource, p: dict[str, Any]) -> None:
        template = p.get("Template") or {}
        name = template.get("TemplateName") or self.name(r.logical_id)
        content = {
            api: template[cfn]
            for cfn, api in (("SubjectPart", "Subject"), ("TextPart", "Text"), ("HtmlPart", "Html"))
            if cfn in template
        }
        self.aws("sesv2").create_email_template(TemplateName=name, TemplateContent=content)
        self.resolver.record(r.logical_id, name, Id=name)

    # -- EventBridge Scheduler: moto keeps the schedules, `infra.local.eventbridge_scheduler` fires them
    def _aws_scheduler_schedulegroup(self, r: Resource, p: dict[str, Any]) -> None:
        name = p.get("Name") or self.name(r.logical_id)
        arn = self.aws("scheduler").create_schedule_group(Name=name)["ScheduleGroupArn"]
        self.resolver.record(r.logical_id, name, Arn=arn)

    def _aws_scheduler_schedule(self, r: Resource, p: dict[str, Any]) -> None:
        name = p.get("Name") or self.name(r.logical_id)
        args: dict[str, Any] = {
            "Name": name,
            "ScheduleExpression": p["ScheduleExpression"],
            "FlexibleTimeWindow": p["FlexibleTimeWindow"],
            "Target": p["Target"],
        }
        for key in (
            "GroupName",
            "Description",
            "ScheduleExpressionTimezone",
            "StartDate",
            "EndDate",
            "State",
            "KmsKeyArn",
            "ActionAfterCompletion",
        ):
            if key in p:
                args[key] = p[key]
        arn = self.aws("scheduler").create_schedule(**args)["ScheduleArn"]
        self.resolver.record(r.logical_id, name, Arn=arn)

    # -- compute --------------------------------------------------------------------------------
    def _aws_lambda_function(self, r: Resource, p: dict[str, Any]) -> None:
        source = r.metadata.get("ecrm:source")
        module = r.metadata.get("ecrm:module")
        if not source or not module:
            raise NotImplementedError(
                f"{r.logical_id} has no ecrm:source/ecrm:module metadata: only EngineFunction functions run locally"
            )
        name = p.get("FunctionName") or self.name(r.logical_id)
        environment = {k: str(v) for k, v in p.get("Environment", {}).get("Variables", {}).items()}
        created = self.aws("lambda").create_function(
            FunctionName=name,
            Runtime=p["Runtime"],
            Role=p["Role"],
            Handler=p["Handler"],
            Code={"ZipFile": _placeholder_zip(source)},
            Timeout=int(p.get("Timeout", 3)),
            MemorySize=int(p.get("MemorySize", 128)),
            Environment={"Variables": environment},
            Architectures=p.get("Architectures", ["x86_64"]),
            Description=p.get("Description", ""),
        )
        self.runtime.register(
            LocalFunction(
                logical_id=r.logical_id,
                name=name,
                arn=created["FunctionArn"],
                code_dir=REPO_ROOT / source,
                module=module,
                environment=environment,
                timeout_s=int(p.get("Timeout", 3)),
                memory_mb=int(p.get("MemorySize", 128)),
            )
        )
        self.resolver.record(r.logical_id, name, Arn=created["FunctionArn"])

    def _aws_lambda_eventsourcemapping(self, r: Resource, p: dict[str, Any]) -> None:
        self.result.event_source_mappings.append(
            {
                "logical_id": r.logical_id,
                "function": p["FunctionName"],
                "source_arn": p["EventSourceArn"],
                "batch_size": int(p.get("BatchSize", 10)),
                "report_batch_item_failures": "ReportBatchItemFailures" in p.get("FunctionResponseTypes", []),
                "enabled": p.get("Enabled", True),
                # stream sources (DynamoDB): where to start, which records, how failures end
                "starting_position": p.get("StartingPosition"),
                "filters": [json.loads(f["Pattern"]) for f in (p.get("FilterCriteria") or {}).get("Filters", [])],
                "bisect_on_error": bool(p.get("BisectBatchOnFunctionError", False)),
                "maximum_retry_attempts": int(p.get("MaximumRetryAttempts", -1)),
                "on_failure": ((p.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination"),
                "tumbling_window_seconds": int(p.get("TumblingWindowInSeconds", 0)),
            }
        )
        self.resolver.record(r.logical_id, f"local-esm-{r.logical_id}")

    def _aws_stepfunctions_statemachine(self, r: Resource, p: dict[str, Any]) -> None:
        name = p.get("StateMachineName") or self.name(r.logical_id, 80)
        definition = p.get("DefinitionString") or json.dumps(p["Definition"])
        arn = self.aws("stepfunctions").create_state_machine(
            name=name, definition=definition, roleArn=p["RoleArn"], type=p.get("StateMachineType", "STANDARD")
        )["stateMachineArn"]
        self.resolver.record(r.logical_id, arn, Arn=arn, Name=name)

    # -- identity -------------------------------------------------------------------------------
    def _aws_cognito_userpool(self, r: Resource, p: dict[str, Any]) -> None:
        args = {
            k: p[k]
            for k in (
                "Policies",
                "Schema",
                "AutoVerifiedAttributes",
                "UsernameAttributes",
                "MfaConfiguration",
                "AccountRecoverySetting",
                "AdminCreateUserConfig",
            )
            if k in p
        }
        pool = self.aws("cognito-idp").create_user_pool(
            PoolName=p.get("UserPoolName", self.name(r.logical_id)), **args
        )["UserPool"]
        provider = f"cognito-idp.{self.runtime.region}.amazonaws.com/{pool['Id']}"
        self.resolver.record(
            r.logical_id,
            pool["Id"],
            Arn=pool["Arn"],
            ProviderName=provider,
            ProviderURL=f"https://{provider}",
            UserPoolId=pool["Id"],
        )

    def _aws_cognito_userpoolclient(self, r: Resource, p: dict[str, Any]) -> None:
        args = {
            k: p[k]
            for k in (
                "ExplicitAuthFlows",
                "ReadAttributes",
                "WriteAttributes",
                "PreventUserExistenceErrors",
                "GenerateSecret",
            )
            if k in p
        }
        client = self.aws("cognito-idp").create_user_pool_client(
            UserPoolId=p["UserPoolId"], ClientName=p.get("ClientName", r.logical_id), **args
        )["UserPoolClient"]
        self.resolver.record(r.logical_id, client["ClientId"], Name=client["ClientName"])

    def _aws_cognito_userpoolgroup(self, r: Resource, p: dict[str, Any]) -> None:
        self.aws("cognito-idp").create_group(
            UserPoolId=p["UserPoolId"],
            GroupName=p["GroupName"],
            Description=p.get("Description", ""),
            Precedence=int(p.get("Precedence", 0)),
        )
        self.resolver.record(r.logical_id, p["GroupName"])


# What `_aws_s3_bucket` applies; any other bucket property fails provisioning until it is decided.
S3_BUCKET_PROPERTIES = {
    "BucketName",
    "AccessControl",
    "OwnershipControls",
    "ObjectLockEnabled",
    "PublicAccessBlockConfiguration",
    "BucketEncryption",
    "VersioningConfiguration",
    "LifecycleConfiguration",
    "CorsConfiguration",
    "NotificationConfiguration",
    "LoggingConfiguration",
    "Tags",
}


SES_CONFIGURATION_SET_OPTIONS = (
    "TrackingOptions",
    "DeliveryOptions",
    "ReputationOptions",
    "SendingOptions",
    "SuppressionOptions",
    "VdmOptions",
)


def ses_event_destination(cfn: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's EventDestination in the SES v2 API's shape.

    CloudFormation names the event types as SES v1 does (`send`, `renderingFailure`) and spells
    `TopicARN` and `DeliveryStreamARN`; SES v2 wants `SEND`, `RENDERING_FAILURE`, `TopicArn`, ...
    """
    out: dict[str, Any] = {
        "Enabled": bool(cfn.get("Enabled", False)),
        "MatchingEventTypes": [re.sub(r"(?<!^)(?=[A-Z])", "_", t).upper() for t in cfn.get("MatchingEventTypes", [])],
    }
    if cfn.get("Name"):
        out["Name"] = cfn["Name"]
    if "EventBridgeDestination" in cfn:
        out["EventBridgeDestination"] = {"EventBusArn": cfn["EventBridgeDestination"]["EventBusArn"]}
    if "SnsDestination" in cfn:
        out["SnsDestination"] = {"TopicArn": cfn["SnsDestination"]["TopicARN"]}
    if "KinesisFirehoseDestination" in cfn:
        firehose_destination = cfn["KinesisFirehoseDestination"]
        out["KinesisFirehoseDestination"] = {
            "DeliveryStreamArn": firehose_destination["DeliveryStreamARN"],
            "IamRoleArn": firehose_destination["IAMRoleARN"],
        }
    if "CloudWatchDestination" in cfn:
        out["CloudWatchDestination"] = cfn["CloudWatchDestination"]
    return out


def _attribute_text(value: Any) -> str:
    """A CloudFormation property as an AWS attribute string: booleans as `true`/`false`."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _bucket_name(stack_name: str, logical_id: str) -> str:
    """`<stack>-<logical id>` in lowercase, as S3 wants; over 63 characters, cut with a stable hash."""
    full = f"{stack_name}-{logical_id}".lower()
    if len(full) <= 63:
        return full
    return full[:54].rstrip("-.") + "-" + hashlib.sha256(full.encode()).hexdigest()[:8]


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the S3 API's shape."""
    out: dict[str, Any] = {"Status": rule["Status"]}
    if "Id" in rule:
        out["ID"] = rule["Id"]
    conditions: dict[str, Any] = {}
    if "Prefix" in rule:
        conditions["Prefix"] = rule["Prefix"]
    if rule.get("TagFilters"):
        conditions["Tags"] = rule["TagFilters"]
    for size in ("ObjectSizeGreaterThan", "ObjectSizeLessThan"):
        if size in rule:
            conditions[size] = int(rule[size])
    if len(conditions) > 1 or ("Tags" in conditions and len(conditions["Tags"]) > 1):
        out["Filter"] = {"And": conditions}
    elif "Tags" in conditions:
        out["Filter"] = {"Tag": conditions["Tags"][0]}
    else:
        out["Filter"] = conditions
    expiration: dict[str, Any] = {}
    if "ExpirationInDays" in rule:
        expiration["Days"] = int(rule["ExpirationInDays"])
    if "ExpirationDate" in rule:
        expiration["Date"] = rule["ExpirationDate"]
    if "ExpiredObjectDeleteMarker" in rule:
        expiration["ExpiredObjectDeleteMarker"] = rule["ExpiredObjectDeleteMarker"]
    if expiration:
        out["Expiration"] = expiration
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        }
    noncurrent = dict(rule.get("NoncurrentVersionExpiration", {}))
    if "NoncurrentVersionExpirationInDays" in rule:
        noncurrent["NoncurrentDays"] = rule["NoncurrentVersionExpirationInDays"]
    if noncurrent:
        out["NoncurrentVersionExpiration"] = {k: int(v) for k, v in noncurrent.items()}
    transitions = list(rule.get("Transitions", []))
    if "Transition" in rule:
        transitions.append(rule["Transition"])
    if transitions:
        out["Transitions"] = [
            {
                "StorageClass": t["StorageClass"],
                **({"Days": int(t["TransitionInDays"])} if "TransitionInDays" in t else {}),
                **({"Date": t["TransitionDate"]} if "TransitionDate" in t else {}),
            }
            for t in transitions
        ]
    noncurrent_transitions = list(rule.get("NoncurrentVersionTransitions", []))
    if "NoncurrentVersionTransition" in rule:
        noncurrent_transitions.append(rule["NoncurrentVersionTransition"])
    if noncurrent_transitions:
        out["NoncurrentVersionTransitions"] = [
            {
                "StorageClass": t["StorageClass"],
                "NoncurrentDays": int(t["TransitionInDays"]),
                **(
                    {"NewerNoncurrentVersions": int(t["NewerNoncurrentVersions"])}
                    if "NewerNoncurrentVersions" in t
                    else {}
                ),
            }
            for t in noncurrent_transitions
        ]
    return out


def _cors_rule(rule: dict[str, Any]) -> dict[str, Any]:
    renames = {
        "Id": "ID",
        "AllowedHeaders": "AllowedHeaders",
        "AllowedMethods": "AllowedMethods",
        "AllowedOrigins": "AllowedOrigins",
        "ExposedHeaders": "ExposeHeaders",
        "MaxAge": "MaxAgeSeconds",
    }
    return {renames[k]: int(v) if k == "MaxAge" else v for k, v in rule.items() if k in renames}


def _notification_configuration(config: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's NotificationConfiguration in the S3 API's shape.

    `EventBridgeConfiguration.EventBridgeEnabled` (an L1 override: CDK's `event_bridge_enabled`
    needs a custom resource) turns on S3 -> EventBridge, delivered the way S3 does it by
    `infra.local.s3_notifications`.
    """
    out: dict[str, Any] = {}
    if config.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        out["EventBridgeConfiguration"] = {}
    for cfn_key, api_key, cfn_arn, api_arn in (
        ("QueueConfigurations", "QueueConfigurations", "Queue", "QueueArn"),
        ("TopicConfigurations", "TopicConfigurations", "Topic", "TopicArn"),
        ("LambdaConfigurations", "LambdaFunctionConfigurations", "Function", "LambdaFunctionArn"),
    ):
        destinations = []
        for destination in config.get(cfn_key, []):
            item: dict[str, Any] = {api_arn: destination[cfn_arn], "Events": [destination["Event"]]}
            rules = destination.get("Filter", {}).get("S3Key", {}).get("Rules")
            if rules:
                item["Filter"] = {"Key": {"FilterRules": rules}}
            destinations.append(item)
        if destinations:
            out[api_key] = destinations
    return out


def _placeholder_zip(source: str) -> bytes:
    """moto stores the code but never runs it: the worker runs the checkout's code instead."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", f"local cloud: code runs from {source} in the checkout\n")
    return buffer.getvalue()
