"""One engine in its own nested stack, so the platform grows past CloudFormation's 500 resources per template.

The root stack keeps the foundation (bus, key, layers, Cognito, the REST API and its WAF, the lake); each
engine construct is built inside an `EngineStack` exactly as it would be built in the root. CDK turns what the
engine references of the foundation into the nested stack's Parameters (and what the root reads of the engine
into its Outputs), and `cdk deploy` deploys the nested stacks with the root. The engine's logical ids are the
ones it had in the root: the engine construct keeps the nested stack's id, so the path under the stack is the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_cdk import NestedStack
from constructs import Construct

E = TypeVar("E", bound=Construct)


class EngineStack(NestedStack):
    """A nested stack that hosts one engine construct (`EngineStack.host`)."""

    engine: Construct

    @classmethod
    def host(cls, scope: Construct, construct_id: str, engine: Callable[..., E], **engine_props: Any) -> E:
        """`engine(stack, construct_id, **engine_props)` built in a new nested stack; returns the engine."""
        stack = cls(scope, construct_id, description=f"eCRM engine: {construct_id}")
        built = engine(stack, construct_id, **engine_props)
        stack.engine = built
        return built
