"""The CDK app: `cdk synth` / `cdk deploy` (see cdk.json), `make synth`, and the local cloud.

cdk-nag's AWS Solutions checks run on every synth; an unacknowledged finding fails it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.bundling import unzipped_size
from infra.settings import LAMBDA_PYTHON_VERSION, TEMPLATE_RESOURCE_LIMIT, DeploymentSettings
from infra.stacks.platform_stack import PlatformStack

CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"
MIB = 1024 * 1024
# Lambda's bound on a function's code and all its layers, unzipped.
LAMBDA_UNZIPPED_LIMIT_MIB = 250


class NagFindings(Exception):
    """cdk-nag found something nobody acknowledged: the report says what and where."""


def cdk_json_context() -> dict[str, object]:
    return dict(json.loads(CDK_JSON.read_text()).get("context", {}))


def build_app(
    outdir: str | None = None,
    context: dict[str, object] | None = None,
    layer_python_version: str = LAMBDA_PYTHON_VERSION,
) -> cdk.App:
    # The CDK CLI passes cdk.json's context itself; `python -m infra.app` and tests read it here.
    app = cdk.App(outdir=outdir, context={**cdk_json_context(), **(context or {})})
    settings = DeploymentSettings.from_context(app.node)
    env = cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION"))
    PlatformStack(
        app,
        settings.stack_name,
        settings=settings,
        env=env,
        layer_python_version=layer_python_version,
        description="eCRM platform: customer store, segmentation, personalization, broadcast, transactions",
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app


def synth(
    outdir: str | None = None,
    context: dict[str, object] | None = None,
    layer_python_version: str = LAMBDA_PYTHON_VERSION,
) -> cdk.cx_api.CloudAssembly:
    """Synthesize and fail on any cdk-nag error (cdk-nag reports them as error annotations)."""
    app = build_app(outdir, context, layer_python_version)
    try:
        assembly = app.synth()
    except RuntimeError as exc:  # jsii surfaces the policy-validation failure as a RuntimeError
        if "ValidationFailed" not in str(exc):
            raise
        raise NagFindings(f"cdk-nag: unacknowledged findings, see {app.outdir}/validation-report.json") from exc
    errors = [
        f"{m.id}: {m.entry.data}"
        for stack in assembly.stacks
        for m in stack.messages
        if m.level == cdk.cx_api.SynthesisMessageLevel.ERROR
    ]
    if errors:
        raise NagFindings("unacknowledged cdk-nag findings:\n" + "\n".join(errors))
    return assembly


def template_sizes(assembly: cdk.cx_api.CloudAssembly) -> dict[str, int]:
    """Resources per template: each stack's own and its nested stacks' (their `aws:cdk:templateFile`)."""
    files: list[str] = []
    for stack in assembly.stacks_recursively:
        files.append(stack.template_file)
        files += [str(e.data) for e in stack.find_metadata_by_type("aws:cdk:templateFile") if e.data not in files]
    outdir = Path(assembly.directory)
    return {name: len(json.loads((outdir / name).read_text())["Resources"]) for name in files}


def layer_sizes(assembly: cdk.cx_api.CloudAssembly) -> dict[str, int | None]:
    """Unzipped bytes of each layer (by construct path) as staged in the assembly; None where bundling was skipped."""
    outdir = Path(assembly.directory)
    sizes: dict[str, int | None] = {}
    for name in template_sizes(assembly):
        for logical_id, resource in json.loads((outdir / name).read_text())["Resources"].items():
            if resource["Type"] != "AWS::Lambda::LayerVersion":
                continue
            staged = outdir / f"asset.{str(resource['Properties']['Content']['S3Key']).removesuffix('.zip')}"
            path = resource.get("Metadata", {}).get("aws:cdk:path", logical_id)
            # A bundled layer is its `python/` folder; with bundling skipped CDK stages the source folder.
            sizes[path] = unzipped_size(staged) if (staged / "python").is_dir() else None
    return sizes


def print_sizes(assembly: cdk.cx_api.CloudAssembly) -> None:
    print(f"resources per template (CloudFormation allows 500; ours stay under {TEMPLATE_RESOURCE_LIMIT}):")
    for name, count in template_sizes(assembly).items():
        print(f"  {count:4d}  {name}{'  <- over the limit' if count > TEMPLATE_RESOURCE_LIMIT else ''}")
    sizes = layer_sizes(assembly)
    print(f"layers unzipped (Lambda allows {LAMBDA_UNZIPPED_LIMIT_MIB} MiB for a function's code and its layers):")
    for path, size in sizes.items():
        print(f"  {'not bundled' if size is None else f'{size / MIB:7.1f} MiB'}  {path}")
    if all(size is not None for size in sizes.values()):
        print(f"  {sum(s or 0 for s in sizes.values()) / MIB:7.1f} MiB  both layers together")


if __name__ == "__main__":
    try:
        built = synth(os.environ.get("CDK_OUTDIR", "cdk.out"))
    except (NagFindings, ValueError) as exc:  # ValueError: a context setting the app cannot use
        raise SystemExit(str(exc)) from None
    print_sizes(built)
