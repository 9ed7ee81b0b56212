"""What a cloud team needs to deploy and run the stack: stages apart, alarms that notify, outputs and settings
that say what they are, and a README whose deploy instructions match the code."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.infra.conftest import REPO_ROOT, STACK_NAME, Synthesized, deploy_context, ref

pytestmark = pytest.mark.xdist_group("infra")

README = REPO_ROOT / "README.md"

# Physical names unique in an account and region (or in the account): two stages must never share one.
UNIQUE_NAMES = {
    "AWS::KMS::Alias": "AliasName",
    "AWS::Events::EventBus": "Name",
    "AWS::Events::Archive": "ArchiveName",
    "AWS::Events::Rule": "Name",
    "AWS::Cognito::UserPool": "UserPoolName",
    "AWS::Cognito::UserPoolDomain": "Domain",
    "AWS::ApiGateway::RestApi": "Name",
    "AWS::WAFv2::WebACL": "Name",
    "AWS::KinesisFirehose::DeliveryStream": "DeliveryStreamName",
    "AWS::Glue::Database": "DatabaseInput.Name",
    "AWS::Athena::WorkGroup": "Name",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Lambda::LayerVersion": "LayerName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::SSM::Parameter": "Name",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::SES::ConfigurationSet": "Name",
    "AWS::SMSVOICE::ConfigurationSet": "ConfigurationSetName",
}
# Names that live inside another resource of the stack (a pool's groups, an API's stage, a role's inline
# policy, a database's tables, a log group's streams) or are not names of a resource at all.
SCOPED_OR_NOT_A_NAME = {
    "AWS::Cognito::UserPoolGroup": {"GroupName"},
    "AWS::Cognito::UserPoolClient": {"ClientName"},
    "AWS::ApiGateway::Stage": {"StageName"},
    "AWS::ApiGateway::RequestValidator": {"Name"},
    "AWS::ApiGateway::Authorizer": {"Name"},
    "AWS::IAM::Policy": {"PolicyName"},
    "AWS::Glue::Table": {"DatabaseName", "TableInput.Name"},
    "AWS::Logs::LogStream": {"LogGroupName", "LogStreamName"},
    "AWS::SNS::Topic": {"DisplayName"},
    "AWS::SES::ConfigurationSetEventDestination": {"ConfigurationSetName"},
    "AWS::SES::EmailIdentity": {"ConfigurationSetAttributes.ConfigurationSetName"},
}


def literal_names(properties: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every literal string property that names something (`Name`, `...Name`, `Domain`), by its dotted path."""
    for key, value in properties.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from literal_names(value, f"{path}.")
        elif isinstance(value, str) and (key == "Domain" or key.endswith("Name")):
            yield path, value


def physical_names(templates: dict[str, dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(resource type, explicit physical name) -> where it is declared, across the root and nested templates."""
    names = {}
    for file, template in templates.items():
        for logical_id, resource in template["Resources"].items():
            path = UNIQUE_NAMES.get(resource["Type"])
            value: Any = resource.get("Properties", {})
            for part in (path or "-").split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if path and value is not None:
                names[(resource["Type"], json.dumps(value))] = f"{file}:{logical_id}"
    return names


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The templates of the stage `prod` (bundling skipped), by file."""
    from infra.app import synth, template_sizes

    outdir = tmp_path_factory.mktemp("prod.out")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("CDK_DEFAULT_ACCOUNT", raising=False)
        mp.delenv("CDK_DEFAULT_REGION", raising=False)
        assembly = synth(str(outdir), {**deploy_context(), "ecrm:stage": "prod"})
    return {name: json.loads((outdir / name).read_text(encoding="utf-8")) for name in template_sizes(assembly)}


# -- stages ------------------------------------------------------------------------------------
def test_every_explicit_name_is_known_to_be_account_unique_or_scoped(synthesized: Synthesized) -> None:
    # A new kind of named resource has to be classified before the stage check below can cover it.
    unknown = sorted(
        f"{resource['Type']}.{path}"
        for template in synthesized.templates.values()
        for resource in template["Resources"].values()
        for path, _ in literal_names(resource.get("Properties", {}))
        if UNIQUE_NAMES.get(resource["Type"]) != path
        and path not in SCOPED_OR_NOT_A_NAME.get(resource["Type"], set())
        and not path.endswith(("MetricName", "AttributeName", "IndexName", "KeyName"))
    )
    assert not unknown, f"classify these names in UNIQUE_NAMES or SCOPED_OR_NOT_A_NAME: {unknown}"


def test_two_stages_are_two_stacks_with_no_physical_name_in_common(
    synthesized: Synthesized, prod: dict[str, dict[str, Any]]
) -> None:
    # Given the default stage and `-c ecrm:stage=prod`, synthesized for one account
    default_names, prod_names = physical_names(dict(synthesized.templates)), physical_names(prod)
    # Then each is a stack of its own, with its own template files
    assert f"{STACK_NAME}.template.json" in synthesized.templates
    assert f"{STACK_NAME}-prod.template.json" in prod
    assert not set(synthesized.templates) & set(prod)
    # ... and no explicitly named resource of one would collide with the other's
    assert len(default_names) >= 8, sorted(default_names)
    shared = sorted(set(default_names) & set(prod_names))
    assert not shared, f"both stages name these the same: {shared}"
    assert {name for kind, name in prod_names if kind == "AWS::Events::EventBus"} == {'"ecrm-prod"'}
    assert {name for kind, name in prod_names if kind == "AWS::Glue::Database"} == {'"ecrm_prod_lake"'}


def test_the_default_stage_keeps_the_names_of_a_first_deployment(synthesized: Synthesized) -> None:
    from infra.local.state import STACK_NAME as LOCAL_CLOUD_STACK

    names = {name for _, name in physical_names(dict(synthesized.templates))}
    assert {'"ecrm"', '"alias/ecrm-data"', '"ecrm_lake"', '"ecrm-analysis"'} <= names
    # ... and it is the stack the local cloud loads from the cloud assembly
    assert LOCAL_CLOUD_STACK == STACK_NAME


@pytest.mark.parametrize("stage", ["Prod", "pr_od", "prod-", "a-very-long-stage-name"])
def test_a_stage_that_cannot_be_part_of_a_name_is_refused_with_a_message(stage: str) -> None:
    from infra.settings import DeploymentSettings

    with pytest.raises(ValueError, match=r"ecrm:stage .*lower-case letters"):
        DeploymentSettings(stage=stage)


# -- alarms ------------------------------------------------------------------------------------
def test_every_alarm_of_every_template_notifies_the_alarm_topic(synthesized: Synthesized) -> None:
    topics = synthesized.resources("AWS::SNS::Topic")
    (topic_id,) = [lid for lid in topics if lid.startswith("AlarmsTopic")]
    topic = topics[topic_id]["Properties"]
    # The topic is encrypted with a key of the stack (which CloudWatch may use) and refuses plain HTTP
    key = synthesized.resources("AWS::KMS::Key")[ref(topic["KmsMasterKeyId"]) or ""]["Properties"]
    assert key["EnableKeyRotation"] is True
    assert any(
        s.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com" for s in key["KeyPolicy"]["Statement"]
    )
    (policy,) = [
        p["Properties"]
        for p in synthesized.resources("AWS::SNS::TopicPolicy").values()
        if [ref(t) for t in p["Properties"]["Topics"]] == [topic_id]
    ]
    assert any(
        s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["PolicyDocument"]["Statement"]
    )
    # Every alarm, in the root and in each engine's nested stack, tells it when it fires and when it clears
    alarms_per_template = {
        file: [lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"]
        for file, template in synthesized.templates.items()
    }
    assert sum(map(len, alarms_per_template.values())) >= 10, alarms_per_template
    assert sum(1 for ids in alarms_per_template.values() if ids) >= 4, "alarms expected in several nested stacks"
    for logical_id, alarm in synthesized.resources("AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        assert [ref(a) for a in props.get("AlarmActions", [])] == [topic_id], logical_id
        assert [ref(a) for a in props.get("OKActions", [])] == [topic_id], logical_id
    # Nobody is subscribed to the alarm topic unless the deployer names an address (ecrm:alarmEmail)
    assert not [
        s
        for s in synthesized.resources("AWS::SNS::Subscription").values()
        if ref(s["Properties"]["TopicArn"]) == topic_id
    ]


# -- outputs -----------------------------------------------------------------------------------
def test_every_output_says_what_it_is(synthesized: Synthesized) -> None:
    outputs = synthesized.root.get("Outputs", {})
    assert {"ApiUrl", "UserPoolId", "StaffClientId", "AlarmTopicArn"} <= set(outputs)
    undescribed = [name for name, output in outputs.items() if len(output.get("Description", "").strip()) < 15]
    assert not undescribed, f"outputs without a description: {undescribed}"
    # A nested stack's outputs only carry references up to the root, which reads each of them
    read_by_root = set(re.findall(r'"Outputs\.([^"]+)"', json.dumps(synthesized.root)))
    for file, template in synthesized.templates.items():
        if file != f"{STACK_NAME}.template.json":
            for name, output in template.get("Outputs", {}).items():
                assert "Description" in output or name in read_by_root, f"{file}: output {name} says nothing"


# -- settings and the README -------------------------------------------------------------------
def context_keys_read_by_the_app() -> set[str]:
    """`ecrm:` context keys: DeploymentSettings' fields (camelCase) and every literal `try_get_context("ecrm:...")`."""
    from infra.settings import DeploymentSettings, _camel

    keys = {f"ecrm:{_camel(field)}" for field in DeploymentSettings.__dataclass_fields__}
    for source in (REPO_ROOT / "infra").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "try_get_context"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and str(node.args[0].value).startswith("ecrm:")
            ):
                keys.add(str(node.args[0].value))
    cdk_json = json.loads((REPO_ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    return keys | {key for key in cdk_json if key.startswith("ecrm:")}


def readme_section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_every_context_key_the_app_reads_is_in_the_readme() -> None:
    keys = context_keys_read_by_the_app()
    assert {"ecrm:stage", "ecrm:alarmEmail", "ecrm:modelJobMemory"} <= keys
    deploy = readme_section("Deploy")
    missing = sorted(key for key in keys if f"`{key}`" not in deploy)
    assert not missing, f"the README's Deploy section does not mention {missing}"


def test_the_readme_gets_a_staff_token_through_a_flow_the_staff_client_allows(synthesized: Synthesized) -> None:
    clients = {
        r["Properties"]["ClientName"]: r["Properties"]
        for r in synthesized.resources("AWS::Cognito::UserPoolClient").values()
    }
    staff_flows = set(clients["ecrm-staff"]["ExplicitAuthFlows"])
    deploy = readme_section("Deploy")
    flows = set(re.findall(r"--auth-flow (\w+)", deploy))
    assert flows, "the Deploy section shows no sign-in of the first staff user"
    assert {f"ALLOW_{flow}" for flow in flows} <= staff_flows, (flows, staff_flows)
    for command in ("admin-create-user", "admin-set-user-password", "admin-add-user-to-group"):
        assert f"aws cognito-idp {command}" in deploy
    # Customers never sign in with a password sent by an operator's IAM credentials
    assert not {f"ALLOW_{flow}" for flow in flows} & set(clients["ecrm-customers"]["ExplicitAuthFlows"])


def test_commands_that_need_an_aws_account_are_marked_not_run_in_the_deploy_section() -> None:
    deploy = readme_section("Deploy")
    blocks = re.findall(r"(?:^|\n)([^\n]*)\n```(?:bash|sh|shell)\n", deploy)
    assert blocks, "the Deploy section shows no command"
    assert all(before.strip() == "<!-- not run: needs an AWS account -->" for before in blocks), blocks
