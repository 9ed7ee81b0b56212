"""The CDK app: `cdk synth` / `cdk deploy` (see cdk.json), `make synth`, and the local cloud.

cdk-nag's AWS Solutions checks run on every synth; an unacknowledged finding fails it.
"""

from __future__ import annotations

import os

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.settings import LAMBDA_PYTHON_VERSION, DeploymentSettings
from infra.stacks.platform_stack import PlatformStack


class NagFindings(Exception):
    pass


def build_app(
    outdir: str | None = None,
    context: dict[str, object] | None = None,
    layer_python_version: str = LAMBDA_PYTHON_VERSION,
) -> cdk.App:
    app = cdk.App(outdir=outdir, context=context)
    settings = DeploymentSettings.from_context(app.node)
    env = cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION"))
    PlatformStack(
        app,
        f"{settings.prefix.title()}Platform",
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
    assembly = app.synth()
    errors = [
        f"{m.id}: {m.entry.data}"
        for stack in assembly.stacks
        for m in stack.messages
        if m.level == cdk.cx_api.SynthesisMessageLevel.ERROR
    ]
    if errors:
        raise NagFindings("unacknowledged cdk-nag findings:\n" + "\n".join(errors))
    return assembly


if __name__ == "__main__":
    try:
        synth()
    except NagFindings as exc:
        raise SystemExit(str(exc)) from None
