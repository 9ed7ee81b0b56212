"""The `Lake` construct: bucket, catalog and Firehose streams, cdk-nag clean and cfn-lint clean.

A small app of its own (the platform stack does not hold the lake yet) with cdk.json's context and
the AWS Solutions checks, one table with the collected events' columns and a producer role.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks
from ecrm.core.lake import COLLECTED_EVENT_COLUMNS

from infra.app import cdk_json_context
from infra.constructs.lake import PARQUET_SERDE, Lake, LakeStream
from infra.settings import DeploymentSettings
from tests.infra.conftest import REPO_ROOT, read_validation_report, unacknowledged_findings

pytestmark = pytest.mark.xdist_group("infra")

STACK = "LakeTest"
CFN_LINT = Path(sys.executable).with_name("cfn-lint")


@dataclass(frozen=True)
class SynthesizedLake:
    outdir: Path
    template: Template
    body: dict[str, Any]
    stream: LakeStream
    report: dict[str, Any] | None

    def one(self, resource_type: str) -> tuple[str, dict[str, Any]]:
        found = self.template.find_resources(resource_type)
        assert len(found) == 1, f"{len(found)} {resource_type}"
        ((logical_id, resource),) = found.items()
        return logical_id, resource["Properties"]

    def logical_id(self, resource_type: str, prefix: str) -> str:
        (found,) = [k for k in self.template.find_resources(resource_type) if k.startswith(prefix)]
        return found


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedLake:
    outdir = tmp_path_factory.mktemp("lake.cdk.out")
    app = cdk.App(outdir=str(outdir), context=cdk_json_context())
    stack = cdk.Stack(app, STACK)
    lake = Lake(stack, "Lake", settings=DeploymentSettings(prefix="ecrm-dev"))
    stream = lake.add_table(
        "CollectedEvents",
        table="collected_events",
        columns=COLLECTED_EVENT_COLUMNS,
        description="Every collected event, one flat record each",
    )
    producer = iam.Role(stack, "Producer", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    stream.grant_put(producer)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    try:
        app.synth()
    except RuntimeError as exc:
        findings = "\n".join(unacknowledged_findings(read_validation_report(outdir)))
        pytest.fail(f"cdk synth failed: {exc}\n{findings}", pytrace=False)
    body = json.loads((outdir / f"{STACK}.template.json").read_text())
    return SynthesizedLake(outdir, Template.from_json(body), body, stream, read_validation_report(outdir))


def test_cdk_nag_finds_nothing_unacknowledged(lake: SynthesizedLake) -> None:
    assert unacknowledged_findings(lake.report) == []
    acknowledged = {
        v["ruleName"] for plugin in (lake.report or {}).get("pluginReports", []) for v in plugin["suppressedViolations"]
    }
    bucket = lake.logical_id("AWS::S3::Bucket", "LakeBucket")
    # Only the object ARNs of the table's own prefixes are wildcards
    assert acknowledged == {
        f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/collected_events/*]",
        f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/errors/collected_events/*]",
    }


def test_cfn_lint_is_clean(lake: SynthesizedLake) -> None:
    assert CFN_LINT.exists(), f"cfn-lint is not installed next to {sys.executable}"
    result = subprocess.run(
        [
            str(CFN_LINT),
            "--config-file",
            str(REPO_ROOT / ".cfnlintrc.yaml"),
            "--format",
            "parseable",
            "--",
            str(lake.outdir / f"{STACK}.template.json"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.stdout.strip() == "", f"cfn-lint matches:\n{result.stdout}"
    assert result.returncode == 0, result.stderr


def test_the_lake_bucket_is_private_encrypted_logged_and_ages_to_infrequent_access(lake: SynthesizedLake) -> None:
    logs_bucket = lake.logical_id("AWS::S3::Bucket", "LakeAccessLogs")
    lake.template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "LoggingConfiguration": {"DestinationBucketName": {"Ref": logs_bucket}, "LogFilePrefix": "lake/"},
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Status": "Enabled",
                                "Transitions": [{"StorageClass": "STANDARD_IA", "TransitionInDays": 90}],
                            }
                        )
                    ]
                )
            },
        },
    )
    # Both buckets refuse plain HTTP
    policies = lake.template.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        )


def test_the_glue_database_and_table_describe_parquet_partitioned_by_day(lake: SynthesizedLake) -> None:
    database, database_props = lake.one("AWS::Glue::Database")
    assert database_props["DatabaseInput"]["Name"] == "ecrm_dev_lake"
    _, table = lake.one("AWS::Glue::Table")
    bucket = lake.logical_id("AWS::S3::Bucket", "LakeBucket")
    assert table["DatabaseName"] == {"Ref": database}
    assert table["CatalogId"] == {"Ref": "AWS::AccountId"}
    table_input = table["TableInput"]
    assert table_input["Name"] == "collected_events"
    assert table_input["TableType"] == "EXTERNAL_TABLE"
    assert table_input["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    storage = table_input["StorageDescriptor"]
    assert [(c["Name"], c["Type"]) for c in storage["Columns"]] == COLLECTED_EVENT_COLUMNS
    assert storage["SerdeInfo"]["SerializationLibrary"] == PARQUET_SERDE
    assert storage["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    assert storage["OutputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
    assert storage["Location"] == {"Fn::Join": ["", ["s3://", {"Ref": bucket}, "/collected_events/"]]}
    parameters = table_input["Parameters"]
    assert parameters["classification"] == "parquet"
    # Athena projects the day partitions itself: no crawler
    assert {k: v for k, v in parameters.items() if k.startswith("projection.")} == {
        "projection.enabled": "true",
        "projection.dt.type": "date",
        "projection.dt.format": "yyyy-MM-dd",
        "projection.dt.range": "2025-01-01,NOW",
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": "DAYS",
    }
    assert parameters["storage.location.template"] == {
        "Fn::Join": ["", ["s3://", {"Ref": bucket}, "/collected_events/dt=${dt}/"]]
    }
    assert lake.template.find_resources("AWS::Glue::Crawler") == {}


def test_the_stream_converts_json_to_parquet_with_the_table_schema(lake: SynthesizedLake) -> None:
    _, stream = lake.one("AWS::KinesisFirehose::DeliveryStream")
    database, _ = lake.one("AWS::Glue::Database")
    table, _ = lake.one("AWS::Glue::Table")
    role = lake.logical_id("AWS::IAM::Role", "LakeCollectedEventsDeliveryRole")
    bucket = lake.logical_id("AWS::S3::Bucket", "LakeBucket")
    log_group, _ = lake.one("AWS::Logs::LogGroup")
    assert stream["DeliveryStreamName"] == "ecrm-dev-lake-collected-events"
    assert stream["DeliveryStreamType"] == "DirectPut"
    assert stream["DeliveryStreamEncryptionConfigurationInput"] == {"KeyType": "AWS_OWNED_CMK"}
    destination = stream["ExtendedS3DestinationConfiguration"]
    assert destination["BucketARN"] == {"Fn::GetAtt": [bucket, "Arn"]}
    assert destination["RoleARN"] == {"Fn::GetAtt": [role, "Arn"]}
    assert destination["Prefix"] == "collected_events/dt=!{timestamp:yyyy-MM-dd}/"
    assert destination["ErrorOutputPrefix"] == (
        "errors/collected_events/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/"
    )
    assert destination["BufferingHints"] == {"SizeInMBs": 128, "IntervalInSeconds": 300}
    assert destination["CompressionFormat"] == "UNCOMPRESSED"
    assert destination["CloudWatchLoggingOptions"]["Enabled"] is True
    assert destination["CloudWatchLoggingOptions"]["LogGroupName"] == {"Ref": log_group}
    conversion = destination["DataFormatConversionConfiguration"]
    assert conversion["Enabled"] is True
    assert "OpenXJsonSerDe" in conversion["InputFormatConfiguration"]["Deserializer"]
    assert "ParquetSerDe" in conversion["OutputFormatConfiguration"]["Serializer"]
    assert conversion["SchemaConfiguration"] == {
        "CatalogId": {"Ref": "AWS::AccountId"},
        "DatabaseName": {"Ref": database},
        "TableName": {"Ref": table},
        "Region": {"Ref": "AWS::Region"},
        "RoleARN": {"Fn::GetAtt": [role, "Arn"]},
        "VersionId": "LATEST",
    }
    # The role's policy exists before the stream: Firehose checks its permissions at creation
    policy = lake.logical_id("AWS::IAM::Policy", "LakeCollectedEventsDeliveryPolicy")
    assert (
        policy in lake.body["Resources"][lake.logical_id("AWS::KinesisFirehose::DeliveryStream", "Lake")]["DependsOn"]
    )


def test_the_delivery_role_may_only_write_its_table(lake: SynthesizedLake) -> None:
    role = lake.logical_id("AWS::IAM::Role", "LakeCollectedEventsDeliveryRole")
    bucket = lake.logical_id("AWS::S3::Bucket", "LakeBucket")
    (trust,) = lake.body["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "AWS::AccountId"}}}

    policies = [
        p["Properties"]
        for p in lake.template.find_resources("AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": role}]
    ]
    (policy,) = policies
    statements = {
        tuple(s["Action"]) if isinstance(s["Action"], list) else (s["Action"],): s["Resource"]
        for s in policy["PolicyDocument"]["Statement"]
    }
    assert statements[("s3:AbortMultipartUpload", "s3:PutObject")] == [
        {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/collected_events/*"]]},
        {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/errors/collected_events/*"]]},
    ]
    assert statements[("s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads")] == {
        "Fn::GetAtt": [bucket, "Arn"]
    }
    glue = statements[("glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions")]
    assert [part["Fn::Join"][1][-1] for part in glue] == [
        ":catalog",
        ":database/ecrm_dev_lake",
        ":table/ecrm_dev_lake/collected_events",
    ]
    assert ("logs:PutLogEvents",) in statements
    actions = [a for key in statements for a in key]
    assert not [a for a in actions if "*" in a]


def test_grant_put_lets_a_producer_put_records_into_the_stream_only(lake: SynthesizedLake) -> None:
    stream = lake.logical_id("AWS::KinesisFirehose::DeliveryStream", "Lake")
    producer_policies = [
        p["Properties"]
        for p in lake.template.find_resources("AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": lake.logical_id("AWS::IAM::Role", "Producer")}]
    ]
    (policy,) = producer_policies
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Action": ["firehose:PutRecord", "firehose:PutRecordBatch"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [stream, "Arn"]},
        }
    ]
    assert lake.stream.table_name == "collected_events"
    assert cdk.Token.is_unresolved(lake.stream.stream_name)


@pytest.mark.parametrize(
    ("table", "columns", "interval", "error"),
    [
        ("CollectedEvents", [("a", "string")], 300, "lower_snake_case"),
        ("collected-events", [("a", "string")], 300, "lower_snake_case"),
        ("events", [], 300, "give columns"),
        ("events", [("dt", "string")], 300, "partition key"),
        ("events", [("a", "string")], 30, "60-300"),
        ("events", [("a", "string")], 600, "60-300"),
    ],
)
def test_a_table_the_lake_cannot_hold_is_refused(
    table: str, columns: list[tuple[str, str]], interval: int, error: str
) -> None:
    lake = Lake(cdk.Stack(cdk.App(context=cdk_json_context()), "Refused"), "Lake", settings=DeploymentSettings())
    with pytest.raises(ValueError, match=error):
        lake.add_table(
            "T", table=table, columns=columns, description="", buffer_interval=cdk.Duration.seconds(interval)
        )


def test_a_table_is_defined_once() -> None:
    lake = Lake(cdk.Stack(cdk.App(context=cdk_json_context()), "Twice"), "Lake", settings=DeploymentSettings())
    lake.add_table("A", table="events", columns=[("a", "string")], description="")
    with pytest.raises(ValueError, match="already defined"):
        lake.add_table("B", table="events", columns=[("a", "string")], description="")
