"""Everything the synthesized template declares is live in the local cloud, with the same wiring."""

from __future__ import annotations

import json
from typing import Any

from infra.local.cloud import LocalCloud
from infra.local.provision import EMULATED, NOT_EMULATED


def resolved(cloud: LocalCloud, logical_id: str) -> dict[str, Any]:
    """The template's properties with intrinsics evaluated against what was provisioned."""
    return cloud.resolver.resolve(cloud.template.resources[logical_id].properties)  # type: ignore[no-any-return]


def test_every_resource_was_created_or_has_a_stated_reason(cloud: LocalCloud) -> None:
    # Given the root template and each nested stack's (one per engine), read from the cloud assembly
    nested_stacks = cloud.template.of_type("AWS::CloudFormation::Stack")
    assert nested_stacks, "the root deploys no nested stack"
    assert len(cloud.template.sources) == 1 + len(nested_stacks), sorted(cloud.template.sources)
    # Then every resource of every template is live locally
    for source, logical_ids in cloud.template.sources.items():
        assert logical_ids, f"{source} has no resource"
        missing = [logical_id for logical_id in logical_ids if logical_id not in cloud.provisioned.physical]
        assert not missing, f"{source}: {missing}"
    # ... each either provisioned, emulated or knowingly left out
    for logical_id, resource in cloud.template.resources.items():
        assert logical_id in cloud.provisioned.physical, logical_id
        assert resource.type in cloud.provisioned.types.values()
    skipped = {r.type for r in cloud.template.resources.values()} & set(NOT_EMULATED)
    assert all(NOT_EMULATED[t] for t in skipped)
    assert all(EMULATED.values())


def test_every_function_is_deployed_and_runs_with_its_template_environment(cloud: LocalCloud) -> None:
    functions = cloud.template.of_type("AWS::Lambda::Function")
    assert functions
    lambda_ = cloud.client("lambda")
    for resource in functions:
        name = cloud.provisioned.physical[resource.logical_id]
        deployed = lambda_.get_function(FunctionName=name)["Configuration"]
        local = cloud.runtime.functions[name]
        expected_env = resolved(cloud, resource.logical_id)["Environment"]["Variables"]
        # Then moto holds the function with the template's settings, and the worker gets exactly that env
        assert deployed["Runtime"] == resource.properties["Runtime"]
        assert deployed["Environment"]["Variables"] == expected_env
        # (the local cloud's channel placeholders become the ids its emulations minted: infra.local.broadcast_channels)
        assert local.environment == {k: cloud.channel_ids.get(v, v) for k, v in expected_env.items()}
        assert local.module == resource.metadata["ecrm:module"]
        assert all(not isinstance(v, dict) for v in expected_env.values()), "unresolved intrinsic"


def test_every_queue_exists_with_its_redrive_policy(cloud: LocalCloud) -> None:
    sqs = cloud.client("sqs")
    queues = cloud.template.of_type("AWS::SQS::Queue")
    assert queues
    for resource in queues:
        url = cloud.provisioned.physical[resource.logical_id]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        props = resolved(cloud, resource.logical_id)
        if "RedrivePolicy" in props:
            assert json.loads(attributes["RedrivePolicy"]) == props["RedrivePolicy"]
        if "VisibilityTimeout" in props:
            assert attributes["VisibilityTimeout"] == str(props["VisibilityTimeout"])


def test_every_rule_has_the_same_pattern_and_targets(cloud: LocalCloud) -> None:
    events = cloud.client("events")
    rules = cloud.template.of_type("AWS::Events::Rule")
    assert rules
    for resource in rules:
        props = resolved(cloud, resource.logical_id)
        name = cloud.provisioned.physical[resource.logical_id]
        bus = props.get("EventBusName", "default")
        described = events.describe_rule(Name=name, EventBusName=bus)
        if "EventPattern" in props:
            assert json.loads(described["EventPattern"]) == props["EventPattern"]
        else:
            assert described["ScheduleExpression"] == props["ScheduleExpression"]
        targets = events.list_targets_by_rule(Rule=name, EventBusName=bus)["Targets"]
        assert sorted(t["Arn"] for t in targets) == sorted(t["Arn"] for t in props["Targets"])


def test_every_event_source_mapping_is_polled_into_its_function(cloud: LocalCloud) -> None:
    mappings = cloud.template.of_type("AWS::Lambda::EventSourceMapping")
    assert mappings
    live = {(p.source_arn, p.function, p.mapping["batch_size"]) for p in cloud.pollers}
    for resource in mappings:
        props = resolved(cloud, resource.logical_id)
        assert (props["EventSourceArn"], props["FunctionName"], props.get("BatchSize", 10)) in live
        assert "ReportBatchItemFailures" in props["FunctionResponseTypes"]
    assert all(p.alive for p in cloud.pollers)


def test_every_state_machine_has_the_template_definition(cloud: LocalCloud) -> None:
    sfn = cloud.client("stepfunctions")
    machines = cloud.template.of_type("AWS::StepFunctions::StateMachine")
    assert machines
    for resource in machines:
        arn = cloud.provisioned.physical[resource.logical_id]
        described = sfn.describe_state_machine(stateMachineArn=arn)
        assert json.loads(described["definition"]) == json.loads(
            resolved(cloud, resource.logical_id)["DefinitionString"]
        )


def test_every_schedule_fires_from_the_local_clock(cloud: LocalCloud) -> None:
    import os
    import subprocess
    import sys

    schedules = [r for r in cloud.template.of_type("AWS::Events::Rule") if "ScheduleExpression" in r.properties]
    assert schedules
    names = {cloud.provisioned.physical[r.logical_id] for r in schedules}
    assert names == set(cloud.scheduler.schedules)
    assert cloud.clock.ticking
    # Every schedule has its next occurrence ahead on the local clock
    now = cloud.clock.now()
    assert all(cloud.scheduler.due[name] > now for name in names), cloud.scheduler.due
    # When the clock is moved past the soonest one with the operator's command
    soonest = min(names, key=lambda name: cloud.scheduler.due[name])
    before = cloud.scheduler.fired.get(soonest, 0)
    minutes = int((cloud.scheduler.due[soonest] - now).total_seconds() // 60) + 1
    moved = subprocess.run(
        [sys.executable, "-m", "ecrm_ops.cli", "local", "clock", "advance", f"{minutes}m"],
        env={**os.environ, "ECRM_LOCAL_STATE_DIR": str(cloud.state_dir)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    # Then the command says where the clock is, and that schedule fired (its targets ran) once more
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.startswith("local time ")
    assert cloud.scheduler.fired.get(soonest, 0) == before + 1, (soonest, cloud.scheduler.fired)


def test_every_route_of_the_template_is_served_with_its_authorization(cloud: LocalCloud) -> None:
    methods = cloud.template.of_type("AWS::ApiGateway::Method")
    assert methods
    served = {(r.method, r.path, r.authorization) for r in cloud.gateway.routes}
    assert len(served) == len(methods)
    for route in cloud.gateway.routes:
        if route.function_logical_id:  # "" is a MOCK integration (CORS preflight) answered by the gateway
            assert route.function_logical_id in {r.logical_id for r in cloud.template.of_type("AWS::Lambda::Function")}
    assert ("GET", "/health", "NONE") in served
    assert ("GET", "/whoami", "COGNITO_USER_POOLS") in served
