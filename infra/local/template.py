"""Reading a synthesized CloudFormation template: resources, dependency order, intrinsics.

`Resolver` evaluates `Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`, `Fn::Select`, `Fn::Split` and the
pseudo parameters against the physical ids of what `provision` created, which is how a function's
environment, a rule's target and a state machine's definition get their local names.

A stack of a cloud assembly comes with its nested stacks (one per engine): `manifest.json` names the
stack's metadata file, whose `aws:cdk:templateFile` entries name each nested stack's template, and
the `aws:cdk:logicalId` entries the `AWS::CloudFormation::Stack` resource that deploys it. The local
cloud provisions one stack, so `Template.load` inlines each nested template into its parent, as
CloudFormation would wire them: a `Ref` to a nested Parameter becomes the value the parent passes
(`Properties.Parameters`), a `Fn::GetAtt [Stack, Outputs.<name>]` in the parent becomes the nested
Output's value, and the stack resource depends on every resource of its template.
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
    # template file -> logical ids of its resources (the stack's own file and every nested one)
    sources: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, stack_name: str | None = None) -> Template:
        """The template at `path`; in a cloud assembly (`manifest.json` beside it), with its nested stacks inlined."""
        body = json.loads(path.read_text())
        sources = {path.name: list(body.get("Resources", {}))}
        for stack_id, nested_file in nested_templates(path).items():
            nested_body = _load_nested(path.parent, nested_file, nested_templates(path.parent / nested_file))
            sources[nested_file] = list(nested_body.get("Resources", {}))
            body = inline_nested_stack(body, stack_id, nested_body)
        template = cls(stack_name or path.name.removesuffix(".template.json"), body, sources=sources)
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


def nested_templates(path: Path) -> dict[str, str]:
    """The nested stacks a template of a cloud assembly deploys: stack resource's logical id -> template file.

    From `manifest.json` -> the stack's metadata (its `additionalMetadataFile`, or inline) -> the
    `aws:cdk:templateFile` of each nested stack construct `<parent>/<id>`, whose resource is
    `<parent>/<id>.NestedStack/<id>.NestedStackResource`. Only the nested stacks whose resource is in the
    template at `path` are returned (a nested stack's own nested stacks belong to its template).
    """
    manifest_path = path.parent / "manifest.json"
    if not manifest_path.is_file():
        return {}
    manifest = json.loads(manifest_path.read_text())
    metadata: dict[str, list[dict[str, Any]]] = {}
    for artifact in manifest.get("artifacts", {}).values():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        metadata.update(artifact.get("metadata", {}))
        if artifact.get("additionalMetadataFile"):
            metadata.update(json.loads((path.parent / artifact["additionalMetadataFile"]).read_text()))
    logical_ids = {p: e["data"] for p, entries in metadata.items() for e in entries if e["type"] == "aws:cdk:logicalId"}
    resources = set(json.loads(path.read_text()).get("Resources", {}))
    found: dict[str, str] = {}
    for construct_path, entries in metadata.items():
        for entry in entries:
            if entry["type"] != "aws:cdk:templateFile":
                continue
            parent, _, stack_id = construct_path.rpartition("/")
            logical_id = logical_ids.get(f"{parent}/{stack_id}.NestedStack/{stack_id}.NestedStackResource")
            if logical_id is not None and logical_id in resources:
                found[logical_id] = str(entry["data"])
    return found


def _load_nested(outdir: Path, file: str, nested: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((outdir / file).read_text())
    for stack_id, nested_file in nested.items():
        inner = _load_nested(outdir, nested_file, nested_templates(outdir / nested_file))
        body = inline_nested_stack(body, stack_id, inner)
    return body


def inline_nested_stack(parent: dict[str, Any], stack_id: str, nested: dict[str, Any]) -> dict[str, Any]:
    """`parent` with the resources of the template its nested stack `stack_id` deploys, wired as CloudFormation does."""
    stack = parent["Resources"][stack_id]
    passed = stack.get("Properties", {}).get("Parameters", {})
    parameters = {
        name: passed[name] if name in passed else declared["Default"]
        for name, declared in nested.get("Parameters", {}).items()
        if name in passed or "Default" in declared
    }
    clashes = set(nested["Resources"]) & set(parent["Resources"])
    if clashes:
        raise ValueError(f"nested stack {stack_id} repeats the logical ids {sorted(clashes)} of its parent")
    resources = _substitute(nested["Resources"], parameters, _ref_name)
    outputs = {name: _substitute(o["Value"], parameters, _ref_name) for name, o in nested.get("Outputs", {}).items()}
    merged = {**parent["Resources"], **resources}
    merged[stack_id] = {**stack, "DependsOn": sorted({*_depends_on(stack), *resources})}
    out_of_stack = {f"{stack_id}.Outputs.{name}": value for name, value in outputs.items()}
    inlined = {**parent, "Resources": _substitute(merged, out_of_stack, _get_att_name)}
    if "Outputs" in parent:
        inlined["Outputs"] = _substitute(parent["Outputs"], out_of_stack, _get_att_name)
    return inlined


def _depends_on(resource: dict[str, Any]) -> list[str]:
    depends = resource.get("DependsOn", [])
    return [depends] if isinstance(depends, str) else list(depends)


def _ref_name(value: dict[str, Any]) -> str | None:
    return value["Ref"] if len(value) == 1 and isinstance(value.get("Ref"), str) else None


def _get_att_name(value: dict[str, Any]) -> str | None:
    if len(value) != 1 or "Fn::GetAtt" not in value:
        return None
    target = value["Fn::GetAtt"]
    return ".".join(target) if isinstance(target, list) and all(isinstance(t, str) for t in target) else str(target)


def _substitute(value: Any, replacements: dict[str, Any], name_of: Any) -> Any:
    """`value` with each intrinsic that `name_of` names in `replacements` replaced, `Fn::Sub` strings included."""
    if not replacements:
        return value
    if isinstance(value, list):
        return [_substitute(v, replacements, name_of) for v in value]
    if not isinstance(value, dict):
        return value
    name = name_of(value)
    if name is not None and name in replacements:
        return replacements[name]
    if len(value) == 1 and "Fn::Sub" in value:
        arg = value["Fn::Sub"]
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], dict(arg[1]))
        used = {m for m in re.findall(r"\$\{([^}!]+)\}", text) if m in replacements and m not in variables}
        variables = {k: _substitute(v, replacements, name_of) for k, v in variables.items()}
        variables.update({m: replacements[m] for m in used})
        return {"Fn::Sub": [text, variables] if variables else text}
    return {k: _substitute(v, replacements, name_of) for k, v in value.items()}


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
