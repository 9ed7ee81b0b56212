"""The local cloud's S3: buckets from the template, and S3 -> EventBridge events shaped as in AWS.

A moto server on 127.0.0.1 (as the local cloud runs it) and a template written as CDK synthesizes
an import bucket: KMS encryption, versioning, public access blocked, lifecycle, CORS for presigned
PUT uploads, access logs to a second bucket, `enforce_ssl` bucket policies and EventBridge
notifications turned on by the L1 override; a default-bus rule on "Object Created" under
`uploads/` feeds a queue and a state machine.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from infra.local import s3_notifications
from infra.local.cloud import free_port
from infra.local.provision import Provisioned, Provisioner, _bucket_name
from infra.local.runtime import FunctionRuntime
from infra.local.template import ACCOUNT_ID, REGION, Template
from tests.integration.queues import drain

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def _ssl_only(bucket: str) -> dict[str, Any]:
    """The statement `enforce_ssl=True` adds to a bucket policy."""
    arn = {"Fn::GetAtt": [bucket, "Arn"]}
    return {
        "Action": "s3:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Resource": [arn, {"Fn::Join": ["", [arn, "/*"]]}],
    }


def import_template() -> dict[str, Any]:
    """What CDK synthesizes for the import bucket and its wiring (server access logs by bucket policy)."""
    return {
        "Resources": {
            "Key": {"Type": "AWS::KMS::Key", "Properties": {"EnableKeyRotation": True}},
            "AccessLogs": {
                "Type": "AWS::S3::Bucket",
                "Properties": {
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                        ]
                    },
                    "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                    "PublicAccessBlockConfiguration": {
                        "BlockPublicAcls": True,
                        "BlockPublicPolicy": True,
                        "IgnorePublicAcls": True,
                        "RestrictPublicBuckets": True,
                    },
                    "LifecycleConfiguration": {"Rules": [{"ExpirationInDays": 90, "Status": "Enabled"}]},
                },
            },
            "AccessLogsPolicy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {
                    "Bucket": {"Ref": "AccessLogs"},
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            _ssl_only("AccessLogs"),
                            {
                                "Action": "s3:PutObject",
                                "Condition": {
                                    "ArnLike": {"aws:SourceArn": {"Fn::GetAtt": ["ImportBucket", "Arn"]}},
                                    "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                                },
                                "Effect": "Allow",
                                "Principal": {"Service": "logging.s3.amazonaws.com"},
                                "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": ["AccessLogs", "Arn"]}, "/import/*"]]},
                            },
                        ],
                    },
                },
            },
            "ImportBucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            {
                                "BucketKeyEnabled": True,
                                "ServerSideEncryptionByDefault": {
                                    "KMSMasterKeyID": {"Fn::GetAtt": ["Key", "Arn"]},
                                    "SSEAlgorithm": "aws:kms",
                                },
                            }
                        ]
                    },
                    "CorsConfiguration": {
                        "CorsRules": [
                            {
                                "AllowedHeaders": ["*"],
                                "AllowedMethods": ["PUT"],
                                "AllowedOrigins": ["https://console.example.com"],
                                "ExposedHeaders": ["ETag"],
                                "MaxAge": 3000,
                            }
                        ]
                    },
                    "LifecycleConfiguration": {
                        "Rules": [
                            {
                                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                                "ExpirationInDays": 7,
                                "NoncurrentVersionExpiration": {"NoncurrentDays": 3},
                                "Prefix": "uploads/",
                                "Status": "Enabled",
                            }
                        ]
                    },
                    "LoggingConfiguration": {
                        "DestinationBucketName": {"Ref": "AccessLogs"},
                        "LogFilePrefix": "import/",
                    },
                    "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}},
                    "PublicAccessBlockConfiguration": {
                        "BlockPublicAcls": True,
                        "BlockPublicPolicy": True,
                        "IgnorePublicAcls": True,
                        "RestrictPublicBuckets": True,
                    },
                    "VersioningConfiguration": {"Status": "Enabled"},
                },
            },
            "ImportBucketPolicy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {
                    "Bucket": {"Ref": "ImportBucket"},
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": [_ssl_only("ImportBucket")]},
                },
            },
            "ImportQueue": {"Type": "AWS::SQS::Queue", "Properties": {"SqsManagedSseEnabled": True}},
            "ImportRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Action": "sts:AssumeRole",
                                "Effect": "Allow",
                                "Principal": {"Service": "states.amazonaws.com"},
                            }
                        ],
                    }
                },
            },
            "ImportWorkflow": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "DefinitionString": json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
                    "RoleArn": {"Fn::GetAtt": ["ImportRole", "Arn"]},
                },
            },
            "Uploaded": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "EventPattern": {
                        "source": ["aws.s3"],
                        "detail-type": ["Object Created"],
                        "detail": {
                            "bucket": {"name": [{"Ref": "ImportBucket"}]},
                            "object": {"key": [{"prefix": "uploads/"}]},
                        },
                    },
                    "State": "ENABLED",
                    "Targets": [
                        {"Arn": {"Fn::GetAtt": ["ImportQueue", "Arn"]}, "Id": "Target0"},
                        {
                            "Arn": {"Ref": "ImportWorkflow"},
                            "Id": "Target1",
                            "RoleArn": {"Fn::GetAtt": ["ImportRole", "Arn"]},
                        },
                    ],
                },
            },
        }
    }


@dataclass
class LocalS3:
    endpoint: str
    provisioned: Provisioned

    def client(self, service: str, **kwargs: Any) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",
            **kwargs,
        )

    @property
    def bucket(self) -> str:
        return str(self.provisioned.physical["ImportBucket"])

    @property
    def queue_url(self) -> str:
        return str(self.provisioned.physical["ImportQueue"])


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    s3_notifications.install()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def local(moto_endpoint: str, tmp_path: Path) -> LocalS3:
    # Given the template provisioned as the local cloud does it (a stack of its own: moto's state is per process)
    path = tmp_path / "template.json"
    path.write_text(json.dumps(import_template()))
    template = Template.load(path, f"S3Test{uuid.uuid4().hex[:8]}")
    local = LocalS3(moto_endpoint, Provisioned())
    local.provisioned = Provisioner(template, local.client, FunctionRuntime(moto_endpoint, REGION, tmp_path)).run()
    return local


def presigned_put(local: LocalS3, key: str, body: bytes) -> None:
    """A browser-style upload: a presigned PUT with the file's content type."""
    s3 = local.client("s3", config=Config(signature_version="s3v4"))
    url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": local.bucket, "Key": key, "ContentType": "text/csv"}, ExpiresIn=300
    )
    # moto would store an empty object for urllib's default application/x-www-form-urlencoded
    request = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": "text/csv"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def test_a_presigned_upload_reaches_the_queue_as_the_event_s3_sends(local: LocalS3) -> None:
    body = b"email,first_name\nada@example.com,Ada\n"

    # When a file is uploaded with a presigned PUT, and another one outside uploads/
    presigned_put(local, "uploads/march 2026.csv", body)
    presigned_put(local, "exports/march.csv", body)

    # Then exactly one "Object Created" event is queued, in the shape S3 gives it in AWS
    messages = drain(local.client("sqs"), local.queue_url)
    assert len(messages) == 1
    event = json.loads(messages[0]["Body"])
    assert set(event) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
    assert UUID.match(event["id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
    assert {k: event[k] for k in ("version", "detail-type", "source", "account", "region", "resources")} == {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT_ID,
        "region": REGION,
        "resources": [f"arn:aws:s3:::{local.bucket}"],
    }
    detail = event["detail"]
    assert set(detail) == {"version", "bucket", "object", "request-id", "requester", "source-ip-address", "reason"}
    assert detail["version"] == "0"
    assert detail["bucket"] == {"name": local.bucket}
    assert detail["reason"] == "PutObject"
    assert detail["requester"] == ACCOUNT_ID
    assert detail["source-ip-address"] == "127.0.0.1"
    assert re.fullmatch(r"[0-9A-Z]{16}", detail["request-id"])
    obj = detail["object"]
    assert set(obj) == {"key", "size", "etag", "version-id", "sequencer"}
    assert obj["key"] == "uploads/march+2026.csv"  # URL-encoded as S3 does: consumers unquote_plus it
    assert obj["size"] == len(body)
    assert obj["etag"] == hashlib.md5(body).hexdigest()  # the ETag of a single-part upload
    assert re.fullmatch(r"[0-9A-F]+", obj["sequencer"])
    head = local.client("s3").head_object(Bucket=local.bucket, Key="uploads/march 2026.csv")
    assert obj["version-id"] == head["VersionId"]


def test_every_upload_is_its_own_event_with_the_api_as_reason(local: LocalS3) -> None:
    s3 = local.client("s3")

    # When objects are created by PutObject (twice on one key), a multipart upload and a copy, and one is tagged
    s3.put_object(Bucket=local.bucket, Key="uploads/a.csv", Body=b"1")
    s3.put_object(Bucket=local.bucket, Key="uploads/a.csv", Body=b"2")
    upload = s3.create_multipart_upload(Bucket=local.bucket, Key="uploads/big.csv")
    part = s3.upload_part(
        Bucket=local.bucket, Key="uploads/big.csv", UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 1024
    )
    s3.complete_multipart_upload(
        Bucket=local.bucket,
        Key="uploads/big.csv",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    s3.copy_object(
        Bucket=local.bucket, Key="uploads/copy.csv", CopySource={"Bucket": local.bucket, "Key": "uploads/a.csv"}
    )
    s3.put_object_tagging(Bucket=local.bucket, Key="uploads/a.csv", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})

    # Then one event per object created, each with its own id and the API that created it
    events = [json.loads(m["Body"]) for m in drain(local.client("sqs"), local.queue_url)]
    reasons = sorted((e["detail"]["object"]["key"], e["detail"]["reason"]) for e in events)
    assert reasons == [
        ("uploads/a.csv", "PutObject"),
        ("uploads/a.csv", "PutObject"),
        ("uploads/big.csv", "CompleteMultipartUpload"),
        ("uploads/copy.csv", "CopyObject"),
    ]
    assert len({e["id"] for e in events}) == len(events)
    writes = [e["detail"]["object"]["sequencer"] for e in events if e["detail"]["object"]["key"] == "uploads/a.csv"]
    assert int(writes[0], 16) < int(writes[1], 16)

    # And the rule's state machine target was started once per event, with the event as input
    sfn = local.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=local.provisioned.physical["ImportWorkflow"])["executions"]
    inputs = [json.loads(sfn.describe_execution(executionArn=x["executionArn"])["input"]) for x in executions]
    assert sorted(i["id"] for i in inputs) == sorted(e["id"] for e in events)


def test_s3_events_go_to_the_default_bus_only(local: LocalS3) -> None:
    # Given a custom bus with a rule that would take any S3 event
    events_client, sqs = local.client("events"), local.client("sqs")
    bus = f"custom-{uuid.uuid4().hex[:8]}"
    events_client.create_event_bus(Name=bus)
    queue_url = sqs.create_queue(QueueName=bus)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events_client.put_rule(Name="any-s3", EventBusName=bus, EventPattern=json.dumps({"source": ["aws.s3"]}))
    events_client.put_targets(Rule="any-s3", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])

    # When an object is uploaded
    local.client("s3").put_object(Bucket=local.bucket, Key="uploads/b.csv", Body=b"b")

    # Then the default bus's rule has it and the custom bus's does not
    assert len(drain(sqs, local.queue_url)) == 1
    assert drain(sqs, queue_url) == []


def test_the_bucket_is_configured_from_the_template(local: LocalS3) -> None:
    s3 = local.client("s3")
    logs_bucket = str(local.provisioned.physical["AccessLogs"])

    # Then the import bucket has the template's configuration
    encryption = s3.get_bucket_encryption(Bucket=local.bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    key_arn = local.client("kms").describe_key(KeyId=local.provisioned.physical["Key"])["KeyMetadata"]["Arn"]
    assert encryption["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}
    assert encryption["BucketKeyEnabled"] is True
    assert s3.get_bucket_versioning(Bucket=local.bucket)["Status"] == "Enabled"
    assert all(s3.get_public_access_block(Bucket=local.bucket)["PublicAccessBlockConfiguration"].values())
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=local.bucket)["Rules"]
    assert rule["Filter"] == {"Prefix": "uploads/"}
    assert rule["Expiration"] == {"Days": 7}
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 3}
    (cors,) = s3.get_bucket_cors(Bucket=local.bucket)["CORSRules"]
    assert cors["AllowedMethods"] == ["PUT"]
    assert cors["ExposeHeaders"] == ["ETag"]
    assert cors["MaxAgeSeconds"] == 3000
    # moto wants the log bucket's policy before the logging configuration: it waited for it
    assert s3.get_bucket_logging(Bucket=local.bucket)["LoggingEnabled"] == {
        "TargetBucket": logs_bucket,
        "TargetPrefix": "import/",
    }
    # And the resolver knows what other resources read of a bucket
    assert local.provisioned.physical["ImportBucket"] == local.bucket

    # And the log bucket's policy is stored without enforce_ssl's deny, which moto would apply to every request
    statements = json.loads(s3.get_bucket_policy(Bucket=logs_bucket)["Policy"])["Statement"]
    assert [s["Principal"] for s in statements] == [{"Service": "logging.s3.amazonaws.com"}]
    s3.put_object(Bucket=local.bucket, Key="exports/readable.csv", Body=b"ok")
    assert s3.get_object(Bucket=local.bucket, Key="exports/readable.csv")["Body"].read() == b"ok"


def test_generated_bucket_names_are_valid_and_stable() -> None:
    assert _bucket_name("EcrmPlatform", "CustomersImportBucketB1C2D3E4") == "ecrmplatform-customersimportbucketb1c2d3e4"
    long = _bucket_name("EcrmPlatform", "CustomersImportAccessLogsBucketForTheImportsOfCustomersA1B2C3D4")
    assert len(long) <= 63
    assert re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]", long)
    assert long == _bucket_name("EcrmPlatform", "CustomersImportAccessLogsBucketForTheImportsOfCustomersA1B2C3D4")


def test_a_bucket_property_the_local_cloud_does_not_apply_fails_provisioning(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # Given a bucket with a website configuration
    path = tmp_path / "template.json"
    path.write_text(
        json.dumps({"Resources": {"Site": {"Type": "AWS::S3::Bucket", "Properties": {"WebsiteConfiguration": {}}}}})
    )
    template = Template.load(path, f"S3Test{uuid.uuid4().hex[:8]}")
    runtime = FunctionRuntime(moto_endpoint, REGION, tmp_path)

    # Then provisioning says what is not applied instead of creating a different bucket
    with pytest.raises(NotImplementedError, match="WebsiteConfiguration"):
        Provisioner(template, LocalS3(moto_endpoint, Provisioned()).client, runtime).run()
