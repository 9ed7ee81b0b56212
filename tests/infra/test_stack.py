"""The synthesized stack has the shape ARCHITECTURE.md promises: one check per promise."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.engines import broadcast, collect, transactions
from tests.infra.conftest import REPO_ROOT, Synthesized, ref, references

pytestmark = pytest.mark.xdist_group("infra")

STAFF_GROUPS = {"admin", "marketer", "analyst", "agent"}
# Public at API Gateway: health and the OpenAPI document, and the tracking API (write key checked in the function)
PUBLIC_METHODS = (
    {("GET", "/health"), ("GET", "/openapi.json"), ("GET", "/docs")}
    | {(r.method, r.path) for r in collect.TRACKING}
    | {(r.method, r.path) for r in broadcast.ROUTES if r.public}
    | {(r.method, r.path) for r in transactions.ROUTES if r.public}
)


@pytest.fixture(scope="module")
def cdk_template(template: dict[str, Any]) -> Template:
    return Template.from_json(template)


def only(resources: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    assert len(resources) == 1, f"expected exactly one, found {sorted(resources)}"
    return next(iter(resources.items()))


# -- events and keys ---------------------------------------------------------------------------
def test_custom_event_bus_is_named_ecrm(cdk_template: Template) -> None:
    cdk_template.resource_count_is("AWS::Events::EventBus", 1)
    cdk_template.has_resource_properties("AWS::Events::EventBus", {"Name": "ecrm"})


def test_kms_keys_rotate(cdk_template: Template, synthesized: Synthesized) -> None:
    cdk_template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    cdk_template.all_resources_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    assert synthesized.resources("AWS::KMS::Key")


# -- data --------------------------------------------------------------------------------------
def test_tables_are_on_demand_recoverable_kms_encrypted_and_expire(
    cdk_template: Template, synthesized: Synthesized
) -> None:
    tables = synthesized.resources("AWS::DynamoDB::Table")
    assert tables, "no DynamoDB table"
    cdk_template.all_resources_properties(
        "AWS::DynamoDB::Table",
        {
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": Match.object_like({"SSEEnabled": True, "SSEType": "KMS"}),
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
        },
    )
    keys = synthesized.resources("AWS::KMS::Key")
    for logical_id, table in tables.items():
        key = ref(table["Properties"]["SSESpecification"].get("KMSMasterKeyId"))
        assert key in keys, f"{logical_id} is not encrypted with the stack's customer managed key"


# -- queues ------------------------------------------------------------------------------------
def dead_letter_queue_ids(synthesized: Synthesized) -> set[str]:
    """Queues that receive what failed: redrive targets, and the on-failure destinations of stream mappings."""
    redrive_targets = {
        ref(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for q in synthesized.resources("AWS::SQS::Queue").values()
        if "RedrivePolicy" in q["Properties"]
    }
    on_failure = {
        ref(m["Properties"]["DestinationConfig"]["OnFailure"]["Destination"])
        for m in synthesized.resources("AWS::Lambda::EventSourceMapping").values()
        if "DestinationConfig" in m["Properties"]
    }
    return {q for q in redrive_targets | on_failure if q is not None}


def test_every_queue_is_encrypted(synthesized: Synthesized) -> None:
    queues = synthesized.resources("AWS::SQS::Queue")
    assert queues, "no SQS queue"
    unencrypted = [
        lid
        for lid, q in queues.items()
        if not (q["Properties"].get("SqsManagedSseEnabled") or q["Properties"].get("KmsMasterKeyId"))
    ]
    assert not unencrypted, f"queues without server-side encryption: {unencrypted}"


def test_every_queue_but_a_dead_letter_queue_redrives_to_one(synthesized: Synthesized) -> None:
    queues = synthesized.resources("AWS::SQS::Queue")
    dlqs = dead_letter_queue_ids(synthesized)
    assert dlqs, "no dead-letter queue at all"
    assert dlqs <= set(queues), f"redrive targets that are not queues of the stack: {dlqs - set(queues)}"
    for logical_id, queue in queues.items():
        props = queue["Properties"]
        if logical_id in dlqs:
            assert "RedrivePolicy" not in props, f"dead-letter queue {logical_id} redrives further"
            continue
        policy = props.get("RedrivePolicy")
        assert policy, f"{logical_id} has no dead-letter queue"
        assert isinstance(policy.get("maxReceiveCount"), int), logical_id
        assert policy["maxReceiveCount"] >= 1, logical_id
        # A record keeps its first enqueue time in the DLQ: it must outlive the source's retention.
        dlq = queues[ref(policy["deadLetterTargetArn"])]["Properties"]  # type: ignore[index]
        assert dlq.get("MessageRetentionPeriod", 345600) > props.get("MessageRetentionPeriod", 345600), logical_id


def test_sqs_event_sources_report_batch_item_failures(synthesized: Synthesized) -> None:
    queues = synthesized.resources("AWS::SQS::Queue")
    mappings = {
        lid: m["Properties"]
        for lid, m in synthesized.resources("AWS::Lambda::EventSourceMapping").items()
        if ref(m["Properties"].get("EventSourceArn")) in queues
    }
    assert mappings, "no SQS event source mapping"
    for logical_id, props in mappings.items():
        assert props.get("FunctionResponseTypes") == ["ReportBatchItemFailures"], logical_id
        assert ref(props["EventSourceArn"]) not in dead_letter_queue_ids(synthesized), (
            f"{logical_id} drains a dead-letter queue"
        )


# -- functions ---------------------------------------------------------------------------------
def test_functions_run_python_314_on_arm_with_the_common_layer(synthesized: Synthesized) -> None:
    functions = synthesized.resources("AWS::Lambda::Function")
    assert functions, "no Lambda function"
    common_layer = synthesized.logical_id("Foundation/CommonLayer/Resource")
    for logical_id, function in functions.items():
        props = function["Properties"]
        assert props["Runtime"] == "python3.14", logical_id
        assert props["Architectures"] == ["arm64"], logical_id
        assert common_layer in [ref(layer) for layer in props.get("Layers", [])], logical_id


def test_request_path_functions_do_not_carry_the_ml_layer(synthesized: Synthesized) -> None:
    ml_layer = synthesized.logical_id("Foundation/MlLayer/Resource")
    for logical_id, function in synthesized.resources("AWS::Lambda::Function").items():
        module = function["Metadata"]["ecrm:module"]
        if module == "api" or module.startswith("on_"):
            layers = [ref(layer) for layer in function["Properties"].get("Layers", [])]
            assert ml_layer not in layers, f"{logical_id} ({module}) would import scikit-learn on a request path"


def test_every_function_has_its_own_lambda_role(synthesized: Synthesized) -> None:
    roles = synthesized.resources("AWS::IAM::Role")
    owners: dict[str, str] = {}
    for logical_id, function in synthesized.resources("AWS::Lambda::Function").items():
        role = ref(function["Properties"]["Role"])
        assert role in roles, f"{logical_id} does not use a role of this stack"
        assert role not in owners, f"{logical_id} shares role {role} with {owners.get(role)}"
        owners[role] = logical_id
        statements = roles[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        principals = [s["Principal"].get("Service") for s in statements]
        assert principals == ["lambda.amazonaws.com"], f"{role} is assumable by {principals}"
        assert not roles[role]["Properties"].get("ManagedPolicyArns"), f"{role} has managed policies"


def test_function_metadata_points_at_its_handler_module(synthesized: Synthesized) -> None:
    for logical_id, function in synthesized.resources("AWS::Lambda::Function").items():
        metadata = function.get("Metadata", {})
        source, module = metadata.get("ecrm:source"), metadata.get("ecrm:module")
        assert source, f"{logical_id} lacks ecrm:source metadata"
        assert module, f"{logical_id} lacks ecrm:module metadata"
        assert source.startswith("functions/"), f"{logical_id}: {source}"
        assert (REPO_ROOT / source).is_dir(), f"{logical_id}: {source} is not a folder"
        assert (REPO_ROOT / source / f"{module}.py").is_file(), f"{logical_id}: no {source}/{module}.py"
        assert function["Properties"]["Handler"] == f"{module}.handler", logical_id


def test_staged_function_code_is_its_source_folder_without_bytecode(synthesized: Synthesized) -> None:
    for logical_id, function in synthesized.resources("AWS::Lambda::Function").items():
        staged = synthesized.asset_dir(function["Properties"]["Code"]["S3Key"])
        source = REPO_ROOT / function["Metadata"]["ecrm:source"]
        assert staged.is_dir(), f"{logical_id}: code asset not staged at {staged.name}"
        shipped = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
        assert f"{function['Metadata']['ecrm:module']}.py" in shipped, logical_id
        assert not [p for p in shipped if "__pycache__" in p or p.endswith(".pyc")], logical_id
        expected = {p.relative_to(source).as_posix() for p in source.rglob("*.py") if "__pycache__" not in p.parts}
        assert expected <= shipped, f"{logical_id}: missing {sorted(expected - shipped)}"


# -- identity ----------------------------------------------------------------------------------
def test_user_pool_has_the_staff_groups_and_two_clients(cdk_template: Template, synthesized: Synthesized) -> None:
    cdk_template.resource_count_is("AWS::Cognito::UserPool", 1)
    pool = synthesized.logical_id("Foundation/UserPool/Resource")
    groups = synthesized.resources("AWS::Cognito::UserPoolGroup").values()
    assert {g["Properties"]["GroupName"] for g in groups} == STAFF_GROUPS
    assert all(ref(g["Properties"]["UserPoolId"]) == pool for g in groups)
    clients = synthesized.resources("AWS::Cognito::UserPoolClient").values()
    assert len(clients) == 2
    assert all(ref(c["Properties"]["UserPoolId"]) == pool for c in clients)
    assert all(not c["Properties"].get("GenerateSecret") for c in clients), "public clients carry no secret"


def test_customers_cannot_write_their_customer_id(synthesized: Synthesized) -> None:
    client = synthesized.resources("AWS::Cognito::UserPoolClient")[
        synthesized.logical_id("Foundation/UserPool/CustomerClient/Resource")
    ]["Properties"]
    # An empty or missing WriteAttributes means "every writable attribute", custom ones included.
    assert client.get("WriteAttributes"), "the customer client may write every attribute"
    assert "custom:customer_id" not in client["WriteAttributes"]
    assert "custom:customer_id" in client.get("ReadAttributes", [])


def test_clients_enable_no_oauth_implicit_grant_or_placeholder_callback(synthesized: Synthesized) -> None:
    for logical_id, client in synthesized.resources("AWS::Cognito::UserPoolClient").items():
        props = client["Properties"]
        assert "implicit" not in props.get("AllowedOAuthFlows", []), logical_id
        assert not [u for u in props.get("CallbackURLs", []) if "example.com" in u], logical_id


# -- REST API ----------------------------------------------------------------------------------
def test_api_stage_writes_access_logs(synthesized: Synthesized) -> None:
    _, stage = only(synthesized.resources("AWS::ApiGateway::Stage"))
    setting = stage["Properties"].get("AccessLogSetting")
    assert setting, "no access logging on the stage"
    assert ref(setting["DestinationArn"]) in synthesized.resources("AWS::Logs::LogGroup")
    assert "$context.requestId" in setting["Format"]
    json.loads(setting["Format"])  # a JSON line per request, queryable with Logs Insights


def test_waf_web_acl_protects_the_stage(synthesized: Synthesized) -> None:
    acl_id, acl = only(synthesized.resources("AWS::WAFv2::WebACL"))
    assert acl["Properties"]["Scope"] == "REGIONAL"
    assert acl["Properties"]["Rules"], "a web ACL without rules"
    _, association = only(synthesized.resources("AWS::WAFv2::WebACLAssociation"))
    props = association["Properties"]
    assert ref(props["WebACLArn"]) == acl_id
    stage_id, _ = only(synthesized.resources("AWS::ApiGateway::Stage"))
    api_id, _ = only(synthesized.resources("AWS::ApiGateway::RestApi"))
    assert {stage_id, api_id} <= set(references(props["ResourceArn"])), "the association is not on the API stage"


def test_cognito_authorizer_uses_the_user_pool(synthesized: Synthesized) -> None:
    _, authorizer = only(synthesized.resources("AWS::ApiGateway::Authorizer"))
    props = authorizer["Properties"]
    assert props["Type"] == "COGNITO_USER_POOLS"
    assert [ref(arn) for arn in props["ProviderARNs"]] == [synthesized.logical_id("Foundation/UserPool/Resource")]
    assert props["IdentitySource"] == "method.request.header.Authorization"


def test_every_method_needs_a_cognito_token_but_the_public_ones(synthesized: Synthesized) -> None:
    authorizer, _ = only(synthesized.resources("AWS::ApiGateway::Authorizer"))
    methods = synthesized.api_methods()
    assert set(methods) >= PUBLIC_METHODS
    for key, props in methods.items():
        if key in PUBLIC_METHODS or (key[0] == "OPTIONS" and props["Integration"]["Type"] == "MOCK"):
            assert props["AuthorizationType"] == "NONE", key
            assert "AuthorizerId" not in props, key
        else:
            assert props["AuthorizationType"] == "COGNITO_USER_POOLS", key
            assert ref(props.get("AuthorizerId")) == authorizer, key


def test_gateway_responses_are_problem_json(synthesized: Synthesized) -> None:
    responses = synthesized.resources("AWS::ApiGateway::GatewayResponse").values()
    types = {r["Properties"]["ResponseType"] for r in responses}
    assert {"UNAUTHORIZED", "ACCESS_DENIED", "DEFAULT_4XX", "DEFAULT_5XX"} <= types
    for response in responses:
        props = response["Properties"]
        kind = props["ResponseType"]
        assert props["ResponseParameters"]["gatewayresponse.header.Content-Type"] == "'application/problem+json'", kind
        for body in props["ResponseTemplates"].values():
            # API Gateway substitutes $context.error.messageString already quoted.
            problem = json.loads(body.replace("$context.error.messageString", '"Unauthorized"'))
            assert {"type", "title", "detail"} <= set(problem), kind
            if "StatusCode" in props:
                assert problem.get("status") == int(props["StatusCode"]), kind


# -- workflows ---------------------------------------------------------------------------------
def test_state_machines_log_everything_and_trace(cdk_template: Template, synthesized: Synthesized) -> None:
    assert synthesized.resources("AWS::StepFunctions::StateMachine"), "no state machine"
    cdk_template.all_resources_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "LoggingConfiguration": Match.object_like({"Level": "ALL", "Destinations": Match.any_value()}),
            "TracingConfiguration": {"Enabled": True},
        },
    )


def test_a_schedule_starts_the_state_machine(synthesized: Synthesized) -> None:
    machines = synthesized.resources("AWS::StepFunctions::StateMachine")
    scheduled = [
        target
        for rule in synthesized.resources("AWS::Events::Rule").values()
        if rule["Properties"].get("ScheduleExpression")
        for target in rule["Properties"].get("Targets", [])
        if ref(target["Arn"]) in machines
    ]
    assert scheduled, "no schedule rule targets a state machine"
    for target in scheduled:
        assert ref(target.get("RoleArn")) in synthesized.resources("AWS::IAM::Role")
