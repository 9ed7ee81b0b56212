"""cdk-nag acknowledgements, each with its exact finding id and the reason it is accepted.

cdk-nag 3 runs as a CDK policy-validation plugin; acknowledgements use CDK's own
`Validations.of(construct).acknowledge(...)`. A granular finding (IAM4/IAM5) is acknowledged by its
full id, e.g. `AwsSolutions-IAM5[Resource::*]`.
"""

from __future__ import annotations

from collections.abc import Sequence

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
