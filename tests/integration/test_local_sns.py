"""The local cloud's SNS: topics, subscriptions and topic policies from the template.

A template written as CDK synthesizes the alarm topic (KMS key, an email subscription in the
topic's `Subscription` list, an SSL-only topic policy) and a queue subscribed by an
`AWS::SNS::Subscription` with raw delivery and a filter policy; a message published to the topic
reaches the queue as SNS delivers it.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.local.cloud import free_port
from infra.local.provision import Provisioned, Provisioner
from infra.local.runtime import FunctionRuntime
from infra.local.template import REGION, Template


def topic_template() -> dict[str, Any]:
    topic = {"Ref": "Topic"}
    return {
        "Resources": {
            "Key": {"Type": "AWS::KMS::Key", "Properties": {"EnableKeyRotation": True}},
            "Topic": {
                "Type": "AWS::SNS::Topic",
                "Properties": {
                    "DisplayName": "eCRM alarms",
                    "KmsMasterKeyId": {"Fn::GetAtt": ["Key", "Arn"]},
                    "Subscription": [{"Protocol": "email", "Endpoint": "oncall@example.com"}],
                },
            },
            "TopicPolicy": {
                "Type": "AWS::SNS::TopicPolicy",
                "Properties": {
                    "Topics": [topic],
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "AllowPublishThroughSSLOnly",
                                "Effect": "Deny",
                                "Principal": "*",
                                "Action": "sns:Publish",
                                "Resource": topic,
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        ],
                    },
                },
            },
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "QueueSubscription": {
                "Type": "AWS::SNS::Subscription",
                "Properties": {
                    "TopicArn": topic,
                    "Protocol": "sqs",
                    "Endpoint": {"Fn::GetAtt": ["Queue", "Arn"]},
                    "RawMessageDelivery": True,
                    "FilterPolicy": {"severity": ["high"]},
                },
            },
        }
    }


@pytest.fixture(scope="module")
def moto_endpoint() -> Any:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_topics_subscriptions_and_policies_come_from_the_template(moto_endpoint: str, tmp_path: Path) -> None:
    # Given the template provisioned as the local cloud does it
    def client(service: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=moto_endpoint,
            region_name=REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    path = tmp_path / "template.json"
    path.write_text(json.dumps(topic_template()))
    template = Template.load(path, f"SnsTest{uuid.uuid4().hex[:8]}")
    provisioned: Provisioned = Provisioner(template, client, FunctionRuntime(moto_endpoint, REGION, tmp_path)).run()
    sns, sqs = client("sns"), client("sqs")
    topic = provisioned.physical["Topic"]

    # Then the topic has its attributes, its policy and both subscriptions
    attributes = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert attributes["DisplayName"] == "eCRM alarms"
    assert attributes["KmsMasterKeyId"].startswith("arn:aws:kms:")
    assert json.loads(attributes["Policy"])["Statement"][0]["Sid"] == "AllowPublishThroughSSLOnly"
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert sorted(s["Protocol"] for s in subscriptions) == ["email", "sqs"]

    # When messages are published, only the one the filter policy accepts reaches the queue, raw
    sns.publish(TopicArn=topic, Message="disk full", MessageAttributes=_severity("high"))
    sns.publish(TopicArn=topic, Message="all good", MessageAttributes=_severity("low"))
    queue = provisioned.physical["Queue"]
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])]
    assert bodies == ["disk full"]


def _severity(value: str) -> dict[str, Any]:
    return {"severity": {"DataType": "String", "StringValue": value}}
