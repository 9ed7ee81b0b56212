"""The local cloud's SES v2: sends kept as MIME, SES's events on the bus, the simulator, suppression, quota.

A moto server on 127.0.0.1 (as the local cloud runs it) and a template written as CDK synthesizes a
marketing configuration set with an EventBridge destination to the default bus, and a rule on that
bus (`source: aws.ses`, the set's ARN) feeding a queue. Event shapes are checked against the SES
events kept in `events/samples/ses/` (the SES developer guide's examples, in EventBridge's envelope).
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from infra.local import emulated_time, ses, ses_events, ses_mail
from infra.local.cloud import free_port
from infra.local.provision import Provisioned, Provisioner
from infra.local.runtime import FunctionRuntime
from infra.local.template import ACCOUNT_ID, REGION, Template
from tests.integration.queues import drain

SAMPLES = Path(__file__).resolve().parents[2] / "events" / "samples" / "ses"
SENDER = "Example Shop <newsletter@example.com>"
DEFAULT_BUS_ARN = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"
ALL_EVENTS = [
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


def ses_template(matching: list[str]) -> dict[str, Any]:
    """What CDK synthesizes for a configuration set whose events go to the default bus, and a rule reading them."""
    set_arn = {"Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:configuration-set/${Marketing}"}
    return {
        "Resources": {
            "Sender": {"Type": "AWS::SES::EmailIdentity", "Properties": {"EmailIdentity": "example.com"}},
            "Marketing": {
                "Type": "AWS::SES::ConfigurationSet",
                "Properties": {"SendingOptions": {"SendingEnabled": True}},
            },
            "MarketingEvents": {
                "Type": "AWS::SES::ConfigurationSetEventDestination",
                "Properties": {
                    "ConfigurationSetName": {"Ref": "Marketing"},
                    "EventDestination": {
                        "Enabled": True,
                        "MatchingEventTypes": matching,
                        "EventBridgeDestination": {"EventBusArn": {"Fn::Sub": DEFAULT_BUS_ARN}},
                    },
                },
            },
            "Welcome": {
                "Type": "AWS::SES::Template",
                "Properties": {
                    "Template": {
                        "SubjectPart": "Welcome, {{name}}",
                        "TextPart": "Hello {{name}}, your code is {{offer.code}}.",
                        "HtmlPart": '<p>Hello {{name}}</p><a href="https://www.example.com/o/{{offer.code}}">Shop</a>',
                    }
                },
            },
            "EmailEvents": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "EmailEventsRule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "EventPattern": {"source": ["aws.ses"], "resources": [set_arn]},
                    "State": "ENABLED",
                    "Targets": [{"Arn": {"Fn::GetAtt": ["EmailEvents", "Arn"]}, "Id": "Target0"}],
                },
            },
        }
    }


@dataclass
class LocalSes:
    endpoint: str
    provisioned: Provisioned

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,  # type: ignore[call-overload]
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    @property
    def configuration_set(self) -> str:
        return str(self.provisioned.physical["Marketing"])

    @property
    def template(self) -> str:
        return str(self.provisioned.physical["Welcome"])

    def send(self, to: list[str], **extra: Any) -> str:
        content = extra.pop("Content", None) or {
            "Simple": {
                "Subject": {"Data": "Our winter collection is here"},
                "Body": {
                    "Text": {"Data": "See https://www.example.com/winter"},
                    "Html": {"Data": '<a href="https://www.example.com/winter" ses:tags="link_name:winter">Winter</a>'},
                },
            }
        }
        response = self.client("sesv2").send_email(
            FromEmailAddress=SENDER,
            Destination={"ToAddresses": to},
            Content=content,
            ConfigurationSetName=extra.pop("ConfigurationSetName", self.configuration_set),
            **extra,
        )
        return str(response["MessageId"])

    def events(self) -> list[dict[str, Any]]:
        ses_events.flush()  # SES publishes after its call has answered
        return [json.loads(m["Body"]) for m in drain(self.client("sqs"), str(self.provisioned.physical["EmailEvents"]))]


def send_with(client: Any, local: LocalSes) -> None:
    client.send_email(
        FromEmailAddress=SENDER,
        Destination={"ToAddresses": ["customer@example.com"]},
        Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
        ConfigurationSetName=local.configuration_set,
    )


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    ses.install()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def provision(endpoint: str, tmp_path: Path, matching: list[str]) -> LocalSes:
    path = tmp_path / "template.json"
    path.write_text(json.dumps(ses_template(matching)))
    template = Template.load(path, f"SesTest{uuid.uuid4().hex[:8]}")
    local = LocalSes(endpoint, Provisioned())
    local.provisioned = Provisioner(template, local.client, FunctionRuntime(endpoint, REGION, tmp_path)).run()
    return local


@pytest.fixture
def local(moto_endpoint: str, tmp_path: Path) -> Iterator[LocalSes]:
    # Given the template provisioned as the local cloud does it (a stack of its own: moto's state is per process)
    yield provision(moto_endpoint, tmp_path, ALL_EVENTS)
    ses_mail.configure_send_quota(ACCOUNT_ID, REGION, max_24_hour_send=-1, max_send_rate=-1)


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def assert_shaped_like(event: dict[str, Any], reference: dict[str, Any]) -> None:
    """The same keys at every level of the envelope, `detail`, `mail` and the event type's object."""
    assert set(event) == set(reference)
    assert set(event["detail"]) == set(reference["detail"])
    assert set(event["detail"]["mail"]) == set(reference["detail"]["mail"])
    assert set(event["detail"]["mail"]["commonHeaders"]) >= {"from", "to", "messageId", "subject"}
    ses_tags = {k for k in reference["detail"]["mail"]["tags"] if k.startswith("ses:")}
    assert set(event["detail"]["mail"]["tags"]) >= ses_tags
    assert all(isinstance(v, list) for v in event["detail"]["mail"]["tags"].values())
    kind = next(k for k in reference["detail"] if k not in {"eventType", "mail"})
    assert set(event["detail"][kind]) <= set(reference["detail"][kind]) | {"remoteMtaIp"}
    for key in ("version", "source", "account", "region"):
        assert event[key] == reference[key] or key in {"account", "region"}


def body_text(message: Any, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    return str(part.get_content())


def by_type(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        grouped.setdefault(event["detail-type"], []).append(event)
    return grouped


# -- the acceptance ----------------------------------------------------------------------------------
def test_a_raw_email_is_kept_whole_and_parses_with_the_email_package(local: LocalSes) -> None:
    # Given a MIME message with an attachment and the RFC 8058 headers, sent as Raw content
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = "success@simulator.amazonses.com"
    message["Subject"] = "Your invoice"
    message["List-Unsubscribe"] = "<https://www.example.com/u/1>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content("Invoice attached.")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="invoice.pdf")
    response = local.client("sesv2").send_email(
        FromEmailAddress=SENDER,
        Destination={"ToAddresses": ["success@simulator.amazonses.com"]},
        Content={"Raw": {"Data": message.as_bytes()}},
        ConfigurationSetName=local.configuration_set,
    )
    message_id = response["MessageId"]

    # When it is read back
    [kept] = ses.sent_mail(ACCOUNT_ID, REGION, message_id=message_id)
    parsed = email.message_from_bytes(kept.mime, policy=email.policy.default)

    # Then it is the message as given
    assert kept.mime == message.as_bytes()
    assert parsed["Subject"] == "Your invoice"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    [attachment] = list(parsed.iter_attachments())
    assert attachment.get_filename() == "invoice.pdf"
    assert attachment.get_content() == b"%PDF-1.4"


def test_success_is_delivered_and_bounce_bounces_on_the_bus(local: LocalSes) -> None:
    # When the simulator's success and bounce addresses are sent to
    delivered_id = local.send(
        ["success@simulator.amazonses.com"], EmailTags=[{"Name": "campaign_id", "Value": "cmp_1"}]
    )
    bounced_id = local.send(["bounce@simulator.amazonses.com"])

    # Then the rule on the default bus gets SES's events, in SES's shapes
    events = by_type(local.events())
    [delivered] = events["Email Delivered"]
    [bounced] = events["Email Bounced"]
    assert len(events["Email Sent"]) == 2
    assert_shaped_like(delivered, sample("email_delivered"))
    assert_shaped_like(bounced, sample("email_bounced"))
    assert_shaped_like(events["Email Sent"][0], sample("email_sent"))
    assert delivered["source"] == "aws.ses"
    assert delivered["resources"] == [f"arn:aws:ses:{REGION}:{ACCOUNT_ID}:configuration-set/{local.configuration_set}"]
    assert delivered["detail"]["mail"]["messageId"] == delivered_id
    assert delivered["detail"]["delivery"]["recipients"] == ["success@simulator.amazonses.com"]
    assert delivered["detail"]["mail"]["tags"]["campaign_id"] == ["cmp_1"]
    assert delivered["detail"]["mail"]["tags"]["ses:configuration-set"] == [local.configuration_set]
    assert delivered["detail"]["mail"]["commonHeaders"]["subject"] == "Our winter collection is here"
    assert bounced["detail"]["mail"]["messageId"] == bounced_id
    assert bounced["detail"]["bounce"]["bounceType"] == "Permanent"
    assert bounced["detail"]["bounce"]["bounceSubType"] == "General"
    assert bounced["detail"]["bounce"]["bouncedRecipients"][0]["emailAddress"] == "bounce@simulator.amazonses.com"
    # and a simulator address never joins the suppression list
    with pytest.raises(ClientError, match="NotFoundException"):
        local.client("sesv2").get_suppressed_destination(EmailAddress="bounce@simulator.amazonses.com")


def test_an_open_and_a_click_arrive_when_simulated(local: LocalSes) -> None:
    message_id = local.send(["customer@example.com"])
    local.events()

    # When the recipient opens the message and clicks its link
    assert ses_mail.simulate_open(ACCOUNT_ID, REGION, message_id) == 1
    assert ses_mail.simulate_click(ACCOUNT_ID, REGION, message_id) == 1

    # Then Email Opened and Email Clicked arrive, the click with the HTML's link and its ses:tags
    events = by_type(local.events())
    [opened] = events["Email Opened"]
    [clicked] = events["Email Clicked"]
    assert_shaped_like(opened, sample("email_opened"))
    assert_shaped_like(clicked, sample("email_clicked"))
    assert opened["detail"]["mail"]["messageId"] == message_id
    assert clicked["detail"]["click"]["link"] == "https://www.example.com/winter"
    assert clicked["detail"]["click"]["linkTags"] == {"link_name": ["winter"]}


# -- content -----------------------------------------------------------------------------------------
def test_simple_content_becomes_real_mime_with_its_custom_headers(local: LocalSes) -> None:
    response = local.client("sesv2").send_email(
        FromEmailAddress=SENDER,
        Destination={"ToAddresses": ["customer@example.com"], "BccAddresses": ["audit@example.com"]},
        ReplyToAddresses=["care@example.com"],
        ConfigurationSetName=local.configuration_set,
        Content={
            "Simple": {
                "Subject": {"Data": "Bonjour élodie"},
                "Body": {"Text": {"Data": "Texte"}, "Html": {"Data": "<p>HTML</p>"}},
                "Headers": [
                    {"Name": "List-Unsubscribe", "Value": "<https://www.example.com/u/2>"},
                    {"Name": "List-Unsubscribe-Post", "Value": "List-Unsubscribe=One-Click"},
                ],
            }
        },
    )
    message_id = response["MessageId"]

    [kept] = ses.sent_mail(ACCOUNT_ID, REGION, recipient="audit@example.com")
    parsed = email.message_from_bytes(kept.mime, policy=email.policy.default)
    assert kept.message_id == message_id
    assert kept.destination == ["customer@example.com", "audit@example.com"]
    assert parsed["Subject"] == "Bonjour élodie"
    assert parsed["Reply-To"] == "care@example.com"
    assert parsed["Bcc"] is None
    assert parsed["List-Unsubscribe"] == "<https://www.example.com/u/2>"
    assert parsed.get_content_type() == "multipart/alternative"
    assert body_text(parsed, "plain").strip() == "Texte"
    assert body_text(parsed, "html").strip() == "<p>HTML</p>"
    assert ses.sent_mail(ACCOUNT_ID, REGION, configuration_set=local.configuration_set)[-1].message_id == message_id


def test_template_content_is_rendered_and_missing_data_fails_rendering(local: LocalSes) -> None:
    sesv2 = local.client("sesv2")
    data = json.dumps({"name": "Ada", "offer": {"code": "W10"}})
    sent = sesv2.send_email(
        FromEmailAddress=SENDER,
        Destination={"ToAddresses": ["customer@example.com"]},
        Content={"Template": {"TemplateName": local.template, "TemplateData": data}},
        ConfigurationSetName=local.configuration_set,
    )
    [kept] = ses.sent_mail(ACCOUNT_ID, REGION, message_id=sent["MessageId"])
    parsed = email.message_from_bytes(kept.mime, policy=email.policy.default)
    assert parsed["Subject"] == "Welcome, Ada"
    assert "your code is W10" in body_text(parsed, "plain")
    assert ses_mail.simulate_click(ACCOUNT_ID, REGION, sent["MessageId"]) == 1

    # When the data lacks a variable, SES accepts the send and publishes a Rendering Failure
    failed = sesv2.send_email(
        FromEmailAddress=SENDER,
        Destination={"ToAddresses": ["customer@example.com"]},
        Content={"Template": {"TemplateName": local.template, "TemplateData": json.dumps({"name": "Ada"})}},
        ConfigurationSetName=local.configuration_set,
    )
    events = by_type(local.events())
    [failure] = events["Email Rendering Failed"]
    assert failure["detail"]["eventType"] == "Rendering Failure"
    assert failure["detail"]["mail"]["messageId"] == failed["MessageId"]
    assert failure["detail"]["failure"] == {
        "templateName": local.template,
        "errorMessage": "Attribute 'offer.code' is not present in the rendering data.",
    }
    assert [e["detail"]["mail"]["messageId"] for e in events["Email Delivered"]] == [sent["MessageId"]]
    assert sesv2.get_email_template(TemplateName=local.template)["TemplateContent"]["Subject"] == "Welcome, {{name}}"


def test_bulk_email_sends_one_message_per_entry(local: LocalSes) -> None:
    result = local.client("sesv2").send_bulk_email(
        FromEmailAddress=SENDER,
        DefaultContent={"Template": {"TemplateName": local.template, "TemplateData": "{}"}},
        BulkEmailEntries=[
            {
                "Destination": {"ToAddresses": [f"c{i}@example.com"]},
                "ReplacementEmailContent": {
                    "ReplacementTemplate": {
                        "ReplacementTemplateData": json.dumps({"name": f"C{i}", "offer": {"code": str(i)}})
                    }
                },
            }
            for i in range(3)
        ],
        ConfigurationSetName=local.configuration_set,
    )["BulkEmailEntryResults"]
    assert [r["Status"] for r in result] == ["SUCCESS"] * 3
    subjects = [ses.sent_mail(ACCOUNT_ID, REGION, message_id=r["MessageId"])[0].subject for r in result]
    assert subjects == ["Welcome, C0", "Welcome, C1", "Welcome, C2"]


# -- what SES refuses --------------------------------------------------------------------------------
def test_an_unverified_sender_and_an_unknown_configuration_set_are_refused(local: LocalSes) -> None:
    sesv2 = local.client("sesv2")
    simple = {"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}}
    with pytest.raises(ClientError) as refused:
        sesv2.send_email(
            FromEmailAddress="someone@unverified.example.org",
            Destination={"ToAddresses": ["customer@example.com"]},
            Content=simple,
        )
    assert refused.value.response["Error"]["Code"] == "MessageRejected"
    assert "not verified" in refused.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as missing:
        local.send(["customer@example.com"], ConfigurationSetName="no-such-set")
    assert missing.value.response["Error"]["Code"] == "NotFoundException"
    with pytest.raises(ClientError, match="BadRequestException"):
        sesv2.create_configuration_set_event_destination(
            ConfigurationSetName=local.configuration_set,
            EventDestinationName="custom-bus",
            EventDestination={
                "Enabled": True,
                "MatchingEventTypes": ["SEND"],
                "EventBridgeDestination": {"EventBusArn": f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/ecrm"},
            },
        )


def test_only_the_matching_event_types_are_published(moto_endpoint: str, tmp_path: Path) -> None:
    local = provision(moto_endpoint, tmp_path, ["bounce", "complaint"])
    local.send(["success@simulator.amazonses.com", "complaint@simulator.amazonses.com"])
    local.send(["suppressionlist@simulator.amazonses.com"])
    events = by_type(local.events())
    assert sorted(events) == ["Email Bounced", "Email Complaint Received"]
    [complaint] = events["Email Complaint Received"]
    assert_shaped_like(complaint, sample("email_complaint"))
    assert complaint["detail"]["complaint"]["complainedRecipients"] == [
        {"emailAddress": "complaint@simulator.amazonses.com"}
    ]
    assert events["Email Bounced"][0]["detail"]["bounce"]["bounceSubType"] == "Suppressed"
    destinations = local.client("sesv2").get_configuration_set_event_destinations(
        ConfigurationSetName=local.configuration_set
    )["EventDestinations"]
    assert destinations[0]["MatchingEventTypes"] == ["BOUNCE", "COMPLAINT"]


def test_ooto_delivers_and_replies_to_the_sender(local: LocalSes) -> None:
    message_id = local.send(["ooto+label@simulator.amazonses.com"])
    assert [e["detail-type"] for e in local.events()] == ["Email Sent", "Email Delivered"]
    [reply] = ses.sent_mail(ACCOUNT_ID, REGION, recipient=SENDER)[-1:]
    parsed = email.message_from_bytes(reply.mime, policy=email.policy.default)
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert message_id in parsed["In-Reply-To"]


def test_a_virus_is_rejected(local: LocalSes) -> None:
    eicar = base64.b64decode(
        "WDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FSLVNUQU5EQVJELUFOVElWSVJVUy1URVNULUZJTEUhJEgrSCo="
    )
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = SENDER, "customer@example.com", "virus"
    message.set_content(eicar.decode(), cte="7bit")
    local.client("sesv2").send_email(
        Content={"Raw": {"Data": message.as_bytes()}}, ConfigurationSetName=local.configuration_set
    )
    events = local.events()
    assert [e["detail-type"] for e in events] == ["Email Sent", "Email Rejected"]
    assert events[1]["detail"]["reject"] == {"reason": "Bad content"}


# -- suppression and quota ---------------------------------------------------------------------------
def test_a_suppressed_address_bounces_on_the_account_suppression_list(local: LocalSes) -> None:
    sesv2 = local.client("sesv2")
    address = f"gone-{uuid.uuid4().hex[:6]}@example.com"
    sesv2.put_suppressed_destination(EmailAddress=address, Reason="BOUNCE")
    assert sesv2.get_suppressed_destination(EmailAddress=address)["SuppressedDestination"]["Reason"] == "BOUNCE"

    message_id = local.send([address])

    events = by_type(local.events())
    assert "Email Delivered" not in events
    [bounced] = events["Email Bounced"]
    assert bounced["detail"]["bounce"]["bounceSubType"] == "OnAccountSuppressionList"
    assert ses.sent_mail(ACCOUNT_ID, REGION, message_id=message_id)[0].outcome == {address: "Bounce"}
    sesv2.delete_suppressed_destination(EmailAddress=address)
    local.send([address])
    assert "Email Delivered" in by_type(local.events())


def test_bounces_and_complaints_join_the_list_as_the_reasons_say(local: LocalSes) -> None:
    sesv2 = local.client("sesv2")
    assert sesv2.get_account()["SuppressionAttributes"]["SuppressedReasons"] == ["BOUNCE", "COMPLAINT"]
    first, second = (f"{n}-{uuid.uuid4().hex[:6]}@example.com" for n in ("a", "b"))
    try:
        sesv2.put_account_suppression_attributes(SuppressedReasons=["BOUNCE"])
        ses_mail.simulate_complaint(ACCOUNT_ID, REGION, local.send([first]))
        ses_mail.simulate_bounce(ACCOUNT_ID, REGION, local.send([second]))
    finally:
        sesv2.put_account_suppression_attributes(SuppressedReasons=["BOUNCE", "COMPLAINT"])
    listed = {
        d["EmailAddress"]: d["Reason"] for d in sesv2.list_suppressed_destinations()["SuppressedDestinationSummaries"]
    }
    assert first not in listed
    assert listed[second] == "BOUNCE"


def test_the_send_quota_is_honoured_when_configured(local: LocalSes, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the local SES's clock held still (the rate refills with time) and a client that does not retry
    frozen = ses_events.now()
    monkeypatch.setattr(ses_events, "now", lambda: frozen)
    sesv2 = local.client("sesv2")
    once = boto3.client(
        "sesv2",
        endpoint_url=local.endpoint,
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    assert sesv2.get_account()["SendQuota"]["Max24HourSend"] == -1
    ses_mail.configure_send_quota(ACCOUNT_ID, REGION, max_24_hour_send=1000, max_send_rate=1)
    local.send(["customer@example.com"])
    with pytest.raises(ClientError) as throttled:
        send_with(once, local)
    assert throttled.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert throttled.value.response["Error"]["Message"] == "Maximum sending rate exceeded."
    assert sesv2.get_account()["SendQuota"]["SentLast24Hours"] >= 1

    ses_mail.configure_send_quota(ACCOUNT_ID, REGION, max_24_hour_send=1, max_send_rate=-1)
    with pytest.raises(ClientError) as daily:
        send_with(once, local)
    assert daily.value.response["Error"]["Code"] == "LimitExceededException"
    assert daily.value.response["Error"]["Message"] == "Daily message quota exceeded."


def test_the_daily_quota_follows_the_local_clock(local: LocalSes) -> None:
    from datetime import UTC, datetime, timedelta

    from infra.local.clock import LocalClock

    # Given the local SES on the local cloud's clock, and one message a day allowed
    clock = LocalClock()
    emulated_time.use_clock(clock.now)
    try:
        once = boto3.client(
            "sesv2",
            endpoint_url=local.endpoint,
            region_name=REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )
        ses_mail.configure_send_quota(ACCOUNT_ID, REGION, max_24_hour_send=1, max_send_rate=-1)
        clock.advance(timedelta(days=1, minutes=1))  # the other tests' sends are yesterday's now
        send_with(once, local)
        with pytest.raises(ClientError) as daily:
            send_with(once, local)
        assert daily.value.response["Error"]["Code"] == "LimitExceededException"

        # When the clock moves a day on, the day's quota is free again, and the send is stamped with local time
        clock.advance(timedelta(days=1, minutes=1))
        send_with(once, local)
        latest = ses.sent_mail(ACCOUNT_ID, REGION)[-1]
        assert abs(latest.sent_at - clock.now()) < timedelta(minutes=1)
        assert latest.sent_at > datetime.now(UTC) + timedelta(hours=47)
    finally:
        emulated_time.use_clock(None)
        ses_mail.configure_send_quota(ACCOUNT_ID, REGION, max_24_hour_send=-1, max_send_rate=-1)


# -- `ecrm local mail` and its control route -----------------------------------------------------
def test_ecrm_local_mail_lists_shows_opens_and_clicks(local: LocalSes, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner
    from ecrm_ops import local_mail

    address = f"reader-{uuid.uuid4().hex[:6]}@example.com"
    message_id = local.send([address])
    local.events()
    monkeypatch.setattr(local_mail, "_endpoint", lambda: local.endpoint)
    runner = CliRunner()

    listed = runner.invoke(local_mail.mail, ["--to", address])
    assert listed.exit_code == 0, listed.output
    assert message_id in listed.output
    assert "Our winter collection is here" in listed.output
    shown = runner.invoke(local_mail.mail, ["show", message_id])
    assert email.message_from_string(shown.output, policy=email.policy.default)["To"] == address
    opened = runner.invoke(local_mail.mail, ["open", message_id])
    clicked = runner.invoke(local_mail.mail, ["click", message_id, "--link", "https://www.example.com/other"])
    assert "Email Opened published to 1" in opened.output
    assert "Email Clicked published to 1" in clicked.output
    events = by_type(local.events())
    assert events["Email Clicked"][0]["detail"]["click"]["link"] == "https://www.example.com/other"
    assert len(events["Email Opened"]) == 1

    unknown = runner.invoke(local_mail.mail, ["open", "no-such-id"])
    assert unknown.exit_code != 0
    assert "no message no-such-id" in unknown.output
    runner.invoke(local_mail.mail, ["quota", "--max-24h", "500", "--rate", "5"])
    assert local.client("sesv2").get_account()["SendQuota"]["MaxSendRate"] == 5


def test_the_patched_moto_handlers_are_the_ones_moto_5_2_5_has(moto_endpoint: str) -> None:
    """A moto upgrade that implements (or renames) these operations must revisit `infra.local.ses`."""
    from infra.local import ses_api

    replaced = {name for name, had in ses_api.MOTO_HAD.items() if had}
    assert replaced == {"send_email", "create_configuration_set"}
    assert len(ses_api.MOTO_HAD) == 20


def test_a_delivery_delay_and_an_unsubscription_arrive_when_simulated(local: LocalSes) -> None:
    # Given a marketing message sent to a contact list's topic (SES adds its one-click unsubscribe)
    sesv2 = local.client("sesv2")
    contact_list = f"newsletter-{uuid.uuid4().hex[:6]}"
    sesv2.create_contact_list(
        ContactListName=contact_list,
        Topics=[{"TopicName": "offers", "DisplayName": "Offers", "DefaultSubscriptionStatus": "OPT_IN"}],
    )
    message_id = local.send(
        ["customer@example.com"], ListManagementOptions={"ContactListName": contact_list, "TopicName": "offers"}
    )
    local.events()

    # When the recipient's server defers it, and the recipient then unsubscribes from the topic
    assert ses_mail.simulate_delivery_delay(ACCOUNT_ID, REGION, message_id, delay_type="MailboxFull") == 1
    assert ses_mail.simulate_subscription(ACCOUNT_ID, REGION, message_id) == 1

    # Then Email Delivery Delayed and Email Subscribed arrive in SES's shapes
    events = by_type(local.events())
    [delayed] = events["Email Delivery Delayed"]
    [subscribed] = events["Email Subscribed"]
    delay = delayed["detail"]["deliveryDelay"]
    assert delayed["detail"]["eventType"] == "DeliveryDelay"
    assert delay["delayType"] == "MailboxFull"
    assert delay["delayedRecipients"] == [
        {"emailAddress": "customer@example.com", "status": "4.2.2", "diagnosticCode": "smtp; 452 4.2.2 Mailbox full"}
    ]
    assert delay["expirationTime"] > delay["timestamp"]
    change = subscribed["detail"]["subscription"]
    assert subscribed["detail"]["eventType"] == "Subscription"
    assert subscribed["detail"]["mail"]["messageId"] == message_id
    assert change["contactList"] == contact_list
    assert change["newTopicPreferences"] == {
        "unsubscribeAll": False,
        "topicSubscriptionStatus": [{"topicName": "offers", "subscriptionStatus": "OptOut"}],
    }
    # And a message sent without list management has no unsubscribe to simulate
    plain = local.send(["customer@example.com"])
    with pytest.raises(ses_mail.MailError, match="ListManagementOptions"):
        ses_mail.simulate_subscription(ACCOUNT_ID, REGION, plain)


def test_ecrm_local_mail_delays_and_unsubscribes(local: LocalSes, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner
    from ecrm_ops import local_mail

    contact_list = f"news-{uuid.uuid4().hex[:6]}"
    local.client("sesv2").create_contact_list(ContactListName=contact_list)
    message_id = local.send(["customer@example.com"], ListManagementOptions={"ContactListName": contact_list})
    local.events()
    monkeypatch.setattr(local_mail, "_endpoint", lambda: local.endpoint)
    runner = CliRunner()

    delayed = runner.invoke(local_mail.mail, ["delay", message_id, "--type", "TransientCommunicationFailure"])
    unsubscribed = runner.invoke(local_mail.mail, ["unsubscribe", message_id])

    assert delayed.exit_code == 0, delayed.output
    assert "Email Delivery Delayed published to 1" in delayed.output
    assert unsubscribed.exit_code == 0, unsubscribed.output
    events = by_type(local.events())
    assert (
        events["Email Delivery Delayed"][0]["detail"]["deliveryDelay"]["delayType"] == "TransientCommunicationFailure"
    )
    assert events["Email Subscribed"][0]["detail"]["subscription"]["newTopicPreferences"]["unsubscribeAll"] is True
    bad = runner.invoke(local_mail.mail, ["delay", message_id, "--type", "Tuesday"])
    assert bad.exit_code != 0
    assert "delay type 'Tuesday'" in bad.output
