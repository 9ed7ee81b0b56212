"""What the infra tests share: one synth of the CDK app per session, and readers of its template.

The app is synthesized once per session (per xdist worker; every infra test module is in the
`infra` xdist group, so under `--dist loadgroup` that is one synth) into a temporary cloud
assembly, with the context of `cdk.json` (what `cdk synth` and `cdk deploy` use) and bundling
skipped (`aws:cdk:bundling-stacks = []`). Synthesizing runs cdk-nag: an unacknowledged finding
fails the synth, and with it every test that reads the template. `test_bundling.py` bundles for real.

The root stack deploys one nested stack per engine. `Synthesized.template` is the whole app: the
root template with every nested template inlined the way the local cloud reads them (a nested
Parameter replaced by what the root passes, so a `Ref` still names the resource it points at);
`Synthesized.templates` holds each template file as synthesized, for what is checked per template.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Before the first jsii call starts the Node.js kernel.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_NAME = "EcrmPlatform"
BUNDLING_STACKS = "aws:cdk:bundling-stacks"

Resource = dict[str, Any]


def deploy_context(*, bundle: bool = False) -> dict[str, Any]:
    """The context `cdk synth` gives the app: cdk.json's, with bundling skipped unless asked."""
    context: dict[str, Any] = dict(json.loads((REPO_ROOT / "cdk.json").read_text(encoding="utf-8"))["context"])
    if not bundle:
        context[BUNDLING_STACKS] = []
    return context


def read_validation_report(outdir: Path) -> dict[str, Any] | None:
    path = outdir / "validation-report.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def unacknowledged_findings(report: Mapping[str, Any] | None) -> list[str]:
    """Every violation of the policy-validation report nobody acknowledged, one line each."""
    findings = []
    for plugin in (report or {}).get("pluginReports", []):
        for violation in plugin.get("violations", []):
            paths = ", ".join(c.get("constructPath", "?") for c in violation.get("violatingConstructs", []))
            findings.append(
                f"{plugin.get('pluginName')}: {violation.get('ruleName')} ({violation.get('severity')}) at {paths}"
            )
    return findings


def ref(value: Any) -> str | None:
    """The logical id a `{"Ref": id}` or `{"Fn::GetAtt": [id, attr]}` points at, else None."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else target.split(".", 1)[0])
    return None


def references(value: Any) -> Iterator[str]:
    """Every logical id referenced (Ref / Fn::GetAtt) anywhere inside `value`; no pseudo parameters."""
    if isinstance(value, dict):
        target = ref(value)
        if target is not None:
            if not target.startswith("AWS::"):
                yield target
            return
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


@dataclass(frozen=True)
class Synthesized:
    """The synthesized stack: its cloud assembly directory, template and construct-path map."""

    outdir: Path
    template: dict[str, Any]  # the root with its nested templates inlined
    logical_ids: Mapping[str, str]  # construct path ("EcrmPlatform/Foundation/Key/Resource") -> logical id
    templates: Mapping[str, dict[str, Any]]  # template file -> template as synthesized (root and nested)
    nested: Mapping[str, str]  # logical id of an AWS::CloudFormation::Stack in the root -> its template file

    @property
    def root(self) -> dict[str, Any]:
        return self.templates[f"{STACK_NAME}.template.json"]

    def resources(self, resource_type: str) -> dict[str, Resource]:
        return {lid: res for lid, res in self.template["Resources"].items() if res["Type"] == resource_type}

    def logical_id(self, construct_path: str) -> str:
        path = construct_path if construct_path.startswith(f"{STACK_NAME}/") else f"{STACK_NAME}/{construct_path}"
        try:
            return self.logical_ids[path]
        except KeyError:
            raise AssertionError(f"no resource at construct path {path}") from None

    def asset_dir(self, s3_key: str) -> Path:
        """The staged directory of a file asset, from the `S3Key` the template uploads it to."""
        return self.outdir / f"asset.{s3_key.removesuffix('.zip')}"

    def api_methods(self) -> dict[tuple[str, str], Resource]:
        """Every `AWS::ApiGateway::Method` by (HTTP method, full resource path)."""
        resources = self.resources("AWS::ApiGateway::Resource")

        def path_of(resource_id: Any) -> str:
            if isinstance(resource_id, dict) and "Fn::GetAtt" in resource_id:  # the root resource
                return ""
            logical_id = ref(resource_id)
            assert logical_id in resources, f"method on unknown resource {resource_id}"
            props = resources[logical_id]["Properties"]
            return f"{path_of(props['ParentId'])}/{props['PathPart']}"

        methods = {}
        for method in self.resources("AWS::ApiGateway::Method").values():
            props = method["Properties"]
            key = (props["HttpMethod"], path_of(props["ResourceId"]) or "/")
            assert key not in methods, f"{key} declared twice"
            methods[key] = props
        return methods


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The app as `cdk synth` builds it (cdk-nag enforced), bundling skipped; once per session."""
    from infra.app import NagFindings, synth

    outdir = tmp_path_factory.mktemp("cdk.out")
    with pytest.MonkeyPatch.context() as mp:
        # An environment-agnostic stack, whatever account/region the shell running the tests has.
        mp.delenv("CDK_DEFAULT_ACCOUNT", raising=False)
        mp.delenv("CDK_DEFAULT_REGION", raising=False)
        try:
            synth(str(outdir), deploy_context())
        except (NagFindings, RuntimeError) as exc:
            findings = "\n".join(unacknowledged_findings(read_validation_report(outdir)))
            pytest.fail(f"cdk synth failed: {exc}\n{findings}", pytrace=False)
    from infra.local.template import Template, nested_templates

    root = outdir / f"{STACK_NAME}.template.json"
    whole = Template.load(root, STACK_NAME)
    templates = {name: json.loads((outdir / name).read_text(encoding="utf-8")) for name in whole.sources}
    metadata = json.loads((outdir / f"{STACK_NAME}.metadata.json").read_text(encoding="utf-8"))
    logical_ids = {
        path.lstrip("/"): entry["data"]
        for path, entries in metadata.items()
        for entry in entries
        if entry.get("type") == "aws:cdk:logicalId"
    }
    return Synthesized(
        outdir=outdir,
        template=whole.body,
        logical_ids=logical_ids,
        templates=templates,
        nested=nested_templates(root),
    )


@pytest.fixture(scope="session")
def template(synthesized: Synthesized) -> dict[str, Any]:
    return synthesized.template
