"""cdk-nag acknowledgements, each with its exact finding id and the reason it is accepted.

cdk-nag 3 runs as a CDK policy-validation plugin; acknowledgements use CDK's own
`Validations.of(construct).acknowledge(...)`. A granular finding (IAM4/IAM5) is acknowledged by its
full id, e.g. `AwsSolutions-IAM5[Resource::*]`: cdk-nag 3 compares ids exactly (v2's regex `appliesTo`
is gone), so a finding that names the stack's region or account is written with `finding_text`, from
the same value the policy holds: `<AWS::Region>` in an environment-agnostic synth, `eu-west-1` in
`cdk synth` with a concrete account and region.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule: str, reason: str, *, applies_to: Sequence[str] = ()) -> None:
    pack = rule.split("-", 1)[0]
    ids = [f"{pack}::{rule}[{finding}]" for finding in applies_to] or [f"{pack}::{rule}"]
    cdk.Validations.of(construct).acknowledge(*(cdk.Acknowledgment(id=i, reason=reason) for i in ids))


def finding_reference(scope: IConstruct, element: cdk.CfnElement, attribute: str = "Arn") -> str:
    """How cdk-nag writes a reference to `element`'s attribute in a finding of a resource under `scope`.

    In `element`'s own stack it is `<LogicalId.Arn>`; in a nested stack under it, CDK passes the value in as a
    parameter, `reference-to-<unique id><attribute>`, and the finding names that parameter: `<referencetoIdArn>`.
    """
    stack = cdk.Stack.of(element)
    if cdk.Stack.of(scope).node.path == stack.node.path:
        return f"<{stack.get_logical_id(element)}.{attribute}>"
    return f"<referenceto{cdk.Names.node_unique_id(element.node)}{attribute}>"


def finding_text(scope: IConstruct, value: str) -> str:
    """`value` (a string that may hold tokens) as cdk-nag writes it in a finding of a resource under `scope`.

    The value is resolved in `scope`'s stack and flattened as cdk-nag's `flattenCfnReference` does: `Fn::Join`
    joined, `{"Ref": X}` as `<X>`, `{"Fn::GetAtt": [X, Y]}` as `<X.Y>`, anything else as its JSON. A pseudo
    parameter stays `<AWS::Region>` while the stack's environment is unknown and becomes the region once it is.
    """
    return _flatten(cdk.Stack.of(scope).resolve(value))


def _flatten(node: Any) -> str:
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return str(delimiter).join(_flatten(item) for item in items)
        if "Fn::Sub" in node:
            return _flatten(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{_flatten(resource)}.{_flatten(attribute)}>"
        if "Fn::ImportValue" in node:
            return _flatten(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{_flatten(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))
