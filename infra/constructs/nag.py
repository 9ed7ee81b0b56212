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
