"""Reading a synthesized CloudFormation template: resources, dependency order, intrinsics.

`Resolver` evaluates `Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`, `Fn::Select`, `Fn::Split` and the
pseudo parameters against the physical ids of what `provision` created, which is how a function's
environment, a rule's target and a state machine's definition get their local names.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


@dataclass
class Resource:
    logical_id: str
    type: str
    properties: dict[str, Any]
    metadata: dict[str, Any]
    depends_on: list[str]


@dataclass
class Template:
    stack_name: str
    body: dict[str, Any]
    resources: dict[str, Resource] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, stack_name: str | None = None) -> Template:
        body = json.loads(path.read_text())
        template = cls(stack_name or path.name.removesuffix(".template.json"), body)
        for logical_id, raw in body.get("Resources", {}).items():
            depends = raw.get("DependsOn", [])
            template.resources[logical_id] = Resource(
                logical_id,
                raw["Type"],
                raw.get("Properties", {}),
                raw.get("Metadata", {}),
                [depends] if isinstance(depends, str) else list(depends),
            )
        return template

    def of_type(self, resource_type: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type == resource_type]

    def creation_order(self) -> list[Resource]:
        """Resources so that each comes after everything it references (a topological sort)."""
        order: list[Resource] = []
        state: dict[str, int] = {}

        def visit(logical_id: str) -> None:
            if state.get(logical_id) == 2:
                return
            if state.get(logical_id) == 1:
                raise ValueError(f"circular reference through {logical_id}")
            state[logical_id] = 1
            resource = self.resources[logical_id]
            for dep in sorted(references(resource.properties) | set(resource.depends_on)):
                if dep in self.resources:
                    visit(dep)
            state[logical_id] = 2
            order.append(resource)

        for logical_id in self.resources:
            visit(logical_id)
        return order


def references(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            found.add(target[0] if isinstance(target, list) else target.split(".")[0])
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            found.update(m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text))
        for item in value.values():
            found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


class Unresolvable(Exception):
    pass


class Resolver:
    """Evaluates intrinsic functions against the physical ids recorded so far."""

    def __init__(self, stack_name: str, region: str = REGION, account: str = ACCOUNT_ID) -> None:
        self.pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::NoValue": None,
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{account}:stack/{stack_name}/local",
        }
        self.refs: dict[str, Any] = {}
        self.attributes: dict[str, dict[str, Any]] = {}

    def record(self, logical_id: str, ref: Any, **attributes: Any) -> None:
        self.refs[logical_id] = ref
        self.attributes[logical_id] = attributes

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value if v != {"Ref": "AWS::NoValue"}]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self._get_att(logical_id, attribute)
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(self.resolve(p)) for p in self.resolve(parts))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                separator, text = arg
                return str(self.resolve(text)).split(separator)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::GetAZs":
                return [f"{self.pseudo['AWS::Region']}{z}" for z in "abc"]
            if key.startswith("Fn::"):
                raise Unresolvable(f"{key} is not supported by the local cloud")
        return {k: self.resolve(v) for k, v in value.items()}

    def _ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name not in self.refs:
            raise Unresolvable(f"Ref {name}: not created locally")
        return self.refs[name]

    def _get_att(self, logical_id: str, attribute: str) -> Any:
        attributes = self.attributes.get(logical_id)
        if attributes is None or attribute not in attributes:
            raise Unresolvable(f"Fn::GetAtt {logical_id}.{attribute}: not available locally")
        return attributes[attribute]

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return str(self._get_att(logical_id, attribute))
            return str(self._ref(name))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)
