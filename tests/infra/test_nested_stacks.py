"""The root stack holds the foundation; each engine is a nested stack; every template has headroom.

CloudFormation allows 500 resources per template. The root keeps the bus, the key, the layers,
Cognito, the REST API with its WAF and the lake; each engine's resources (functions, queues,
tables, its API methods and their invoke permissions) are in its own nested template. Every route
of every engine is on the one REST API and in its deployed stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.settings import TEMPLATE_RESOURCE_LIMIT
from tests.infra.conftest import STACK_NAME, Synthesized, ref, references
from tests.infra.test_routes import ENGINES

pytestmark = pytest.mark.xdist_group("infra")

ROOT = f"{STACK_NAME}.template.json"
FOUNDATION_ONLY = (
    "AWS::Lambda::Function",
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::StepFunctions::StateMachine",
)


def methods_of(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == "AWS::ApiGateway::Method"}


def test_every_template_stays_below_the_limit_with_headroom(synthesized: Synthesized) -> None:
    counts = {name: len(template["Resources"]) for name, template in synthesized.templates.items()}
    print("resources per template:", counts)  # shown with -s
    too_big = {name: n for name, n in counts.items() if n > TEMPLATE_RESOURCE_LIMIT}
    assert not too_big, f"templates past {TEMPLATE_RESOURCE_LIMIT} of CloudFormation's 500 resources: {too_big}"


def test_each_engine_is_one_nested_stack_of_the_root(synthesized: Synthesized) -> None:
    stacks = {lid for lid, r in synthesized.root["Resources"].items() if r["Type"] == "AWS::CloudFormation::Stack"}
    assert stacks == set(synthesized.nested), "a nested stack without a template in the cloud assembly"
    engines = {name.removesuffix(".nested.template.json") for name in synthesized.nested.values()}
    assert len(engines) == len(ENGINES)
    for engine in ENGINES:
        # the engine's construct keeps the logical ids it had in the root: `<Engine>...`
        template = next(
            synthesized.templates[file]
            for lid, file in synthesized.nested.items()
            if synthesized.logical_id(f"{engine.title()}.NestedStack/{engine.title()}.NestedStackResource") == lid
        )
        functions = [lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::Lambda::Function"]
        assert functions, f"no function in the {engine} template"
        assert all(lid.startswith(engine.title()) for lid in functions), functions


def test_the_root_holds_the_foundation_and_no_engine_resource(synthesized: Synthesized) -> None:
    types = {r["Type"] for r in synthesized.root["Resources"].values()}
    assert not types & set(FOUNDATION_ONLY), f"engine resources in the root: {types & set(FOUNDATION_ONLY)}"
    for kind in ("AWS::Events::EventBus", "AWS::KMS::Key", "AWS::Cognito::UserPool", "AWS::ApiGateway::RestApi"):
        assert kind in types, kind
    assert "AWS::WAFv2::WebACL" in types
    assert "AWS::Glue::Database" in types


def test_every_method_is_on_the_one_api_and_in_the_deployed_stage(synthesized: Synthesized) -> None:
    """The CDK pitfall: a deployment in the root does not wait for methods added in nested stacks.

    API Gateway snapshots the API's methods when the deployment is created, so the root's deployment
    must come after every nested stack holding methods (its DependsOn), and the stage must serve it.
    """
    api_id = next(lid for lid, r in synthesized.root["Resources"].items() if r["Type"] == "AWS::ApiGateway::RestApi")
    deployments = {
        lid: r for lid, r in synthesized.root["Resources"].items() if r["Type"] == "AWS::ApiGateway::Deployment"
    }
    assert len(deployments) == 1
    ((deployment_id, deployment),) = deployments.items()
    stage = next(r for r in synthesized.root["Resources"].values() if r["Type"] == "AWS::ApiGateway::Stage")
    assert ref(stage["Properties"]["DeploymentId"]) == deployment_id
    waits_for = set(deployment.get("DependsOn", []))
    for stack_id, file in synthesized.nested.items():
        if methods_of(synthesized.templates[file]):
            assert stack_id in waits_for, f"the deployment does not wait for the methods of {file}"
    assert all(m in waits_for for m in methods_of(synthesized.root)), "a root method the deployment misses"
    # Each method, wherever it is declared, is on the root's REST API (a nested parameter resolved).
    methods = methods_of(synthesized.template)
    assert methods
    assert {ref(m["Properties"]["RestApiId"]) for m in methods.values()} == {api_id}
    nested_methods = {lid for file in synthesized.nested.values() for lid in methods_of(synthesized.templates[file])}
    lambda_methods = {lid for lid, m in methods.items() if m["Properties"]["Integration"]["Type"] != "MOCK"}
    assert lambda_methods <= nested_methods, "engine methods belong to the engine's nested stack"


def test_nested_stacks_do_not_reference_the_stage(synthesized: Synthesized) -> None:
    # The deployment waits for the nested stacks; a nested stack waiting for the stage would be a cycle.
    stage_id = next(lid for lid, r in synthesized.root["Resources"].items() if r["Type"] == "AWS::ApiGateway::Stage")
    deployment_id = ref(synthesized.root["Resources"][stage_id]["Properties"]["DeploymentId"])
    for stack_id in synthesized.nested:
        passed = set(references(synthesized.root["Resources"][stack_id]["Properties"].get("Parameters", {})))
        assert not passed & {stage_id, deployment_id}, f"{stack_id} waits for the stage its methods are deployed to"


def test_a_route_added_in_a_nested_stack_is_deployed(tmp_path: Path) -> None:
    """The deployment's logical id changes with the methods of nested stacks: CloudFormation deploys again."""
    first = _deployment_of_a_small_app(tmp_path / "one", ["/a"])
    second = _deployment_of_a_small_app(tmp_path / "two", ["/a", "/b"])
    assert first[0] != second[0], "a new route in a nested stack would not be deployed"
    assert first[1] == second[1] == ["Engine.NestedStackResource"], "the deployment must wait for the nested stack"


def _deployment_of_a_small_app(outdir: Path, paths: list[str]) -> tuple[str, list[str]]:
    """A root REST API, one nested stack whose construct adds methods the way `ApiFunction` does."""
    import json

    import aws_cdk as cdk
    from aws_cdk import aws_apigateway as apigw

    app = cdk.App(outdir=str(outdir))
    root = cdk.Stack(app, "Root")
    api = apigw.RestApi(root, "Api", cloud_watch_role=False)
    apigw.Method(root, "Health", resource=api.root.add_resource("health"), http_method="GET")
    nested = cdk.NestedStack(root, "Engine")
    for path in paths:
        apigw.Method(
            nested,
            f"GET{path.replace('/', '_')}",
            resource=api.root.resource_for_path(path),
            http_method="GET",
            integration=apigw.MockIntegration(),
        )
    app.synth()
    template = json.loads((outdir / "Root.template.json").read_text())
    ((logical_id, deployment),) = [
        (lid, r) for lid, r in template["Resources"].items() if r["Type"] == "AWS::ApiGateway::Deployment"
    ]
    stacks = {lid for lid, r in template["Resources"].items() if r["Type"] == "AWS::CloudFormation::Stack"}
    return logical_id, ["Engine.NestedStackResource" for d in deployment.get("DependsOn", []) if d in stacks]


# -- the local cloud reads the nested templates ------------------------------------------------
def test_the_local_cloud_reads_every_nested_template_with_its_parameters_resolved(synthesized: Synthesized) -> None:
    import json

    # Then the inlined template holds every resource of every template, and no nested parameter is left
    inlined = synthesized.template
    for name, template in synthesized.templates.items():
        assert set(template["Resources"]) <= set(inlined["Resources"]), name
    parameters = {name for template in synthesized.templates.values() for name in template.get("Parameters", {})}
    assert not parameters & set(references(inlined["Resources"])) - {"BootstrapVersion"}
    assert '"Outputs.' not in json.dumps(inlined)


def test_inlining_wires_parameters_outputs_and_dependencies_as_cloudformation_does() -> None:
    from infra.local.template import inline_nested_stack

    # Given a parent passing a bucket's ARN and name, and reading a function's name back from an output
    parent = {
        "Resources": {
            "Bucket": {"Type": "AWS::S3::Bucket"},
            "Engine": {
                "Type": "AWS::CloudFormation::Stack",
                "Properties": {
                    "Parameters": {"refBucketArn": {"Fn::GetAtt": ["Bucket", "Arn"]}, "refBucket": {"Ref": "Bucket"}}
                },
            },
            "Deployment": {"Type": "AWS::ApiGateway::Deployment", "DependsOn": "Engine"},
            "Alarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "Name": {"Fn::GetAtt": ["Engine", "Outputs.FunctionRef"]},
                    "Text": {"Fn::Sub": "fn ${Engine.Outputs.FunctionRef} in ${AWS::Region}"},
                },
            },
        }
    }
    nested = {
        "Parameters": {"refBucketArn": {"Type": "String"}, "refBucket": {"Type": "String"}},
        "Resources": {
            "Function": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Bucket": {"Ref": "refBucket"},
                    "Policy": {"Fn::Join": ["", [{"Ref": "refBucketArn"}, "/*"]]},
                    "Text": {"Fn::Sub": ["${refBucket}/${Key}", {"Key": "k"}]},
                },
            }
        },
        "Outputs": {"FunctionRef": {"Value": {"Ref": "Function"}}},
    }
    # When the nested template is inlined
    inlined = inline_nested_stack(parent, "Engine", nested)["Resources"]
    # Then the nested resource reads what the parent passed, and the parent reads the output's value
    function = inlined["Function"]["Properties"]
    assert function["Bucket"] == {"Ref": "Bucket"}
    assert function["Policy"] == {"Fn::Join": ["", [{"Fn::GetAtt": ["Bucket", "Arn"]}, "/*"]]}
    assert function["Text"] == {"Fn::Sub": ["${refBucket}/${Key}", {"Key": "k", "refBucket": {"Ref": "Bucket"}}]}
    assert inlined["Alarm"]["Properties"]["Name"] == {"Ref": "Function"}
    assert inlined["Alarm"]["Properties"]["Text"] == {
        "Fn::Sub": [
            "fn ${Engine.Outputs.FunctionRef} in ${AWS::Region}",
            {"Engine.Outputs.FunctionRef": {"Ref": "Function"}},
        ]
    }
    # and the nested stack completes after its resources, so what waits for it waits for them
    assert inlined["Engine"]["DependsOn"] == ["Function"]
    assert inlined["Deployment"]["DependsOn"] == "Engine"
