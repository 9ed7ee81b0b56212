"""The app as the CDK CLI synthesizes it before `cdk deploy`: `npx aws-cdk@2 synth`, layers bundled, cdk-nag on.

One CLI synth (its own xdist group, so the rest of the suite goes on meanwhile), into a temporary cloud
assembly, reusing the pip cache under `.build/pip`: as a cloud engineer deploys a second stage, with a concrete
account and region (what the CLI passes from the caller's credentials), `-c ecrm:stage=prod` and an alarm
email. It must exit 0, which with cdk-nag registered means no unacknowledged finding. The environment-agnostic
synth (no account or region known, as CI runs it) is the suite's own in-process synth, through the same
`infra.app.synth` the CLI's `app` command runs, cdk-nag enforced (tests/infra/test_nag.py). The CLI is
kept away from AWS: no credentials, no instance metadata, no telemetry or notices (npm's registry is reached by
`npx`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import REPO_ROOT, STACK_NAME, read_validation_report, unacknowledged_findings

pytestmark = [pytest.mark.xdist_group("cdk-cli"), pytest.mark.slow]

ACCOUNT = "123456789012"
REGION = "eu-west-1"
PROD_STACK = f"{STACK_NAME}-prod"
ALARM_EMAIL = "alarms@example.com"
MIB = 1024 * 1024
# Both layers together, unzipped (Lambda allows 250 MiB for a function's code and its layers): the ml layer's
# numpy, scipy and scikit-learn are ~173 MiB and the common layer ~14 MiB; this leaves room for the function
# code and for a dependency update, and fails before a job function can no longer be deployed.
LAYERS_LIMIT_MIB = 200


@dataclass(frozen=True)
class CliSynth:
    outdir: Path
    returncode: int
    output: str

    def manifest(self) -> dict[str, Any]:
        return dict(json.loads((self.outdir / "manifest.json").read_text(encoding="utf-8")))

    def template(self, stack: str) -> dict[str, Any]:
        return dict(json.loads((self.outdir / f"{stack}.template.json").read_text(encoding="utf-8")))


def cli_environment(tmp: Path, **extra: str) -> dict[str, str]:
    """This shell's environment without any AWS identity: the CLI finds no credentials and asks no AWS endpoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    env.update(
        {
            "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "CDK_DISABLE_CLI_TELEMETRY": "true",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            **extra,
        }
    )
    return env


@pytest.fixture(scope="module")
def prod_synth(tmp_path_factory: pytest.TempPathFactory) -> CliSynth:
    npx = shutil.which("npx")
    assert npx, "npx (Node.js's npm) is needed: `cdk deploy` runs through the CDK CLI"
    tmp = tmp_path_factory.mktemp("cdk-cli")
    outdir = tmp / "prod.out"
    context = ["-c", "ecrm:stage=prod", "-c", f"ecrm:alarmEmail={ALARM_EMAIL}"]
    env = cli_environment(tmp, AWS_REGION=REGION, CDK_DEFAULT_ACCOUNT=ACCOUNT)
    command = [npx, "--yes", "aws-cdk@2", "synth", "--quiet", "--no-notices", "-o", str(outdir), *context]
    completed = subprocess.run(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900
    )
    return CliSynth(outdir, completed.returncode, completed.stdout)


def assert_clean(synth: CliSynth) -> None:
    findings = "\n".join(unacknowledged_findings(read_validation_report(synth.outdir)))
    assert synth.returncode == 0, f"cdk synth failed:\n{synth.output[-4000:]}\n{findings}"
    report = read_validation_report(synth.outdir)
    assert report is not None, "no validation report: is cdk-nag registered on the app?"
    assert {plugin["conclusion"] for plugin in report["pluginReports"]} == {"success"}


def test_the_cli_synthesizes_a_second_stage_for_a_concrete_account_and_region(
    prod_synth: CliSynth,
) -> None:
    # Given the caller's account and region, and another stage than the default
    synth = prod_synth
    # Then cdk-nag's acknowledgements still hold (they name the region and account as the stack knows them)
    assert_clean(synth)
    artifacts = synth.manifest()["artifacts"]
    # ... and the stage is a stack of its own, next to the default one in the same account
    assert STACK_NAME not in artifacts
    assert artifacts[PROD_STACK]["environment"] == f"aws://{ACCOUNT}/{REGION}"
    template = synth.template(PROD_STACK)
    buses = [r for r in template["Resources"].values() if r["Type"] == "AWS::Events::EventBus"]
    assert [bus["Properties"]["Name"] for bus in buses] == ["ecrm-prod"]
    # ... whose alarms reach the deployer's address
    subscriptions = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::SNS::Subscription"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", ALARM_EMAIL)]


def test_synth_prints_each_layer_unzipped_and_they_stay_well_under_lambdas_limit(
    prod_synth: CliSynth,
) -> None:
    from aws_cdk import cx_api

    from infra.app import layer_sizes

    synth = prod_synth
    assert synth.returncode == 0, synth.output[-4000:]
    sizes = layer_sizes(cx_api.CloudAssembly(str(synth.outdir)))
    assert set(sizes) == {f"{PROD_STACK}/Foundation/CommonLayer/Resource", f"{PROD_STACK}/Foundation/MlLayer/Resource"}
    assert all(size is not None for size in sizes.values()), f"a layer was not bundled: {sizes}"
    for path, size in sizes.items():
        assert f"{(size or 0) / MIB:7.1f} MiB  {path}" in synth.output, "synth does not print the layer's size"
    total = sum(size or 0 for size in sizes.values()) / MIB
    assert total < LAYERS_LIMIT_MIB, f"the layers take {total:.1f} MiB unzipped (bound {LAYERS_LIMIT_MIB} MiB)"
